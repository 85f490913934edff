"""Tiny feature extractors for the correlation estimator tests (fixtures, no weights)."""
import pytest
import torch
from torch import nn
import torch.nn.functional as F


class PoolExtractor(nn.Module):
    """Parameter-free, identity-like: level key -> avg_pool2d(image, stride) (stride 1 = id).

    A map F (B, C, h, w) upsampled by nearest-neighbour repetition of `stride` pools back
    to F exactly, so a test can choose the satellite features cell by cell.
    """

    def __init__(self, strides: dict[str, int]) -> None:
        super().__init__()
        self.strides = dict(strides)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {key: images if s == 1 else F.avg_pool2d(images, s)
                for key, s in self.strides.items()}


class TinyConvExtractor(nn.Module):
    """A small trainable net with levels 'coarse' (stride 8) and 'fine' (stride 2)."""

    def __init__(self, coarse_channels: int = 6, fine_channels: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, fine_channels, 3, stride=2, padding=1)
        self.fine = nn.Conv2d(fine_channels, fine_channels, 3, padding=1)
        self.down = nn.Conv2d(fine_channels, coarse_channels, 3, stride=4, padding=1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        half = torch.relu(self.stem(images))
        return {'coarse': self.down(half), 'fine': self.fine(half)}


def nearest_upsample(features: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, h s, w s) that PoolExtractor pools back to the input exactly."""
    return features.repeat_interleave(stride, dim=-2).repeat_interleave(stride, dim=-1)


@pytest.fixture
def pool_extractor():
    return PoolExtractor


@pytest.fixture
def tiny_conv_extractor():
    return TinyConvExtractor


@pytest.fixture
def upsample():
    return nearest_upsample
