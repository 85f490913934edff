"""Feature encoders for the descriptor and orientation estimators.

An encoder maps (B, 3, H, W) preprocessed images to a list of feature maps; level l has
shape (B, channels[l], H / stride[l], W / stride[l]). `tiny_encoder` is a few strided
convolutions for CPU tests (translation-equivariant: no pooling, no global operation);
`efficientnet_b0_encoder` is timm's EfficientNet-B0 with random weights; `build_encoder(...,
weights=path)` loads ImageNet weights from a local timm state-dict file (never from the
network).
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


def load_efficientnet_b0_encoder_weights(encoder: nn.Module, path: str) -> None:
    """Load a timm `efficientnet_b0` ImageNet state dict (the backbone registry's file,
    B0_HINT says how to get it) into efficientnet_b0_encoder(); the classifier and the 1x1
    head (conv_head, bn2), which features_only drops, are the only keys left unused.
    Raises FileNotFoundError naming the path and the fix, WeightsMismatchError on any
    other mismatch."""
    from geodistill_core.models.backbones.efficientnet_b0 import B0_HINT
    from geodistill_core.models.backbones.weights import load_state_dict_strict, read_state_dict

    load_state_dict_strict(encoder, read_state_dict(path, B0_HINT), source=str(path),
                           ignorable_unexpected=[r'classifier\..+', r'conv_head\..+',
                                                 r'bn2\..+'])


def build_encoder(backbone: str, weights: str | None = None) -> nn.Module:
    """'efficientnet_b0' or 'tiny' -> a new encoder, randomly initialised, or (B0 only)
    with the ImageNet weights of the local timm file `weights`."""
    if backbone == 'efficientnet_b0':
        encoder = efficientnet_b0_encoder()
        if weights is not None:
            load_efficientnet_b0_encoder_weights(encoder, weights)
        return encoder
    if weights is not None:
        raise ValueError(f'backbone {backbone!r} has no pretrained weights; pass weights=None')
    if backbone == 'tiny':
        return tiny_encoder()
    raise ValueError(f"backbone must be 'efficientnet_b0' or 'tiny', got {backbone!r}")
