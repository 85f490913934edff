"""Pinhole images (KITTI) for the descriptor estimator: resampled onto a panorama canvas.

The orientation-aware descriptor needs azimuth columns. A level pinhole camera with
intrinsics K sees the azimuths |phi| < HFoV / 2 around its optical axis; we resample its
image onto an equirectangular canvas (H, W) whose centre column is the optical axis
(geometry.cameras convention) and mark every canvas column outside the camera's horizontal
field of view as hidden. The estimator then treats the canvas exactly as a FoV-masked
panorama: hidden columns are blanked before the encoder and their azimuth slots drop out
of the matching cosine. With K from KITTI (HFoV about 81 degrees) and a 20-slot canvas,
about 4 of the 20 slots are visible.
"""
from __future__ import annotations

import torch

from geodistill_core.geometry import (
    ImageSamplingGrid,
    panorama_azimuth_from_column,
    panorama_elevation_from_row,
    project_pinhole,
    sample_image,
)


def pinhole_to_panorama(image: torch.Tensor, K: torch.Tensor, canvas_hw: tuple[int, int],
                        visible_cols: torch.Tensor | None = None):
    """Resample pinhole images onto an equirectangular canvas centred on the optical axis.

    image: (B, C, H, W) (preprocessed; canvas pixels the camera does not see are 0).
    K: (B, 3, 3) or (3, 3) intrinsics of image at (H, W).
    canvas_hw: (Hc, Wc) of the canvas.
    visible_cols: optional (B, W) bool pinhole column mask (True = visible).
    Returns canvas (B, C, Hc, Wc) and canvas_visible_cols (B, Wc) bool: True where the
    canvas column's azimuth is inside the horizontal FoV (and, with visible_cols, the
    pinhole column under it at the principal row is visible).
    """
    if image.dim() != 4:
        raise ValueError(f'image must be (B, C, H, W), got {tuple(image.shape)}')
    B, _, H, W = image.shape
    if K.shape not in ((3, 3), (B, 3, 3)):
        raise ValueError(f'K must be (3, 3) or (B, 3, 3) = ({B}, 3, 3), got {tuple(K.shape)}')
    if visible_cols is not None and visible_cols.shape != (B, W):
        raise ValueError(f'visible_cols must be (B, W) = ({B}, {W}), '
                         f'got {tuple(visible_cols.shape)}')
    geo_dtype = torch.float64 if image.dtype == torch.float64 else torch.float32
    K = K.to(device=image.device, dtype=geo_dtype).expand(B, 3, 3)
    Hc, Wc = canvas_hw
    rows = torch.arange(Hc, device=image.device, dtype=geo_dtype)
    cols = torch.arange(Wc, device=image.device, dtype=geo_dtype)
    phi = panorama_azimuth_from_column(cols, Wc).view(1, Wc)  # clockwise from forward
    theta = panorama_elevation_from_row(rows, Hc).view(Hc, 1)  # up positive
    ray = torch.stack([torch.cos(theta) * torch.sin(phi),  # x right
                       (-torch.sin(theta)).expand(Hc, Wc),  # y down
                       torch.cos(theta) * torch.cos(phi)], dim=-1)  # z forward
    uv, in_front = project_pinhole(ray.unsqueeze(0).expand(B, Hc, Wc, 3), K)
    inside = ((uv[..., 0] >= -0.5) & (uv[..., 0] <= W - 0.5)
              & (uv[..., 1] >= -0.5) & (uv[..., 1] <= H - 0.5))
    canvas = sample_image(image, ImageSamplingGrid(uv, in_front & inside, (H, W), False))
    horizon = torch.stack([torch.sin(phi), torch.zeros_like(phi), torch.cos(phi)], dim=-1)
    uv_h, front_h = project_pinhole(horizon.expand(B, Wc, 3), K)
    visible = front_h & (uv_h[..., 0] >= -0.5) & (uv_h[..., 0] <= W - 0.5)
    if visible_cols is not None:
        column = torch.round(uv_h[..., 0]).long().clamp(0, W - 1)
        visible = visible & torch.gather(visible_cols.to(torch.bool), 1, column)
    return canvas, visible
