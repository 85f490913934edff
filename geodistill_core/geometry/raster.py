"""North-up metric rasters: satellite crops and BEV grids share one pixel convention.

Convention (method.md section 6): row grows south, column grows east; pixel index i has
its centre at i, so an n-pixel axis is centred at (n - 1) / 2. A pixel (row, col) of a
raster centred at (east_c, north_c) with `meters_per_px` lies at

    east_m  = east_c  + (col - (cols - 1) / 2) * meters_per_px
    north_m = north_c - (row - (rows - 1) / 2) * meters_per_px

Functions accept numpy arrays, torch tensors or floats (plain arithmetic only).
"""
from __future__ import annotations

from dataclasses import dataclass


def pixel_to_offset_en_m(row_px, col_px, rows: int, cols: int, meters_per_px: float):
    """Pixel (row, col) -> (east_m, north_m) offset from the raster centre."""
    east_m = (col_px - (cols - 1) / 2.0) * meters_per_px
    north_m = -(row_px - (rows - 1) / 2.0) * meters_per_px
    return east_m, north_m


def offset_en_m_to_pixel(east_m, north_m, rows: int, cols: int, meters_per_px: float):
    """(east_m, north_m) offset from the raster centre -> pixel (row, col), sub-pixel."""
    col_px = east_m / meters_per_px + (cols - 1) / 2.0
    row_px = -north_m / meters_per_px + (rows - 1) / 2.0
    return row_px, col_px


@dataclass(frozen=True)
class NorthUpCrop:
    """A north-up raster (satellite crop) of rows x cols pixels centred in the map frame.

    centre_east_m, centre_north_m: the crop centre in the map frame (ENU metres).
    meters_per_px: ground sampling distance of this crop (after any resizing).
    """

    rows: int
    cols: int
    meters_per_px: float
    centre_east_m: float = 0.0
    centre_north_m: float = 0.0

    def __post_init__(self):
        if self.rows <= 0 or self.cols <= 0:
            raise ValueError(f'crop size must be positive, got {self.rows}x{self.cols}')
        if not self.meters_per_px > 0:
            raise ValueError(f'meters_per_px must be > 0, got {self.meters_per_px}')

    def pixel_to_map(self, row_px, col_px):
        """Pixel (row, col) -> map frame (east_m, north_m)."""
        east_m, north_m = pixel_to_offset_en_m(row_px, col_px, self.rows, self.cols,
                                               self.meters_per_px)
        return east_m + self.centre_east_m, north_m + self.centre_north_m

    def map_to_pixel(self, east_m, north_m):
        """Map frame (east_m, north_m) -> pixel (row, col), sub-pixel, may lie outside."""
        return offset_en_m_to_pixel(east_m - self.centre_east_m, north_m - self.centre_north_m,
                                    self.rows, self.cols, self.meters_per_px)

    def resized(self, rows: int, cols: int) -> NorthUpCrop:
        """The same ground footprint sampled at rows x cols (square pixels required)."""
        mpp_rows = self.meters_per_px * self.rows / rows
        mpp_cols = self.meters_per_px * self.cols / cols
        if abs(mpp_rows - mpp_cols) > 1e-9 * mpp_rows:
            raise ValueError(f'resizing {self.rows}x{self.cols} to {rows}x{cols} would make '
                             'non-square pixels; keep the aspect ratio')
        return NorthUpCrop(rows, cols, mpp_rows, self.centre_east_m, self.centre_north_m)
