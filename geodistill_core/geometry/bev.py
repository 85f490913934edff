"""Ground-plane (BEV) projections: where a metric north-up grid samples a camera image.

A BevGrid is a north-up raster centred on the camera (raster.py convention: row grows
south, column grows east, cell centre offset (index - (n - 1) / 2) * cell_m). The camera
stands `camera_height_m` above a flat ground plane with map-frame yaw `yaw_rad`
(0 = east, counter-clockwise). The projections return an ImageSamplingGrid; sample with
geometry.sampling.sample_image. Everything is batched, differentiable with respect to
yaw and height (and the image), and follows the device and dtype of `yaw_rad`.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import torch

from geodistill_core.geometry.cameras import (
    panorama_column_from_azimuth,
    panorama_row_from_elevation,
    project_pinhole,
)
from geodistill_core.geometry.raster import pixel_to_offset_en_m
from geodistill_core.geometry.sampling import ImageSamplingGrid

DOWNWARD_VIEW_FOV_DEG = 170.0


@dataclass(frozen=True)
class BevGrid:
    """rows x cols cells of cell_m metres, north-up, centred on the camera."""

    rows: int
    cols: int
    cell_m: float

    def __post_init__(self):
        if self.rows <= 0 or self.cols <= 0 or not self.cell_m > 0:
            raise ValueError(f'invalid BEV grid {self.rows}x{self.cols} @ {self.cell_m} m')

    def cell_offsets_en_m(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """(rows, cols, 2) east/north offset of each cell centre from the camera, metres."""
        rows = torch.arange(self.rows, device=device, dtype=dtype)
        cols = torch.arange(self.cols, device=device, dtype=dtype)
        rr, cc = torch.meshgrid(rows, cols, indexing='ij')
        east_m, north_m = pixel_to_offset_en_m(rr, cc, self.rows, self.cols, self.cell_m)
        return torch.stack([east_m, north_m], dim=-1)


def downward_view_grid(size_px: int, camera_height_m: float,
                       fov_deg: float = DOWNWARD_VIEW_FOV_DEG) -> BevGrid:
    """The orientation estimator's virtual downward pinhole camera as a BEV grid.

    A pinhole looking straight down from height h with field of view `fov_deg` and
    size_px x size_px pixels (north up) sees the ground on a uniform grid of cell
    2 h tan(fov / 2) / size_px metres (about 45.7 m across at h = 2 m, FoV 170 deg).
    """
    if not 0 < fov_deg < 180:
        raise ValueError(f'fov_deg must be in (0, 180), got {fov_deg}')
    extent_m = 2.0 * camera_height_m * math.tan(math.radians(fov_deg) / 2.0)
    return BevGrid(size_px, size_px, extent_m / size_px)


def _batched(value, like: torch.Tensor) -> torch.Tensor:
    """float or (B,) -> (B, 1, 1) tensor on like's device and dtype."""
    t = torch.as_tensor(value, device=like.device, dtype=like.dtype)
    return t.expand(like.shape[0]).reshape(-1, 1, 1)


def _check_yaw(yaw_rad: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(yaw_rad) or yaw_rad.dim() != 1:
        raise ValueError('yaw_rad must be a (B,) tensor, got '
                         f'{tuple(yaw_rad.shape) if torch.is_tensor(yaw_rad) else type(yaw_rad)}')
    return yaw_rad


def panorama_bev_grid(grid: BevGrid, yaw_rad: torch.Tensor, camera_height_m,
                      pano_hw: tuple[int, int]) -> ImageSamplingGrid:
    """Spherical transform: BEV cells -> equirectangular panorama pixels.

    yaw_rad: (B,) map-frame yaw of the panorama's centre column.
    camera_height_m: float or (B,). pano_hw: (H, W) of the panorama.
    A cell at east/north offset (e, n) has bearing alpha = atan2(n, e), relative azimuth
    phi = yaw - alpha, range r = hypot(e, n) and elevation -atan2(h, r).
    Returns uv_px (B, rows, cols, 2) and valid (B, rows, cols); wraps columns.
    """
    yaw = _check_yaw(yaw_rad)
    en = grid.cell_offsets_en_m(yaw.device, yaw.dtype)
    east, north = en[..., 0], en[..., 1]
    h = _batched(camera_height_m, yaw)
    phi = yaw.view(-1, 1, 1) - torch.atan2(north, east)
    r = torch.sqrt(east * east + north * north)
    theta = -torch.atan2(h, r)
    H, W = pano_hw
    u = panorama_column_from_azimuth(phi, W)
    v = panorama_row_from_elevation(theta, H)
    valid = (h > 0) & (v >= -0.5) & (v <= H - 0.5)
    return ImageSamplingGrid(torch.stack([u, v], dim=-1), valid.expand_as(u), (H, W), True)


def pinhole_bev_grid(grid: BevGrid, yaw_rad: torch.Tensor, camera_height_m,
                     K: torch.Tensor, image_hw: tuple[int, int]) -> ImageSamplingGrid:
    """Inverse perspective mapping: BEV cells -> pinhole image pixels.

    yaw_rad: (B,) map-frame yaw of the optical axis (level camera, no roll or pitch).
    camera_height_m: float or (B,). K: (B, 3, 3) or (3, 3) intrinsics of the image of
    size image_hw (H, W). The ground point (e, n, -h) relative to the camera has camera
    coordinates x = e sin(yaw) - n cos(yaw) (right), y = h (down), z = e cos(yaw) +
    n sin(yaw) (forward). Valid: in front (z > 0), below the horizon (y > 0), inside.
    Returns uv_px (B, rows, cols, 2) and valid (B, rows, cols); no column wrap.
    """
    yaw = _check_yaw(yaw_rad)
    if K.dim() == 2:
        K = K.unsqueeze(0).expand(yaw.shape[0], 3, 3)
    K = K.to(device=yaw.device, dtype=yaw.dtype)
    en = grid.cell_offsets_en_m(yaw.device, yaw.dtype)
    east, north = en[..., 0], en[..., 1]
    h = _batched(camera_height_m, yaw)
    c, s = torch.cos(yaw).view(-1, 1, 1), torch.sin(yaw).view(-1, 1, 1)
    x = east * s - north * c
    z = east * c + north * s
    y = h.expand_as(x)
    uv, in_front = project_pinhole(torch.stack([x, y, z], dim=-1), K)
    H, W = image_hw
    inside = ((uv[..., 0] >= -0.5) & (uv[..., 0] <= W - 0.5)
              & (uv[..., 1] >= -0.5) & (uv[..., 1] <= H - 0.5))
    valid = in_front & (y > 0) & inside
    return ImageSamplingGrid(uv, valid, (H, W), False)
