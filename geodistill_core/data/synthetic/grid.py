"""The world's metric grid and exact cell-centre rasterisation of simple shapes.

The world grid is a north-up raster (geometry.raster convention: row grows south, column
grows east, cell (r, c) centred at east = (c + 0.5) * cell_m, north = N_m - (r + 0.5) *
cell_m for a world of N_m metres whose south-west corner is the map origin). A shape
covers a cell when it contains the cell's centre, so rasterisation is exact and
resolution-independent (no OpenCV rounding).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import cv2
import numpy as np

from geodistill_core.geometry.raster import NorthUpCrop


def world_grid(cells: int, cell_m: float) -> NorthUpCrop:
    """The NorthUpCrop of a square world of cells x cells whose SW corner is the origin."""
    half_m = cells * cell_m / 2.0
    return NorthUpCrop(cells, cells, cell_m, half_m, half_m)


def cells_of_points(grid: NorthUpCrop, east_m, north_m):
    """Integer (row, col) of the cells containing map points, and an inside mask.

    east_m, north_m: arrays of the same shape. Returns row, col (int64, clipped into the
    grid) and inside (bool): False for points outside the world.
    """
    row_f, col_f = grid.map_to_pixel(east_m, north_m)
    row = np.floor(np.asarray(row_f) + 0.5).astype(np.int64)
    col = np.floor(np.asarray(col_f) + 0.5).astype(np.int64)
    inside = (row >= 0) & (row < grid.rows) & (col >= 0) & (col < grid.cols)
    return np.clip(row, 0, grid.rows - 1), np.clip(col, 0, grid.cols - 1), inside


@dataclass(frozen=True)
class CellWindow:
    """A rectangular window of the grid with the map coordinates of its cell centres.

    rows, cols: slices into the grid layers; east_m, north_m: (h, w) float32.
    """

    rows: slice
    cols: slice
    east_m: np.ndarray
    north_m: np.ndarray


def window_around(grid: NorthUpCrop, east_min: float, north_min: float, east_max: float,
                  north_max: float) -> CellWindow | None:
    """Grid cells whose centres may fall in the given map box (None if it misses the grid)."""
    r_top, c_left = grid.map_to_pixel(east_min, north_max)
    r_bot, c_right = grid.map_to_pixel(east_max, north_min)
    r0 = max(int(math.floor(r_top)), 0)
    r1 = min(int(math.ceil(r_bot)) + 1, grid.rows)
    c0 = max(int(math.floor(c_left)), 0)
    c1 = min(int(math.ceil(c_right)) + 1, grid.cols)
    if r0 >= r1 or c0 >= c1:
        return None
    rr = np.arange(r0, r1, dtype=np.float32)[:, None]
    cc = np.arange(c0, c1, dtype=np.float32)[None, :]
    east_m, north_m = grid.pixel_to_map(rr, cc)
    east_m, north_m = np.broadcast_arrays(np.float32(east_m), np.float32(north_m))
    return CellWindow(slice(r0, r1), slice(c0, c1), east_m, north_m)


@dataclass(frozen=True)
class RectCells:
    """Cells of an oriented rectangle: window, mask and local coordinates (metres).

    along_m: coordinate along the rectangle's heading (yaw), across_m: to its left.
    """

    window: CellWindow
    mask: np.ndarray
    along_m: np.ndarray
    across_m: np.ndarray


def rect_cells(grid: NorthUpCrop, centre_en_m, yaw_rad: float, length_m: float,
               width_m: float) -> RectCells | None:
    """Cells whose centres lie in the rectangle (length along yaw, width across)."""
    e0, n0 = float(centre_en_m[0]), float(centre_en_m[1])
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    ext_e = 0.5 * (abs(c) * length_m + abs(s) * width_m)
    ext_n = 0.5 * (abs(s) * length_m + abs(c) * width_m)
    win = window_around(grid, e0 - ext_e, n0 - ext_n, e0 + ext_e, n0 + ext_n)
    if win is None:
        return None
    de, dn = win.east_m - e0, win.north_m - n0
    along = c * de + s * dn
    across = -s * de + c * dn
    mask = (np.abs(along) <= 0.5 * length_m) & (np.abs(across) <= 0.5 * width_m)
    return RectCells(win, mask, along, across)


def disk_cells(grid: NorthUpCrop, centre_en_m, radius_m: float):
    """Cells of a disk: (window, mask, de, dn) with offsets from the centre in metres."""
    e0, n0 = float(centre_en_m[0]), float(centre_en_m[1])
    win = window_around(grid, e0 - radius_m, n0 - radius_m, e0 + radius_m, n0 + radius_m)
    if win is None:
        return None
    de, dn = win.east_m - e0, win.north_m - n0
    return win, de * de + dn * dn <= radius_m * radius_m, de, dn


def value_noise(shape: tuple[int, int], period_cells: float, rng: np.random.Generator,
                ) -> np.ndarray:
    """Smooth zero-mean noise of unit-ish amplitude, feature size about period_cells.

    Returns (h, w) float32: a bicubically upsampled grid of standard normals.
    """
    h, w = shape
    period = max(float(period_cells), 1.0)
    gh, gw = int(math.ceil(h / period)) + 3, int(math.ceil(w / period)) + 3
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(coarse, (int(round(gw * period)), int(round(gh * period))),
                     interpolation=cv2.INTER_CUBIC)
    off = int(period)
    return np.ascontiguousarray(big[off:off + h, off:off + w])
