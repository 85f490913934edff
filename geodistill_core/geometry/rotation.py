"""Yaw rotation of panoramas (column roll) and of north-up BEV grids.

roll_panorama(pano, d) is the panorama seen by the same camera turned counter-clockwise
(to the left) by d radians: content moves right by d W / (2 pi) columns. Consequently
projecting roll_panorama(pano, d) with yaw psi + d gives the BEV of pano with yaw psi,
and projecting it with an unchanged yaw psi gives rotate_bev(bev, -d).

rotate_bev(bev, a) turns the content of a north-up grid counter-clockwise by a radians
(as seen on the map) about the grid centre.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def roll_panorama(pano: torch.Tensor, yaw_rad: torch.Tensor) -> torch.Tensor:
    """Roll (B, C, H, W) panoramas by yaw_rad (B,) (sub-pixel, linear, wrap-around).

    out[..., u] = pano[..., u - s] with s = yaw W / (2 pi); differentiable in both inputs.
    """
    if pano.dim() != 4 or yaw_rad.dim() != 1 or yaw_rad.shape[0] != pano.shape[0]:
        raise ValueError(f'expected pano (B, C, H, W) and yaw (B,), got {tuple(pano.shape)} '
                         f'and {tuple(yaw_rad.shape)}')
    B, C, H, W = pano.shape
    shift = yaw_rad.to(pano.dtype) * (W / (2 * math.pi))
    whole = torch.floor(shift)
    frac = (shift - whole).view(B, 1, 1, 1)
    cols = torch.arange(W, device=pano.device).view(1, W)
    src0 = torch.remainder(cols - whole.long().view(B, 1), W)  # (B, W)
    src1 = torch.remainder(src0 - 1, W)
    index0 = src0.view(B, 1, 1, W).expand(B, C, H, W)
    index1 = src1.view(B, 1, 1, W).expand(B, C, H, W)
    return (1 - frac) * pano.gather(-1, index0) + frac * pano.gather(-1, index1)


def rotate_bev(bev: torch.Tensor, angle_rad: torch.Tensor) -> torch.Tensor:
    """Rotate north-up grids (B, C, H, W) counter-clockwise by angle_rad (B,).

    Output cell at offset p (east, north) samples the input at R(-angle) p; cells whose
    source falls outside are zero. Bilinear, differentiable.
    """
    if bev.dim() != 4 or angle_rad.dim() != 1 or angle_rad.shape[0] != bev.shape[0]:
        raise ValueError(f'expected bev (B, C, H, W) and angle (B,), got {tuple(bev.shape)} '
                         f'and {tuple(angle_rad.shape)}')
    B, _, H, W = bev.shape
    dtype, device = bev.dtype, bev.device
    rows = torch.arange(H, device=device, dtype=dtype) - (H - 1) / 2.0
    cols = torch.arange(W, device=device, dtype=dtype) - (W - 1) / 2.0
    rr, cc = torch.meshgrid(rows, cols, indexing='ij')
    east, north = cc, -rr  # in cell units
    c = torch.cos(angle_rad.to(dtype)).view(B, 1, 1)
    s = torch.sin(angle_rad.to(dtype)).view(B, 1, 1)
    src_east = c * east + s * north
    src_north = -s * east + c * north
    u = src_east + (W - 1) / 2.0
    v = -src_north + (H - 1) / 2.0
    xy_norm = torch.stack([(u + 0.5) * (2.0 / W) - 1.0, (v + 0.5) * (2.0 / H) - 1.0], dim=-1)
    return F.grid_sample(bev, xy_norm, mode='bilinear', padding_mode='zeros',
                         align_corners=False)
