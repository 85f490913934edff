"""Localizer: the inference pipeline end to end on a flat world, checkpoints, errors."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from geodistill_core.localizer import Localizer, resolve_device
from geodistill_core.models.correlation import (
    CorrelationEstimatorConfig,
    CorrelationLevel,
    CorrelationLocationEstimator,
)
from geodistill_core.training.config import ModelConfig
from geodistill_core.training.flat_world import FlatWorldDataset
from geodistill_core.training.models import LocationModel, build_model, save_trained_model


class RgbLevels(nn.Module):
    """Parameter-free extractor: the image itself at strides 4 and 1 (raw colour features)."""

    def forward(self, images):
        return {'coarse': F.avg_pool2d(images, 4), 'fine': images}


def identity_localizer(sat_size: int, ground_hw) -> Localizer:
    config = CorrelationEstimatorConfig(
        levels=(CorrelationLevel('coarse', 3), CorrelationLevel('fine', 3)),
        learned_confidence=False)
    model = LocationModel(CorrelationLocationEstimator(config, RgbLevels(), RgbLevels()))
    return Localizer(model, kind='correlation', ground_hw=ground_hw, sat_size_px=sat_size,
                     camera_model='panorama', camera_height_m=2.0, device='cpu')


def test_flat_world_position_recovered_with_raw_colour_features():
    """Correlating raw colours of a rendered panorama finds the true offset (sign pin)."""
    data = FlatWorldDataset('test', size=4, ground_hw=(64, 128), sat_size=96,
                            sat_meters_per_px=0.25, world_px=384)
    localizer = identity_localizer(96, (64, 128))
    for index in range(4):
        item = data[index]
        result = localizer.localize(item['ground'][None], item['satellite'][None],
                                    item['sat_meters_per_px'],
                                    yaw_prior_rad=float(item['yaw_prior_rad']),
                                    use_orientation=False)
        true = item['eval_true_offset_en_m'].numpy()
        got = result.offset_en_m[0].numpy()
        assert np.linalg.norm(got - true) < 0.75, (got, true)
        assert result.heatmap_prob.shape == (1, 96, 96)
        assert result.heatmap_prob.sum().item() == pytest.approx(1.0, abs=1e-4)
        cov = result.covariance_en_m2[0]
        assert torch.allclose(cov, cov.T) and torch.linalg.eigvalsh(cov).min() > 0
        # Counter-example: the mirrored offset is far from the estimate.
        assert np.linalg.norm(got + true) > np.linalg.norm(got - true)


def test_numpy_uint8_input_and_batching_agree():
    data = FlatWorldDataset('test', size=2, ground_hw=(32, 64), sat_size=64, world_px=256)
    localizer = identity_localizer(64, (32, 64))
    items = [data[i] for i in range(2)]
    ground = torch.stack([it['ground'] for it in items])
    sat = torch.stack([it['satellite'] for it in items])
    yaw = torch.tensor([float(it['yaw_prior_rad']) for it in items])
    batch = localizer.localize(ground, sat, 0.5, yaw_prior_rad=yaw)
    for i in range(2):
        g8 = (ground[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        s8 = (sat[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        single = localizer.localize(g8, s8, 0.5, yaw_prior_rad=float(yaw[i])).item()
        assert np.linalg.norm(single['offset_en_m'] - batch.offset_en_m[i].numpy()) < 0.5


def test_satellite_given_at_another_resolution_keeps_metres():
    """A 2x larger crop image of the same ground gives the same offset in metres."""
    data = FlatWorldDataset('test', size=1, ground_hw=(64, 128), sat_size=96,
                            sat_meters_per_px=0.25, world_px=384)
    item = data[0]
    localizer = identity_localizer(96, (64, 128))
    big = F.interpolate(item['satellite'][None], scale_factor=2, mode='bilinear',
                        align_corners=False)
    a = localizer.localize(item['ground'][None], item['satellite'][None], 0.25,
                           yaw_prior_rad=math.pi / 2)
    b = localizer.localize(item['ground'][None], big, 0.125, yaw_prior_rad=math.pi / 2)
    assert torch.linalg.norm(a.offset_en_m - b.offset_en_m) < 0.3


def test_from_checkpoint_round_trip(tmp_path):
    config = ModelConfig(kind='correlation', ground_backbone='vgg16_unet_tiny',
                         satellite_backbone='vgg16_unet_tiny', pretrained=False)
    torch.manual_seed(0)
    model = build_model(config)
    path = save_trained_model(tmp_path / 'loc', model, config,
                              {'ground_hw': [32, 64], 'satellite_hw': [64, 64]}, 0.5,
                              {'note': 'test'})
    localizer = Localizer.from_checkpoints(path, device='cpu')
    assert localizer.ground_hw == (32, 64) and localizer.sat_size_px == 64
    assert localizer.camera_height_m == 2.0
    ground = torch.rand(1, 3, 32, 64)
    sat = torch.rand(1, 3, 64, 64)
    out = localizer.localize(ground, sat, 0.5, yaw_prior_rad=0.3)
    direct = Localizer(model, kind='correlation', ground_hw=(32, 64), sat_size_px=64,
                       camera_model='panorama', camera_height_m=2.0, device='cpu')
    ref = direct.localize(ground, sat, 0.5, yaw_prior_rad=0.3)
    torch.testing.assert_close(out.offset_en_m, ref.offset_en_m)
    localizer.warmup()
    # a calibration block in config.json is read and applied; the peak does not move
    config_path = Path(path) / 'config.json'
    record = json.loads(config_path.read_text())
    record['calibration'] = {'temperature': 2.5, 'outlier_weight': 0.2, 'method': 'truth'}
    config_path.write_text(json.dumps(record))
    calibrated = Localizer.from_checkpoints(path, device='cpu')
    assert calibrated.calibration.temperature == 2.5
    cal = calibrated.localize(ground, sat, 0.5, yaw_prior_rad=0.3)
    torch.testing.assert_close(cal.offset_en_m, out.offset_en_m)
    n_cells = cal.heatmap_prob[0].numel()
    assert cal.heatmap_floor_prob == pytest.approx(0.2 / n_cells)
    assert float(cal.heatmap_prob.min()) >= 0.2 / n_cells * (1 - 1e-4)
    torch.testing.assert_close(cal.heatmap_log_prob_base, out.heatmap_log_prob_base)
    torch.testing.assert_close(cal.heatmap_prob,
                               calibrated.calibration.log_prob(cal.heatmap_log_prob_base).exp())
    assert not torch.allclose(cal.heatmap_prob, out.heatmap_prob)


def test_pinhole_needs_k_and_errors_are_clear():
    config = ModelConfig(kind='correlation', ground_backbone='vgg16_unet_tiny',
                         satellite_backbone='vgg16_unet_tiny', pretrained=False,
                         camera_model='pinhole')
    localizer = Localizer(build_model(config), kind='correlation', ground_hw=(32, 128),
                          sat_size_px=64, camera_model='pinhole', camera_height_m=1.65,
                          device='cpu')
    ground = np.zeros((375, 1242, 3), np.uint8)
    sat = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match='pass K'):
        localizer.localize(ground, sat, 0.2, yaw_prior_rad=0.0)
    K = np.array([[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1.0]])
    out = localizer.localize(ground, sat, 0.2, yaw_prior_rad=0.0, K=K)
    assert out.offset_en_m.shape == (1, 2)
    with pytest.raises(ValueError, match='uint8'):
        localizer.localize(ground.astype(np.float32), sat, 0.2, yaw_prior_rad=0.0, K=K)
    with pytest.raises(ValueError, match='square'):
        localizer.localize(ground, np.zeros((64, 32, 3), np.uint8), 0.2, yaw_prior_rad=0.0,
                           K=K)


def test_device_resolution():
    assert resolve_device('cpu').type == 'cpu'
    assert resolve_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='CUDA is not available'):
            resolve_device('cuda')
    with pytest.raises(ValueError):
        resolve_device('meta')


def test_missing_default_model_is_a_clear_error(monkeypatch, tmp_path):
    import geodistill_core.localizer as module
    monkeypatch.setattr(module, 'ASSETS_DIR', tmp_path)
    with pytest.raises(FileNotFoundError, match='embedded default model'):
        Localizer.default()


def test_trained_model_checkpoint_loads_in_a_fresh_process(tmp_path):
    """load_checkpoint alone finds the 'training_model' architecture (no other import)."""
    import subprocess
    import sys
    config = ModelConfig(kind='correlation', ground_backbone='vgg16_unet_tiny',
                         satellite_backbone='vgg16_unet_tiny', pretrained=False)
    path = save_trained_model(tmp_path / 'loc', build_model(config), config,
                              {'ground_hw': [32, 64], 'satellite_hw': [64, 64]}, None, {})
    code = ('from geodistill_core.models.checkpoint import load_checkpoint\n'
            f'model, record = load_checkpoint({str(path)!r})\n'
            'print(type(model).__name__, record["architecture"])')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ['LocationModel', 'training_model']


def test_checkpoint_models_are_folded_with_the_plain_models_output():
    """from_checkpoints folds the BatchNorms (inference speed); the heatmap and pose are the
    plain eval model's. The embedded pinhole default: a Lite0 model with 30 norms."""
    from geodistill_core.localizer import ASSETS_DIR
    from geodistill_core.models.frozen_batchnorm import frozen_batchnorm_count
    from geodistill_core.training.models import load_trained_model
    folded = Localizer.default('pinhole', device='cpu', yaw_search='none')
    n_norms = sum(isinstance(m, nn.BatchNorm2d) for m in folded.location_model.modules())
    assert n_norms > 0 and frozen_batchnorm_count(folded.location_model) == n_norms
    model, _, _ = load_trained_model(ASSETS_DIR / 'default_pinhole_location')
    plain = Localizer(model, kind='correlation', ground_hw=folded.ground_hw,
                      sat_size_px=folded.sat_size_px, camera_model='pinhole',
                      camera_height_m=folded.camera_height_m, device='cpu',
                      calibration=folded.calibration)
    assert frozen_batchnorm_count(model) == 0  # a model passed in is never changed unasked
    g = torch.Generator().manual_seed(3)
    ground, sat = torch.rand(2, 3, 375, 1242, generator=g), torch.rand(2, 3, 256, 256, generator=g)
    K = torch.tensor([[720.0, 0.0, 620.0], [0.0, 720.0, 187.0], [0.0, 0.0, 1.0]])
    a = plain.localize(ground, sat, 0.2, yaw_prior_rad=0.3, K=K)
    b = folded.localize(ground, sat, 0.2, yaw_prior_rad=0.3, K=K)
    torch.testing.assert_close(b.heatmap_log_prob_base, a.heatmap_log_prob_base,
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(b.offset_en_m, a.offset_en_m, atol=1e-3, rtol=0)
    unfolded = Localizer.default('pinhole', device='cpu', yaw_search='none',
                                 fold_batchnorm=False)
    assert frozen_batchnorm_count(unfolded.location_model) == 0
