"""Sky dome colour: elevation gradient, a glow around the sun and a cloud layer.

Clouds are the world's tileable noise texture projected onto a plane CLOUD_HEIGHT_M
above the camera, so they stay fixed in the world when the camera turns.
"""
from __future__ import annotations

import numpy as np

from geodistill_core.data.synthetic.config import SunConfig
from geodistill_core.data.synthetic.lighting import sun_direction_enu

HORIZON_RGB = np.array([0.62, 0.70, 0.82], dtype=np.float32)
ZENITH_RGB = np.array([0.16, 0.32, 0.66], dtype=np.float32)
CLOUD_RGB = np.array([0.90, 0.90, 0.92], dtype=np.float32)
CLOUD_HEIGHT_M = 1500.0
CLOUD_TEXEL_M = 60.0


def _bilinear_wrap(texture: np.ndarray, x, y) -> np.ndarray:
    """Bilinear lookup in a tileable (S, S) texture at texel coordinates (N,)."""
    size = texture.shape[0]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    i0, j0 = x0.astype(np.int64) % size, y0.astype(np.int64) % size
    i1, j1 = (i0 + 1) % size, (j0 + 1) % size
    top = texture[j0, i0] * (1 - fx) + texture[j0, i1] * fx
    bottom = texture[j1, i0] * (1 - fx) + texture[j1, i1] * fx
    return top * (1 - fy) + bottom * fy


def sky_rgb(dir_east: np.ndarray, dir_north: np.ndarray, slope: np.ndarray,
            sun: SunConfig, noise: np.ndarray) -> np.ndarray:
    """Linear sky colour (N, 3) float32 of rays with horizontal unit direction
    (dir_east, dir_north) (N,) and slope tan(elevation) (N,)."""
    s = np.maximum(slope, 0.0).astype(np.float32)
    sin_el = s / np.sqrt(1.0 + s * s)
    mix = np.sqrt(sin_el)[:, None]
    rgb = HORIZON_RGB * (1 - mix) + ZENITH_RGB * mix
    cos_el = 1.0 / np.sqrt(1.0 + s * s)
    sun_dir = sun_direction_enu(sun).astype(np.float32)
    cos_sun = (dir_east * cos_el * sun_dir[0] + dir_north * cos_el * sun_dir[1]
               + sin_el * sun_dir[2])
    glow = 0.5 * np.clip(cos_sun, 0, 1) ** 24 + 0.12 * np.clip(cos_sun, 0, 1) ** 4
    rgb = rgb + np.array(sun.sun_rgb, np.float32) * glow[:, None]
    dist = CLOUD_HEIGHT_M / np.maximum(s, 0.02)
    n = _bilinear_wrap(noise, dir_east * dist / CLOUD_TEXEL_M, dir_north * dist / CLOUD_TEXEL_M)
    cover = np.clip((n - 0.35) / 0.9, 0.0, 1.0) * np.clip(s * 6.0, 0.0, 1.0) * 0.9
    shade = (0.78 + 0.22 * np.clip(n / 2.0, 0, 1))[:, None]
    return rgb * (1 - cover[:, None]) + CLOUD_RGB * shade * cover[:, None]
