"""DPT-style head: ViT tokens from four layers -> multi-level CNN features at strides 8, 4, 2.

After Ranftl et al., "Vision Transformers for Dense Prediction" (ICCV 2021): reassemble
each layer's patch grid at 4x, 2x, 1x, 1/2x, fuse coarse to fine with residual conv units,
then resample the fused maps onto the exact output grids (H/8, H/4, H/2) so every level's
cell is an integer number of input pixels whatever the patch size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F


@dataclass(frozen=True)
class DptHeadDims:
    """embed_dim: ViT width; reassemble_channels: per tapped layer (shallow to deep);
    fusion_channels: width of the fusion path; out_channels: levels at strides 8, 4, 2."""

    embed_dim: int = 768
    reassemble_channels: tuple[int, int, int, int] = (64, 128, 256, 256)
    fusion_channels: int = 128
    out_channels: tuple[int, int, int] = (256, 128, 64)


class ResidualConvUnit(nn.Module):
    """x + conv3x3(relu(conv3x3(relu(x)))), shape-preserving (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """(x [+ rcu(skip)]) -> rcu -> bilinear resize to `size_hw` -> conv1x1."""

    def __init__(self, channels: int, has_skip: bool) -> None:
        super().__init__()
        self.skip_unit = ResidualConvUnit(channels) if has_skip else None
        self.unit = ResidualConvUnit(channels)
        self.project = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None,
                size_hw: tuple[int, int]) -> torch.Tensor:
        """x, skip: (B, C, h, w) -> (B, C, *size_hw)."""
        if self.skip_unit is not None:
            x = x + self.skip_unit(skip)
        x = F.interpolate(self.unit(x), size=size_hw, mode='bilinear', align_corners=False)
        return self.project(x)


def _resample(channels: int, factor: float) -> nn.Module:
    if factor == 4:
        return nn.ConvTranspose2d(channels, channels, 4, stride=4)
    if factor == 2:
        return nn.ConvTranspose2d(channels, channels, 2, stride=2)
    if factor == 1:
        return nn.Identity()
    return nn.Conv2d(channels, channels, 3, stride=2, padding=1)


class DptHead(nn.Module):
    """Four token maps (B, D, h, w) -> levels (B, C_l, H / s_l, W / s_l), s = (8, 4, 2)."""

    strides_px = (8, 4, 2)

    def __init__(self, dims: DptHeadDims) -> None:
        super().__init__()
        fusion = dims.fusion_channels
        self.reassemble = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dims.embed_dim, c, 1), _resample(c, factor),
                          nn.Conv2d(c, fusion, 3, padding=1, bias=False))
            for c, factor in zip(dims.reassemble_channels, (4, 2, 1, 0.5), strict=True))
        self.fuse = nn.ModuleList(FusionBlock(fusion, has_skip=i < 3) for i in range(4))
        self.out = nn.ModuleList(
            nn.Sequential(nn.Conv2d(fusion, fusion, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(fusion, c, 1)) for c in dims.out_channels)

    def forward(self, tokens: list[torch.Tensor], image_hw: tuple[int, int]) -> list[torch.Tensor]:
        """tokens: 4 maps (B, D, h, w), shallow to deep; image_hw: (H, W), multiples of 8."""
        maps = [layer(t) for layer, t in zip(self.reassemble, tokens, strict=True)]
        h, w = maps[0].shape[-2:]
        fused_3 = self.fuse[3](maps[3], None, maps[2].shape[-2:])
        fused_2 = self.fuse[2](fused_3, maps[2], maps[1].shape[-2:])
        fused_1 = self.fuse[1](fused_2, maps[1], maps[0].shape[-2:])
        fused_0 = self.fuse[0](fused_1, maps[0], (2 * h, 2 * w))
        levels = []
        for head, fused, stride in zip(self.out, (fused_2, fused_1, fused_0), self.strides_px,
                                       strict=True):
            size_hw = (image_hw[0] // stride, image_hw[1] // stride)
            levels.append(head(F.interpolate(fused, size=size_hw, mode='bilinear',
                                             align_corners=False)))
        return levels
