"""Differentiable bilinear sampling at pixel coordinates (OpenCV pixel-centre convention)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ImageSamplingGrid:
    """Where each output cell samples an image.

    uv_px: (B, h, w, 2) pixel coordinates (u = column, v = row; pixel centres at integers).
    valid: (B, h, w) bool; False where the ray misses the image (behind the camera,
        outside the image, above the horizon).
    image_hw: (H, W) of the image the coordinates refer to.
    wrap_columns: True for 360-degree panoramas (column W wraps to column 0).
    """

    uv_px: torch.Tensor
    valid: torch.Tensor
    image_hw: tuple[int, int]
    wrap_columns: bool


def sample_image(image: torch.Tensor, grid: ImageSamplingGrid,
                 mode: str = 'bilinear') -> torch.Tensor:
    """Sample image (B, C, H, W) at grid.uv_px -> (B, C, h, w), zero where not valid.

    The image may be a feature map at another resolution than grid.image_hw: coordinates
    are rescaled with the pixel-centre convention. Panoramas wrap around horizontally.
    """
    if image.dim() != 4:
        raise ValueError(f'image must be (B, C, H, W), got {tuple(image.shape)}')
    B, _, H, W = image.shape
    if grid.uv_px.shape[0] != B:
        raise ValueError(f'batch mismatch: image {B}, grid {grid.uv_px.shape[0]}')
    uv = grid.uv_px.to(image.dtype)
    sx = W / grid.image_hw[1]
    sy = H / grid.image_hw[0]
    u = (uv[..., 0] + 0.5) * sx - 0.5
    v = (uv[..., 1] + 0.5) * sy - 0.5
    if grid.wrap_columns:
        u = torch.remainder(u + 0.5, W) - 0.5 + 1.0  # +1: one padded column on the left
        image = torch.cat([image[..., -1:], image, image[..., :1]], dim=-1)
        W = W + 2
    xy_norm = torch.stack([(u + 0.5) * (2.0 / W) - 1.0, (v + 0.5) * (2.0 / H) - 1.0], dim=-1)
    out = F.grid_sample(image, xy_norm, mode=mode, padding_mode='zeros', align_corners=False)
    return out * grid.valid.unsqueeze(1).to(out.dtype)
