"""Camera models: equirectangular panorama and pinhole.

Panorama (H, W), convention pinned by tests (method.md section 6):
- the camera's forward axis is at column coordinate (W - 1) / 2 (the centre);
- relative azimuth phi grows clockwise, to the right: phi = (u - (W - 1) / 2) * 2 pi / W;
- elevation theta (up positive) = pi / 2 - (v + 0.5) * pi / H: row 0 looks up, the
  horizon lies between rows H/2 - 1 and H/2.
A map-frame bearing alpha (ENU, counter-clockwise from east) seen from a camera of yaw
psi (same convention) has phi = psi - alpha.

Pinhole: OpenCV camera frame (x right, y down, z forward), K = [[fx, 0, cx], [0, fy, cy],
[0, 0, 1]], pixel centres at integer coordinates (as cv2.projectPoints).
Functions take torch tensors; shapes in docstrings.
"""
from __future__ import annotations

import math

import torch


def panorama_column_from_azimuth(phi_rad: torch.Tensor, width_px: int) -> torch.Tensor:
    """Relative azimuth (clockwise from forward, rad) -> column coordinate in [-0.5, W-0.5)."""
    u = phi_rad * (width_px / (2 * math.pi)) + (width_px - 1) / 2.0
    return torch.remainder(u + 0.5, width_px) - 0.5


def panorama_azimuth_from_column(u_px: torch.Tensor, width_px: int) -> torch.Tensor:
    """Column coordinate -> relative azimuth (clockwise from forward, rad)."""
    return (u_px - (width_px - 1) / 2.0) * (2 * math.pi / width_px)


def panorama_row_from_elevation(theta_rad: torch.Tensor, height_px: int) -> torch.Tensor:
    """Elevation (up positive, rad) -> row coordinate; the horizon is at (H - 1) / 2."""
    return (math.pi / 2 - theta_rad) * (height_px / math.pi) - 0.5


def panorama_elevation_from_row(v_px: torch.Tensor, height_px: int) -> torch.Tensor:
    """Row coordinate -> elevation (up positive, rad)."""
    return math.pi / 2 - (v_px + 0.5) * (math.pi / height_px)


def scale_intrinsics(K: torch.Tensor, from_hw: tuple[int, int],
                     to_hw: tuple[int, int]) -> torch.Tensor:
    """Intrinsics of an image resized from `from_hw` to `to_hw` (H, W).

    K: (..., 3, 3). With pixel centres at integers (OpenCV, cv2.resize), a coordinate x
    maps to (x + 0.5) * s - 0.5, so fx' = s fx and cx' = s (cx + 0.5) - 0.5.
    Returns a new (..., 3, 3) tensor.
    """
    if K.shape[-2:] != (3, 3):
        raise ValueError(f'K must be (..., 3, 3), got {tuple(K.shape)}')
    sy = to_hw[0] / from_hw[0]
    sx = to_hw[1] / from_hw[1]
    K2 = K.clone()
    K2[..., 0, 0] = K[..., 0, 0] * sx
    K2[..., 0, 1] = K[..., 0, 1] * sx
    K2[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx - 0.5
    K2[..., 1, 1] = K[..., 1, 1] * sy
    K2[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy - 0.5
    return K2


def project_pinhole(xyz_cam: torch.Tensor, K: torch.Tensor, eps: float = 1e-6):
    """Project camera-frame points.

    xyz_cam: (B, ..., 3) in the OpenCV camera frame; K: (B, 3, 3).
    Returns uv_px (B, ..., 2) and in_front (B, ...) bool (z > eps). Points behind the
    camera get finite but meaningless uv (z clamped), flagged by in_front.
    """
    if K.dim() != 3 or K.shape[-2:] != (3, 3):
        raise ValueError(f'K must be (B, 3, 3), got {tuple(K.shape)}')
    z = xyz_cam[..., 2]
    in_front = z > eps
    z_safe = torch.where(in_front, z, torch.full_like(z, eps))
    extra = (1,) * (xyz_cam.dim() - 2)
    fx = K[:, 0, 0].view(-1, *extra)
    fy = K[:, 1, 1].view(-1, *extra)
    cx = K[:, 0, 2].view(-1, *extra)
    cy = K[:, 1, 2].view(-1, *extra)
    skew = K[:, 0, 1].view(-1, *extra)
    x = xyz_cam[..., 0] / z_safe
    y = xyz_cam[..., 1] / z_safe
    uv = torch.stack([fx * x + skew * y + cx, fy * y + cy], dim=-1)
    return uv, in_front
