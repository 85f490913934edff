"""Cars: box-shaped bodies with a cabin, parked or driving, possibly in one view only.

Car frame: `along` follows yaw_rad (the car's heading), `across` to its left. The body
rises to BODY_FRAC * height over the whole footprint, the cabin to `height` over
along in [CABIN_REAR, CABIN_FRONT] * length. `presence` says in which view a car exists
(transient cars model the time gap between the satellite and the street-level capture).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from geodistill_core.data.synthetic.grid import rect_cells
from geodistill_core.geometry.raster import NorthUpCrop

BODY_FRAC = 0.62
CABIN_REAR = -0.30
CABIN_FRONT = 0.17
CABIN_HALF_WIDTH_FRAC = 0.44
GLASS_RGB = np.array([0.05, 0.06, 0.07], dtype=np.float32)
TYRE_RGB = np.array([0.03, 0.03, 0.03], dtype=np.float32)
CAR_VIEWS = ('ground', 'satellite', 'all', 'none')


class CarPresence(IntEnum):
    """Which views show a car (int8 in `CarTable.presence`)."""

    BOTH = 0
    GROUND_ONLY = 1
    SATELLITE_ONLY = 2
    NEITHER = 3  # removed from both views (e.g. cleared off a drive's path)


@dataclass(frozen=True, eq=False)
class CarTable:
    """N cars: centre_en_m (N, 2) m; yaw_rad, length_m, width_m, height_m (N,);
    rgb (N, 3) float32 linear paint albedo; presence (N,) int8 (CarPresence);
    parked (N,) bool."""

    centre_en_m: np.ndarray
    yaw_rad: np.ndarray
    length_m: np.ndarray
    width_m: np.ndarray
    height_m: np.ndarray
    rgb: np.ndarray
    presence: np.ndarray
    parked: np.ndarray

    def __len__(self) -> int:
        return len(self.yaw_rad)

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> CarTable:
        """rows of (east, north, yaw, length, width, height, r, g, b, presence, parked)."""
        a = np.array(rows, dtype=np.float64).reshape(-1, 11)
        return cls(a[:, 0:2].copy(), a[:, 2].copy(), a[:, 3].copy(), a[:, 4].copy(),
                   a[:, 5].copy(), a[:, 6:9].astype(np.float32), a[:, 9].astype(np.int8),
                   a[:, 10] > 0.5)

    def visible(self, view: str) -> np.ndarray:
        """(N,) bool: the cars shown in `view` ('ground', 'satellite', 'all' or 'none')."""
        if view == 'ground':
            return np.isin(self.presence, (CarPresence.BOTH, CarPresence.GROUND_ONLY))
        if view == 'satellite':
            return np.isin(self.presence, (CarPresence.BOTH, CarPresence.SATELLITE_ONLY))
        if view == 'all':
            return np.ones(len(self), dtype=bool)
        if view == 'none':
            return np.zeros(len(self), dtype=bool)
        raise ValueError(f'unknown car view {view!r}; choose one of {CAR_VIEWS}')


def car_height_profile(along, across, length, width, height):
    """Height (m) of the car surface at local coordinates (0 outside the footprint)."""
    inside = (np.abs(along) <= 0.5 * length) & (np.abs(across) <= 0.5 * width)
    cabin = ((along >= CABIN_REAR * length) & (along <= CABIN_FRONT * length)
             & (np.abs(across) <= CABIN_HALF_WIDTH_FRAC * width))
    return np.where(inside, np.where(cabin, height, BODY_FRAC * height), 0.0)


def car_top_rgb(rgb, along, across, length, width):
    """Top-view colour: paint, with dark windscreen and rear window (shapes broadcast)."""
    rel = along / length
    cabin_side = np.abs(across) <= CABIN_HALF_WIDTH_FRAC * width
    glass = cabin_side & (((rel > CABIN_FRONT - 0.09) & (rel <= CABIN_FRONT))
                          | ((rel >= CABIN_REAR) & (rel < CABIN_REAR + 0.07)))
    return np.where(glass[..., None], GLASS_RGB, rgb)


def car_side_rgb(rgb, z_m, height_m):
    """Side-view colour at height z_m: tyres, paint, then cabin glass (shapes broadcast)."""
    out = np.where((z_m < 0.32)[..., None], TYRE_RGB, rgb)
    return np.where((z_m > BODY_FRAC * height_m + 0.04)[..., None], GLASS_RGB, out)


def rasterize_car(index: int, car: tuple, grid: NorthUpCrop, car_id: np.ndarray,
                  car_height: np.ndarray, forbidden: np.ndarray | None = None) -> bool:
    """Write a car (a CarTable row tuple) into the id/height layers if its footprint is
    free (forbidden False, no other car). Returns whether it was written."""
    east, north, yaw, length, width, height = car[:6]
    cells = rect_cells(grid, (east, north), yaw, length, width)
    if cells is None or not cells.mask.any():
        return False
    region = (cells.window.rows, cells.window.cols)
    m = cells.mask
    if (car_id[region][m] >= 0).any():
        return False
    if forbidden is not None and forbidden[region][m].any():
        return False
    prof = car_height_profile(cells.along_m, cells.across_m, length, width, height)
    car_id[region] = np.where(m, index, car_id[region])
    car_height[region] = np.where(m, prof, car_height[region]).astype(np.float32)
    return True
