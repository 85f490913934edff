"""Feature encoders for the descriptor and orientation estimators.

An encoder maps (B, 3, H, W) preprocessed images to a list of feature maps; level l has
shape (B, channels[l], H / stride[l], W / stride[l]). `tiny_encoder` is a few strided
convolutions for CPU tests (translation-equivariant: no pooling, no global operation);
`efficientnet_b0_encoder` is timm's EfficientNet-B0 with random weights (pretrained ones
come from local files through the backbone registry, never from the network).
"""
from __future__ import annotations

import torch
from torch import nn

from geodistill_core.models.ccvpe.config import TINY_CHANNELS


class TinyEncoder(nn.Module):
    """Five stages of conv 3x3 (stride 2, padding 1) + BN + ReLU: strides 2, 4, 8, 16, 32.

    channels: output channels of the five stages. Attributes channels and strides_px
    describe the returned levels.
    """

    def __init__(self, channels: tuple[int, ...] = TINY_CHANNELS, in_channels: int = 3):
        super().__init__()
        stages, previous = [], in_channels
        for width in channels:
            stages.append(nn.Sequential(
                nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width), nn.ReLU(inplace=True)))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.channels = tuple(channels)
        self.strides_px = tuple(2 ** (i + 1) for i in range(len(channels)))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W), H and W multiples of 2^len(channels).

        Returns len(channels) maps (B, channels[l], H / 2^(l+1), W / 2^(l+1)).
        """
        if images.dim() != 4:
            raise ValueError(f'images must be (B, C, H, W), got {tuple(images.shape)}')
        levels, x = [], images
        for stage in self.stages:
            x = stage(x)
            levels.append(x)
        return levels


def tiny_encoder(channels: tuple[int, ...] = TINY_CHANNELS, in_channels: int = 3) -> TinyEncoder:
    """A tiny stride-32 encoder for tests (levels as TINY_LEVELS in ccvpe.config)."""
    return TinyEncoder(channels, in_channels)


def efficientnet_b0_encoder() -> nn.Module:
    """timm EfficientNet-B0, features_only (5 maps: 16/24/40/112/320 ch, strides 2..32),
    randomly initialised; load pretrained weights from a local file afterwards."""
    import timm  # imported here: the tiny configuration does not need timm

    return timm.create_model('efficientnet_b0', features_only=True, pretrained=False)


def build_encoder(backbone: str) -> nn.Module:
    """'efficientnet_b0' or 'tiny' -> a new randomly initialised encoder."""
    if backbone == 'efficientnet_b0':
        return efficientnet_b0_encoder()
    if backbone == 'tiny':
        return tiny_encoder()
    raise ValueError(f"backbone must be 'efficientnet_b0' or 'tiny', got {backbone!r}")
