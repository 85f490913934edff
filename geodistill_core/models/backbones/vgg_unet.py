"""VGG16 blocks 1-3 (torchvision architecture) + a U-Net decoder: features at 1/8, 1/4, 1/2.

'vgg16_unet': decoder widths 128/64; 'vgg16_unet_g2s': G2SWeakly's 64/16 (same encoder).

The G2SWeakly-style correlation estimator uses levels 0 (1/8) and 2 (1/2). Encoder key
names equal torchvision's `vgg16().features.<i>` for i <= 16, so a torchvision vgg16 state
dict loads directly (its blocks 4-5 and classifier are the documented ignorable keys).
"""
from __future__ import annotations

from dataclasses import dataclass
import re

import torch
from torch import nn
import torch.nn.functional as F
from torchvision.models.vgg import make_layers

from geodistill_core.models.backbones.preprocess import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    Preprocess,
)
from geodistill_core.models.backbones.record import BackboneRecord
from geodistill_core.models.backbones.weights import load_state_dict_strict, read_state_dict

ENCODER_LAST_INDEX = 16  # torchvision vgg16.features index of the pool after block 3


@dataclass(frozen=True)
class VggUnetDims:
    """Channel widths. block_channels: VGG blocks 1-3; decoder_channels: 1/4 and 1/2 levels."""

    block_channels: tuple[int, int, int] = (64, 128, 256)
    decoder_channels: tuple[int, int] = (128, 64)


VGG16_DIMS = VggUnetDims()
# G2SWeakly's decoder widths (64 at 1/4, 16 at 1/2): the paper presets' backbone. The
# default 128/64 stays under its own name so every saved model rebuilds unchanged.
G2S_DIMS = VggUnetDims(decoder_channels=(64, 16))
TINY_DIMS = VggUnetDims(block_channels=(8, 16, 16), decoder_channels=(16, 8))
VGG16_HINT = (
    'Save torchvision\'s ImageNet VGG16 once on a connected machine: python -c "import torch, '
    'torchvision; torch.save(torchvision.models.vgg16(weights=\'IMAGENET1K_V1\').state_dict(), '
    '\'vgg16.pth\')" and pass its path as BackboneConfig.weights')


class DecoderBlock(nn.Module):
    """Upsample to the skip's size, concatenate, conv3x3 + ReLU + conv3x3."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """coarse: (B, C_in, h, w); skip: (B, C_skip, H, W) -> (B, C_out, H, W)."""
        up = F.interpolate(F.relu(coarse), size=skip.shape[-2:], mode='bilinear',
                           align_corners=False)
        return self.conv2(F.relu(self.conv1(torch.cat([up, skip], dim=1))))


class VggUnet(nn.Module):
    """VGG16 blocks 1-3 encoder (each block ends with a 2x2 max-pool) + 2-step U-Net decoder."""

    strides_px = (8, 4, 2)

    def __init__(self, dims: VggUnetDims = VGG16_DIMS) -> None:
        super().__init__()
        c1, c2, c3 = dims.block_channels
        self.features = make_layers([c1, c1, 'M', c2, c2, 'M', c3, c3, c3, 'M'])
        self.decode_4 = DecoderBlock(c3, c2, dims.decoder_channels[0])
        self.decode_2 = DecoderBlock(dims.decoder_channels[0], c1, dims.decoder_channels[1])
        self.channels = (c3, *dims.decoder_channels)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W) preprocessed, H and W multiples of 8.

        Returns [(B, C0, H/8, W/8), (B, C1, H/4, W/4), (B, C2, H/2, W/2)], coarse to fine.
        """
        pooled = []
        x = images
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                pooled.append(x)
        half, quarter, eighth = pooled
        level_4 = self.decode_4(eighth, quarter)
        return [eighth, level_4, self.decode_2(level_4, half)]


def load_vgg16_weights(model: VggUnet, path: str) -> None:
    """Load torchvision vgg16 `features.0..16` into the encoder; the decoder stays random.

    Blocks 4-5 (`features.17..30`) and the classifier are the only keys that may go unused.
    """
    renamed = {}
    for key, tensor in read_state_dict(path, VGG16_HINT).items():
        match = re.fullmatch(r'features\.(\d+)\.(.+)', key)
        in_encoder = match is not None and int(match[1]) <= ENCODER_LAST_INDEX
        renamed[f'{match[1]}.{match[2]}' if in_encoder else key] = tensor
    load_state_dict_strict(model.features, renamed, source=path,
                           ignorable_unexpected=[r'features\.(1[7-9]|2\d|30)\..+',
                                                 r'classifier\..+'])


def _record(name: str, dims: VggUnetDims, pretrained: bool) -> BackboneRecord:
    return BackboneRecord(
        name=name, constructor=lambda: VggUnet(dims),
        load_weights=load_vgg16_weights if pretrained else None, default_weights=None,
        weights_hint=VGG16_HINT if pretrained else 'tiny test variant: random weights only',
        preprocess=Preprocess(IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, input_multiple_px=8),
        strides_px=VggUnet.strides_px,
        channels=(dims.block_channels[2], *dims.decoder_channels))


RECORDS = (_record('vgg16_unet', VGG16_DIMS, pretrained=True),
           _record('vgg16_unet_g2s', G2S_DIMS, pretrained=True),
           _record('vgg16_unet_tiny', TINY_DIMS, pretrained=False))
