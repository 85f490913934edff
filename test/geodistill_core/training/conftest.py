"""Toy networks and tiny data for the training tests (no weights, milliseconds per step)."""
from dataclasses import replace

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from geodistill_core.models.correlation import LocationScores
from geodistill_core.training import (
    DataConfig,
    LoopConfig,
    ModelConfig,
    TrainConfig,
    register_model_kind,
)


class ToyEstimator(nn.Module):
    """A LocationScores estimator: satellite feature maps (2 levels) scored by cosine
    against a global ground descriptor averaged over the VISIBLE ground columns.

    Records every call's ground images and keyword arguments in `calls` (tests read it).
    """

    def __init__(self, channels: int = 6, levels: int = 2) -> None:
        super().__init__()
        self.ground_conv = nn.Conv2d(3, channels, 3, padding=1)
        self.sat_conv = nn.Conv2d(3, channels, 3, padding=1)
        self.levels = levels
        self.calls = []

    def forward(self, ground_images, satellite_images, *, sat_meters_per_px, camera_height_m,
                ground_yaw_rad=None, ground_K=None, ground_visible_cols=None, all_pairs=False):
        self.calls.append({'ground': ground_images.detach().clone(),
                           'visible_cols': ground_visible_cols, 'all_pairs': all_pairs,
                           'sat_meters_per_px': sat_meters_per_px, 'yaw': ground_yaw_rad})
        g = torch.tanh(self.ground_conv(ground_images)).mean(dim=2)  # (B, C, W)
        if ground_visible_cols is not None:
            w = ground_visible_cols.to(g).unsqueeze(1)
            g = (g * w).sum(-1) / w.sum(-1).clamp_min(1)
        else:
            g = g.mean(-1)
        g = F.normalize(g, dim=1)
        sat = self.sat_conv(satellite_images)
        scores, cells = [], []
        Hs = satellite_images.shape[-2]
        for level in range(self.levels):
            s = F.normalize(F.avg_pool2d(sat, 2 ** (self.levels - level)), dim=1)
            if all_pairs:
                scores.append(torch.einsum('mchw,nc->mnhw', s, g))
            else:
                scores.append(torch.einsum('bchw,bc->bhw', s, g))
            cells.append(float(sat_meters_per_px) * Hs / s.shape[-2])
        return LocationScores(scores, cells)


def build_toy(config: ModelConfig) -> nn.Module:
    return ToyEstimator(levels=len(config.levels))


register_model_kind('toy', build_toy)


@pytest.fixture
def toy_config():
    """A fast TrainConfig on the flat world with the toy estimator."""
    return TrainConfig(
        name='test', task='location',
        data=DataConfig(dataset='flat_world', ground_hw=(16, 32), sat_size=32, batch_size=4,
                        min_distance_m=0.0, num_workers=0),
        model=ModelConfig(kind='toy', levels=(0, 1)),
        loop=LoopConfig(epochs=2, steps_per_epoch=3, val_steps=1, checkpoint_every_steps=2,
                        log_every_steps=1, progress=False, tensorboard=False, device='cpu'))


@pytest.fixture
def toy_batch():
    """A collated flat-world batch of 4 (labels included)."""
    from torch.utils.data import default_collate

    from geodistill_core.training.flat_world import FlatWorldDataset
    ds = FlatWorldDataset('train', size=4, ground_hw=(16, 32), sat_size=32)
    return default_collate([ds[i] for i in range(4)])


@pytest.fixture
def with_task():
    def make(config, task):
        return replace(config, task=task)
    return make


@pytest.fixture
def toy_estimator():
    """The ToyEstimator class."""
    return ToyEstimator
