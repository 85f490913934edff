"""Fill the city blocks (cells not taken by roads or sidewalks) with ground surfaces.

Each connected block gets one surface drawn from the style's weights: grass, plaza
(paving tiles), parking (asphalt with stall lines) or dirt. Tiles and stalls align with
the road network's lattice rotation. Parking stalls: PARKING_STALL_M wide, in rows of
PARKING_ROW_M deep on both sides of an aisle, repeating every PARKING_PERIOD_M.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from geodistill_core.data.synthetic.grid import value_noise
from geodistill_core.data.synthetic.materials import Material
from geodistill_core.data.synthetic.styles import CityStyle
from geodistill_core.geometry.raster import NorthUpCrop

PARKING_STALL_M = 2.6
PARKING_ROW_M = 5.2
PARKING_PERIOD_M = 17.0
TILE_M = 0.6
MIN_BLOCK_M2 = 40.0
_SURFACES = {'grass': Material.GRASS, 'plaza': Material.PLAZA, 'parking': Material.PARKING,
             'dirt': Material.DIRT}
DIRT_RGB = (0.40, 0.34, 0.26)


def lattice_coords(grid: NorthUpCrop, rotation_rad: float):
    """(u, v) of every cell centre in the network's rotated lattice frame, (R, C) float32."""
    rr = np.arange(grid.rows, dtype=np.float32)[:, None]
    cc = np.arange(grid.cols, dtype=np.float32)[None, :]
    east, north = grid.pixel_to_map(rr, cc)
    c, s = np.float32(math.cos(rotation_rad)), np.float32(math.sin(rotation_rad))
    return c * east + s * north, -s * east + c * north


def hash01(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Deterministic per-integer-pair pseudo-random values in [0, 1), float32."""
    h = (i.astype(np.int64) * 73856093) ^ (j.astype(np.int64) * 19349663)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h >> 7) & 0xFFFF).astype(np.float32) / 65536.0


def parking_stall_lines(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bool mask of the painted stall lines at lattice coordinates (u, v) metres."""
    vm = np.mod(v, PARKING_PERIOD_M)
    in_rows = (vm < PARKING_ROW_M) | (vm > PARKING_PERIOD_M - PARKING_ROW_M)
    return (in_rows & (np.mod(u, PARKING_STALL_M) < 0.12)) | (np.abs(vm - PARKING_ROW_M)
                                                              < 0.06)


def fill_blocks(material: np.ndarray, rgb: np.ndarray, style: CityStyle, grid: NorthUpCrop,
                rotation_rad: float, rng: np.random.Generator) -> np.ndarray:
    """Fill cells whose material is 0, in place. Returns block labels (R, C) int32
    (0 on roads/sidewalks, 1..n per connected block)."""
    free = (material == 0).astype(np.uint8)
    n_labels, labels = cv2.connectedComponents(free, connectivity=4)
    areas = np.bincount(labels.ravel(), minlength=n_labels) * grid.meters_per_px ** 2
    names = [n for n, _ in style.block_surfaces]
    weights = np.array([w for _, w in style.block_surfaces], dtype=np.float64)
    for n in names:
        if n not in _SURFACES:
            raise ValueError(f'unknown block surface {n!r}; choose from {sorted(_SURFACES)}')
    choice = rng.choice(len(names), size=n_labels, p=weights / weights.sum())
    lut = np.array([_SURFACES[names[k]] for k in choice], dtype=np.uint8)
    lut[areas < MIN_BLOCK_M2] = Material.GRASS
    lut[0] = 0
    block_mat = lut[labels]
    todo = free.astype(bool)

    u, v = lattice_coords(grid, rotation_rad)
    cell = grid.meters_per_px
    coarse = value_noise(material.shape, 5.0 / cell, rng)
    patches = value_noise(material.shape, 12.0 / cell, rng)
    fine = rng.standard_normal(material.shape, dtype=np.float32)
    out = np.zeros(material.shape + (3,), dtype=np.float32)

    grass = np.array(style.grass_rgb, np.float32)
    dry = np.array((0.34, 0.32, 0.16), np.float32)
    mix = np.clip(patches - 0.6, 0, 1)[..., None]
    g = (grass * (1 - mix) + dry * mix) * (1 + 0.22 * coarse + 0.12 * fine)[..., None]
    sel = block_mat == Material.GRASS
    out[sel] = g[sel]

    sel = block_mat == Material.PLAZA
    if sel.any():
        ti, tj = np.floor(u[sel] / TILE_M), np.floor(v[sel] / TILE_M)
        tone = 0.92 + 0.16 * hash01(ti, tj)
        joint = (np.mod(u[sel], TILE_M) < 0.05) | (np.mod(v[sel], TILE_M) < 0.05)
        tone = np.where(joint, tone * 0.78, tone) * (1 + 0.05 * fine[sel])
        out[sel] = np.array(style.plaza_rgb, np.float32) * tone[:, None]

    sel = block_mat == Material.PARKING
    if sel.any():
        tone = (1.1 + 0.08 * fine[sel] + 0.06 * coarse[sel])[:, None]
        col = np.array(style.road_rgb, np.float32) * tone
        lines = parking_stall_lines(u[sel], v[sel])
        col[lines] = np.array((0.78, 0.78, 0.75), np.float32)
        out[sel] = col

    sel = block_mat == Material.DIRT
    out[sel] = np.array(DIRT_RGB, np.float32) * (1 + 0.2 * coarse[sel] + 0.15 * fine[sel]
                                                 )[:, None]

    material[todo] = block_mat[todo]
    rgb[todo] = out[todo]
    return labels.astype(np.int32)
