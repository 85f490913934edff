"""Buildings: oriented box footprints with flat (parapet) or pitched roofs.

A building's local frame: `along` follows yaw_rad (the street frontage for street
buildings), `across` is to its left. Walls rise to eave_m; flat roofs carry a parapet
ring and rooftop units up to roof_top_m; pitched roofs rise linearly to a ridge along the
`along` axis at roof_top_m. Facade texture parameters (storeys, windows) are per
building and used by the ground renderer.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
import math

import numpy as np

from geodistill_core.data.synthetic.grid import RectCells, rect_cells
from geodistill_core.geometry.raster import NorthUpCrop

PARAPET_M = 0.35
PARAPET_HEIGHT_M = 0.8
ROOF_UNIT_HEIGHT_M = 1.6
ROOF_UNIT_RGB = (0.50, 0.50, 0.49)
ROOF_PITCH = math.tan(math.radians(32.0))
PACKED_COLUMNS = ('east', 'north', 'cos_yaw', 'sin_yaw', 'half_length', 'half_width',
                  'storey', 'window_pitch', 'window_w', 'window_h', 'eave', 'shopfront',
                  'pitched', 'facade_r', 'facade_g', 'facade_b', 'roof_r', 'roof_g', 'roof_b',
                  'window_r', 'window_g', 'window_b')


@dataclass(frozen=True, eq=False)
class BuildingTable:
    """B buildings as parallel arrays (metres, radians, linear RGB in [0, 1]).

    centre_en_m (B, 2); yaw_rad, length_m, width_m, eave_m, roof_top_m, storey_m,
    window_pitch_m, window_w_frac, window_h_frac (B,) float; pitched, shopfront (B,) bool;
    facade_rgb, roof_rgb, window_rgb (B, 3) float32.
    """

    centre_en_m: np.ndarray
    yaw_rad: np.ndarray
    length_m: np.ndarray
    width_m: np.ndarray
    eave_m: np.ndarray
    roof_top_m: np.ndarray
    pitched: np.ndarray
    storey_m: np.ndarray
    window_pitch_m: np.ndarray
    window_w_frac: np.ndarray
    window_h_frac: np.ndarray
    shopfront: np.ndarray
    facade_rgb: np.ndarray
    roof_rgb: np.ndarray
    window_rgb: np.ndarray

    def __len__(self) -> int:
        return len(self.yaw_rad)

    @cached_property
    def packed(self) -> np.ndarray:
        """(B, 22) float32 rows for one-gather lookups; columns named in PACKED_COLUMNS."""
        cols = [self.centre_en_m[:, 0], self.centre_en_m[:, 1], np.cos(self.yaw_rad),
                np.sin(self.yaw_rad), 0.5 * self.length_m, 0.5 * self.width_m, self.storey_m,
                self.window_pitch_m, self.window_w_frac, self.window_h_frac, self.eave_m,
                self.shopfront, self.pitched.astype(np.float64)]
        out = np.concatenate([np.stack(cols, axis=1).reshape(-1, len(cols)),
                              self.facade_rgb, self.roof_rgb, self.window_rgb], axis=1)
        return out.astype(np.float32)

    @classmethod
    def from_rows(cls, rows: list[dict]) -> BuildingTable:
        """Stack per-building dicts (one key per field) into a table."""
        out = {}
        for f in fields(cls):
            if f.name in ('centre_en_m', 'facade_rgb', 'roof_rgb', 'window_rgb'):
                out[f.name] = np.array([r[f.name] for r in rows], dtype=np.float64
                                       ).reshape(-1, 2 if f.name == 'centre_en_m' else 3)
            elif f.name in ('pitched', 'shopfront'):
                out[f.name] = np.array([r[f.name] for r in rows], dtype=bool)
            else:
                out[f.name] = np.array([r[f.name] for r in rows], dtype=np.float64)
        for k in ('facade_rgb', 'roof_rgb', 'window_rgb'):
            out[k] = out[k].astype(np.float32)
        return cls(**out)


def building_row(centre_en_m, yaw_rad: float, length_m: float, width_m: float,
                 eave_m: float, pitched: bool, facade_rgb, roof_rgb, window_rgb,
                 storey_m: float = 3.2, window_pitch_m: float = 3.0,
                 window_w_frac: float = 0.5, window_h_frac: float = 0.5,
                 shopfront: bool = False) -> dict:
    """One building's table row; roof_top_m follows from the roof type."""
    if pitched:
        top = eave_m + ROOF_PITCH * 0.5 * min(width_m, 14.0)
    else:
        top = eave_m + PARAPET_HEIGHT_M
    return dict(centre_en_m=tuple(centre_en_m), yaw_rad=yaw_rad, length_m=length_m,
                width_m=width_m, eave_m=eave_m, roof_top_m=top, pitched=pitched,
                storey_m=storey_m, window_pitch_m=window_pitch_m,
                window_w_frac=window_w_frac, window_h_frac=window_h_frac,
                shopfront=shopfront, facade_rgb=tuple(facade_rgb), roof_rgb=tuple(roof_rgb),
                window_rgb=tuple(window_rgb))


def rasterize_building(index: int, row: dict, grid: NorthUpCrop, height_m: np.ndarray,
                       building_id: np.ndarray, roof_rgb: np.ndarray,
                       rng: np.random.Generator) -> RectCells | None:
    """Write one building into the height, id and roof-colour layers (in place).

    Returns the footprint's cells, or None (nothing written) if it misses the grid.
    """
    cells = rect_cells(grid, row['centre_en_m'], row['yaw_rad'], row['length_m'],
                       row['width_m'])
    if cells is None or not cells.mask.any():
        return None
    win, m = cells.window, cells.mask
    hl, hw = 0.5 * row['length_m'], 0.5 * row['width_m']
    along, across = cells.along_m[m], cells.across_m[m]
    base = np.array(row['roof_rgb'], np.float32)
    tone = 1.0 + 0.07 * rng.standard_normal(along.shape).astype(np.float32)
    if row['pitched']:
        slope = (row['roof_top_m'] - row['eave_m']) / max(hw, 1e-3)
        h = row['eave_m'] + slope * np.maximum(hw - np.abs(across), 0.0)
        tone *= np.where(np.mod(across, 0.35) < 0.06, 0.85, 1.0)
    else:
        rim = np.minimum(hl - np.abs(along), hw - np.abs(across)) < PARAPET_M
        h = np.where(rim, row['roof_top_m'], row['eave_m'])
        tone = np.where(rim, tone * 1.15, tone)
        for _ in range(int(rng.integers(0, 4)) if min(hl, hw) > 4.0 else 0):
            ua = rng.uniform(-hl + 2.0, hl - 2.0)
            ub = rng.uniform(-hw + 2.0, hw - 2.0)
            size = rng.uniform(0.8, 1.8)
            unit = (np.abs(along - ua) < size) & (np.abs(across - ub) < size)
            h = np.where(unit, row['eave_m'] + ROOF_UNIT_HEIGHT_M, h)
            tone = np.where(unit, -1.0, tone)
    colour = base[None, :] * tone[:, None]
    colour[tone < 0] = ROOF_UNIT_RGB
    region = (win.rows, win.cols)
    hreg, idreg, rgbreg = height_m[region], building_id[region], roof_rgb[region]
    hreg[m] = h.astype(np.float32)
    idreg[m] = index
    rgbreg[m] = colour
    return cells


def footprint_is_free(grid: NorthUpCrop, forbidden: np.ndarray, centre_en_m, yaw_rad: float,
                      length_m: float, width_m: float) -> bool:
    """True if the rectangle covers at least one cell and no forbidden cell."""
    cells = rect_cells(grid, centre_en_m, yaw_rad, length_m, width_m)
    if cells is None or not cells.mask.any():
        return False
    return not forbidden[cells.window.rows, cells.window.cols][cells.mask].any()
