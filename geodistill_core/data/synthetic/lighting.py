"""Sun lighting on a north-up height raster: sun vector, cast shadows, surface normals.

Cast shadows use a doubling sweep: with d the one-cell step towards the sun and dz the
rise of a sun ray over one cell, S_n(p) = max_{0 <= k < n} h(p + k d) - k dz is built by
S_2n(p) = max(S_n(p), S_n(p + n d) - n dz) in log2(L) passes over the raster (offsets
rounded to whole cells). A cell is lit when max_{k >= 1} h(p + k d) - k dz <= h(p).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from geodistill_core.data.synthetic.config import SunConfig

SHADOW_EPS_M = 0.08


def sun_direction_enu(sun: SunConfig) -> np.ndarray:
    """(3,) unit vector towards the sun in the map frame (east, north, up)."""
    az, el = math.radians(sun.azimuth_deg), math.radians(sun.elevation_deg)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def _shifted(a: np.ndarray, dr: int, dc: int, fill: float) -> np.ndarray:
    """out[r, c] = a[r + dr, c + dc] (fill outside)."""
    rows, cols = a.shape
    out = np.full_like(a, fill)
    if abs(dr) >= rows or abs(dc) >= cols:
        return out
    out[max(0, -dr):rows - max(0, dr), max(0, -dc):cols - max(0, dc)] = \
        a[max(0, dr):rows + min(0, dr), max(0, dc):cols + min(0, dc)]
    return out


def cast_shadow_lit(height_m: np.ndarray, cell_m: float, sun: SunConfig,
                    soft_px: float = 0.7) -> np.ndarray:
    """Fraction of direct sun reaching each cell, (R, C) float32 in [0, 1].

    height_m: (R, C) float32 surface heights (buildings, canopy tops, cars) above a flat
    ground; everything outside the raster is treated as ground (height 0).
    """
    if height_m.ndim != 2:
        raise ValueError(f'height_m must be (R, C), got {height_m.shape}')
    h = height_m.astype(np.float32, copy=False)
    hmax = float(h.max()) if h.size else 0.0
    if hmax <= SHADOW_EPS_M:
        return np.ones_like(h)
    az, el = math.radians(sun.azimuth_deg), math.radians(sun.elevation_deg)
    d_row, d_col = -math.sin(az), math.cos(az)  # north is up (row decreases)
    dz = cell_m * math.tan(el)
    reach = int(math.ceil(hmax / dz)) + 1
    s = h.copy()
    n = 1
    while n < reach:
        shifted = _shifted(s, int(round(n * d_row)), int(round(n * d_col)), -1e9)
        np.maximum(s, shifted - np.float32(n * dz), out=s)
        n *= 2
    blocker = _shifted(s, int(round(d_row)), int(round(d_col)), -1e9) - np.float32(dz)
    lit = (blocker <= h + SHADOW_EPS_M).astype(np.float32)
    if soft_px > 0:
        lit = cv2.GaussianBlur(lit, (0, 0), soft_px)
    return lit


def surface_normals(height_m: np.ndarray, cell_m: float, max_slope: float = 2.5,
                    ) -> np.ndarray:
    """Upward unit normals (R, C, 3) in (east, north, up) from central differences.

    Steps steeper than max_slope (walls between a roof and the ground) count as flat.
    """
    h = height_m.astype(np.float32, copy=False)
    gx = np.zeros_like(h)
    gy = np.zeros_like(h)
    gx[:, 1:-1] = (h[:, 2:] - h[:, :-2]) / (2 * cell_m)  # d/d east
    gy[1:-1, :] = (h[:-2, :] - h[2:, :]) / (2 * cell_m)  # d/d north (row 0 is north)
    steep = (np.abs(gx) > max_slope) | (np.abs(gy) > max_slope)
    gx[steep] = 0.0
    gy[steep] = 0.0
    n = np.stack([-gx, -gy, np.ones_like(h)], axis=-1)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)
