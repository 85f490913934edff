"""Orientation-aware ground descriptor: one descriptor per azimuth slot of a panorama.

Slot j (of N) covers columns [j W / N, (j + 1) W / N) of the panorama, i.e. relative
azimuths (clockwise from the forward axis, geometry.cameras) centred on
phi_j = (j + 0.5 - N / 2) * 360 / N degrees. Rolling the panorama by W / N columns
(geometry.roll_panorama by 360 / N degrees: the camera turned counter-clockwise by one slot)
rolls the descriptor by one slot, exactly when the encoder is width-circular.
"""
from __future__ import annotations

import torch
from torch import nn


class OrientationAwareDescriptor(nn.Module):
    """Collapse the height of a ground feature map; keep one descriptor per azimuth slot.

    Each column becomes a height-attention-weighted sum of its (1x1-projected) features;
    columns are then averaged in groups of w / N per slot. Every operation acts on each
    column alike, so the descriptor is equivariant to column rolls.
    """

    def __init__(self, in_channels: int, descriptor_dim: int, n_slots: int):
        super().__init__()
        self.n_slots = n_slots
        self.value = nn.Conv2d(in_channels, descriptor_dim, kernel_size=1)
        self.attention = nn.Conv2d(in_channels, 1, kernel_size=1, bias=False)  # softmax: no bias

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: (B, C, h, w) ground features, w a multiple of n_slots.

        Returns (B, N, D): slot-major ground descriptors.
        """
        if features.dim() != 4 or features.shape[-1] % self.n_slots:
            raise ValueError(f'ground features must be (B, C, h, w) with w a multiple of '
                             f'{self.n_slots} slots, got {tuple(features.shape)}')
        B, _, _, w = features.shape
        weight = torch.softmax(self.attention(features), dim=2)  # (B, 1, h, w) over rows
        columns = (self.value(features) * weight).sum(dim=2)  # (B, D, w)
        slots = columns.view(B, -1, self.n_slots, w // self.n_slots).mean(dim=-1)
        return slots.transpose(1, 2).contiguous()


def slot_visibility(visible_cols: torch.Tensor, n_slots: int) -> torch.Tensor:
    """(B, W) column mask (True = visible) -> (B, N) slot mask.

    A slot is visible only when every one of its W / N columns is: a masked column never
    contributes to a visible slot's image content.
    """
    if visible_cols.dim() != 2 or visible_cols.shape[1] % n_slots:
        raise ValueError(f'visible_cols must be (B, W) with W a multiple of {n_slots}, '
                         f'got {tuple(visible_cols.shape)}')
    B, W = visible_cols.shape
    return visible_cols.to(torch.bool).view(B, n_slots, W // n_slots).all(dim=-1)
