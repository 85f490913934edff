"""Coarse-to-fine decoder: orientation-aware matching repeated at every resolution.

Level 0 (coarse_size_px, 8x8): the deepest satellite features, average-pooled (or
bilinearly resized) to 8x8, plus a skip of that resolution if the encoder has one, go
through a 1x1 conv to N d_0 channels: the coarse satellite descriptor map, matched against
the ground descriptor projected to d_0 channels per slot (matching.py) -> (B, N, 8, 8).
Level l > 0: the previous decoder features and matching volume, upsampled x2, plus the
satellite skip features of that resolution, go through two conv 3x3 + BN + ReLU blocks;
a 1x1 conv gives the level's satellite descriptors (N d_l channels) for a new matching
volume. Every level's logits come from a 1x1 conv on [features, matching]. At the finest
level (the satellite resolution) a conv 3x3 on [features, matching] gives the unit
(cos, sin) orientation field (linear: no hidden ReLU units that could die and freeze it).
The ground projections are per-slot linear maps (shared by all slots), so matching stays
orientation-equivariant.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from geodistill_core.models.ccvpe.config import DescriptorEstimatorConfig
from geodistill_core.models.ccvpe.matching import orientation_cosine


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def _resize(features: torch.Tensor, size_px: int) -> torch.Tensor:
    if features.shape[-2:] == (size_px, size_px):
        return features
    if min(features.shape[-2:]) >= size_px:
        return F.adaptive_avg_pool2d(features, size_px)
    return F.interpolate(features, size=(size_px, size_px), mode='bilinear',
                         align_corners=False)


class CoarseToFineDecoder(nn.Module):
    """Satellite features + ground descriptor -> logits, matching volumes, orientation."""

    def __init__(self, config: DescriptorEstimatorConfig):
        super().__init__()
        N = config.n_orientations
        self.sizes_px = config.level_sizes_px()
        deepest, *others = config.satellite_levels
        by_size = {config.satellite_size_px // level.stride_px: level for level in others}
        self.skip_keys = [by_size[s].key if s in by_size else None for s in self.sizes_px]
        skip_channels = [by_size[s].channels if s in by_size else 0 for s in self.sizes_px]
        self.deepest_key = deepest.key
        dims = config.slot_dims
        self.ground_projections = nn.ModuleList(
            nn.Linear(config.ground_descriptor_dim, d) for d in dims)
        self.coarse = nn.Conv2d(deepest.channels + skip_channels[0], N * dims[0], 1)
        self.blocks = nn.ModuleList(
            _conv_block(N * dims[level - 1] + N + skip_channels[level], N * dims[level])
            for level in range(1, len(dims)))
        self.sat_descriptors = nn.ModuleList(
            nn.Conv2d(N * d, N * d, kernel_size=1) for d in dims[1:])
        self.logit_heads = nn.ModuleList(  # no bias: a softmax over all cells ignores it
            nn.Conv2d(N * d + N, 1, kernel_size=1, bias=False) for d in dims)
        self.orientation_head = nn.Conv2d(N * dims[-1] + N, 2, 3, padding=1)

    def forward(self, sat_features: dict, ground_descriptor: torch.Tensor,
                slot_visible: torch.Tensor | None) -> dict[str, Any]:
        """sat_features: {key: (B, C_k, h_k, w_k)} satellite encoder maps by level key.
        ground_descriptor: (B, N, D). slot_visible: (B, N) bool or None.

        Returns {'logits': per level (B, s_l, s_l), 'matching': per level (B, N, s_l, s_l),
        'orientation_field': (B, 2, S, S) unit (cos, sin) at the finest level}.
        """
        logits, matching = [], []
        x = _resize(sat_features[self.deepest_key], self.sizes_px[0])
        if self.skip_keys[0] is not None:
            x = torch.cat([x, sat_features[self.skip_keys[0]]], dim=1)
        x = self.coarse(x)
        descriptors = x
        for level, size_px in enumerate(self.sizes_px):
            if level > 0:
                up = F.interpolate(torch.cat([x, matching[-1]], dim=1), scale_factor=2.0,
                                   mode='bilinear', align_corners=False)
                if self.skip_keys[level] is not None:
                    up = torch.cat([up, sat_features[self.skip_keys[level]]], dim=1)
                x = self.blocks[level - 1](up)
                descriptors = self.sat_descriptors[level - 1](x)
            if descriptors.shape[-2:] != (size_px, size_px):
                raise ValueError(f'decoder level {level} is {tuple(descriptors.shape)}, '
                                 f'expected {size_px}x{size_px}: check the satellite size')
            ground = self.ground_projections[level](ground_descriptor)
            matching.append(orientation_cosine(descriptors, ground, slot_visible))
            logits.append(self.logit_heads[level](torch.cat([x, matching[-1]], dim=1))[:, 0])
        raw = self.orientation_head(torch.cat([x, matching[-1]], dim=1))
        orientation = F.normalize(raw, dim=1, eps=1e-6)
        return {'logits': logits, 'matching': matching, 'orientation_field': orientation}
