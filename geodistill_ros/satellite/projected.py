"""Crops from a georeferenced raster in any CRS: the resampling shared by all map sources.

Every output pixel gets an exact position: its (east, north) offset in the tangent plane
at the crop centre -> WGS 84 (geodistill_core.geodesy.LocalEnu) -> raster CRS (PROJ) ->
raster pixel (inverse affine). PROJ is evaluated on a control grid (every
``CONTROL_STEP_PX`` output pixels plus the last one) and interpolated bilinearly in between;
over a few metres the mapping is affine to far below 1e-3 px (pinned by a test), so
meridian convergence, projection scale and Web Mercator's latitude stretch are all
handled exactly. Only the raster window under the crop is read; when the raster is more
than twice as fine as the crop it is read pre-averaged (GDAL overviews / area averaging)
to avoid aliasing, then sampled with ``cv2.remap`` (bilinear).
"""
from __future__ import annotations

import abc
import functools
import math

from affine import Affine
import cv2
import numpy as np
import pyproj

from geodistill_core.geodesy import LocalEnu
from geodistill_ros.satellite.base import (
    MapCoverageError,
    SatelliteCrop,
    SatelliteSource,
    check_crop_request,
    map_frame_placement,
)

CONTROL_STEP_PX = 16
"""Output-pixel spacing of the exact PROJ evaluations (bilinear in between)."""


@functools.cache
def _lonlat_to(crs_wkt: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs('EPSG:4326', pyproj.CRS.from_wkt(crs_wkt), always_xy=True)


def _linear_weights(n: int, control_px: np.ndarray):
    """Left control index j (n,) and weight t (n,) of pixels 0..n-1 between j and j + 1."""
    if len(control_px) == 1:
        return np.zeros(n, np.intp), np.zeros(n)
    px = np.arange(n, dtype=np.float64)
    j = np.clip(np.searchsorted(control_px, px, side='right') - 1, 0, len(control_px) - 2)
    t = (px - control_px[j]) / (control_px[j + 1] - control_px[j])
    return j, t


def upsample_control_grid(values: np.ndarray, control_px: np.ndarray, n: int) -> np.ndarray:
    """Bilinear interpolation of (m, m) values at control_px x control_px to (n, n) pixels."""
    j, t = _linear_weights(n, control_px)
    if len(control_px) == 1:
        return np.broadcast_to(values, (n, n)).copy()
    rows = values[j] * (1.0 - t)[:, None] + values[j + 1] * t[:, None]
    return rows[:, j] * (1.0 - t) + rows[:, j + 1] * t


def control_pixels(n: int, step: int = CONTROL_STEP_PX) -> np.ndarray:
    """Control positions 0, step, 2 step, ..., n - 1 along an n-pixel axis."""
    return np.unique(np.r_[np.arange(0, n, step), n - 1]).astype(np.float64)


class ProjectedRasterSource(SatelliteSource):
    """Base for sources that behave like one (possibly virtual) raster in a CRS.

    crs: anything pyproj accepts (projected or geographic). transform: the affine map
    from (col, row) pixel-corner coordinates to CRS (x, y), as rasterio defines it.
    height_px, width_px: raster size. max_nodata_fraction: share of crop pixels allowed to
    touch nodata before MapCoverageError (0.0: none).
    Subclasses implement ``_read_window`` and ``_where``.
    """

    def __init__(self, crs, transform: Affine, height_px: int, width_px: int,
                 max_nodata_fraction: float = 0.0):
        self.crs = pyproj.CRS.from_user_input(crs)
        self.transform = transform
        self.height_px, self.width_px = int(height_px), int(width_px)
        if not 0.0 <= max_nodata_fraction <= 1.0:
            raise ValueError(f'max_nodata_fraction must be in [0, 1], got {max_nodata_fraction}')
        self.max_nodata_fraction = float(max_nodata_fraction)
        self._pixel_from_crs = ~transform
        self._transformer = _lonlat_to(self.crs.to_wkt())

    @abc.abstractmethod
    def _read_window(self, row0: int, col0: int, rows: int, cols: int, out_rows: int,
                     out_cols: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Raster rows [row0, row0+rows) x cols [col0, col0+cols), area-resampled to
        (out_rows, out_cols) -> (RGB (out_rows, out_cols, 3) uint8, valid bool or None)."""

    @abc.abstractmethod
    def _where(self) -> str:
        """The file or folder, for error messages."""

    def describe(self) -> str:
        return f'{type(self).__name__}({self._where()}, {self.crs.to_string()})'

    def raster_pixel_of(self, lat_deg, lon_deg):
        """WGS 84 -> raster (row, col), centre-indexed (pixel i has its centre at i)."""
        x, y = self._transformer.transform(np.asarray(lon_deg, np.float64),
                                           np.asarray(lat_deg, np.float64))
        col, row = self._pixel_from_crs @ (np.asarray(x), np.asarray(y))
        return np.asarray(row) - 0.5, np.asarray(col) - 0.5

    def sample_positions(self, lat_deg: float, lon_deg: float, size_m: float, size_px: int):
        """Raster (row, col) of every crop pixel, each (size_px, size_px) float64."""
        check_crop_request(lat_deg, lon_deg, size_m, size_px)
        mpp = size_m / size_px
        ctrl = control_pixels(size_px)
        east_m = (ctrl - (size_px - 1) / 2.0) * mpp
        north_m = -east_m
        east_grid, north_grid = np.meshgrid(east_m, north_m)  # rows follow north
        lat, lon, _ = LocalEnu(lat_deg, lon_deg, 0.0).to_geodetic(east_grid, north_grid, 0.0)
        row_c, col_c = self.raster_pixel_of(lat, lon)
        if not (np.all(np.isfinite(row_c)) and np.all(np.isfinite(col_c))):
            raise MapCoverageError(
                f'lat={lat_deg:.7f}, lon={lon_deg:.7f}: outside the domain of '
                f'{self.crs.to_string()} ({self._where()}); use a map in a CRS that covers it')
        return (upsample_control_grid(row_c, ctrl, size_px),
                upsample_control_grid(col_c, ctrl, size_px))

    def crop(self, lat_deg: float, lon_deg: float, size_m: float, size_px: int,
             datum: LocalEnu | None = None) -> SatelliteCrop:
        size_px = int(size_px)
        rows_px, cols_px = self.sample_positions(lat_deg, lon_deg, size_m, size_px)
        where = f'lat={lat_deg:.7f}, lon={lon_deg:.7f} ({size_m:g} m crop)'
        r_min, r_max = float(rows_px.min()), float(rows_px.max())
        c_min, c_max = float(cols_px.min()), float(cols_px.max())
        eps = 1e-6
        if (r_min < -0.5 - eps or c_min < -0.5 - eps or r_max > self.height_px - 0.5 + eps
                or c_max > self.width_px - 0.5 + eps):
            raise MapCoverageError(
                f'{where} is not covered by {self._where()}: the crop needs raster rows '
                f'{r_min:.1f}..{r_max:.1f} and columns {c_min:.1f}..{c_max:.1f} of '
                f'{self.height_px}x{self.width_px}; use a map that covers the drive '
                '(with a margin of half the crop size) or a smaller crop')
        row0 = max(int(math.floor(r_min)) - 1, 0)
        col0 = max(int(math.floor(c_min)) - 1, 0)
        rows = min(int(math.ceil(r_max)) + 2, self.height_px) - row0
        cols = min(int(math.ceil(c_max)) + 2, self.width_px) - col0
        src_px_per_out_px = max(r_max - r_min, c_max - c_min) / max(size_px - 1, 1)
        factor = math.floor(src_px_per_out_px) if src_px_per_out_px >= 2.0 else 1
        out_rows, out_cols = max(math.ceil(rows / factor), 1), max(math.ceil(cols / factor), 1)
        try:
            rgb, valid = self._read_window(row0, col0, rows, cols, out_rows, out_cols)
        except MapCoverageError as err:
            raise MapCoverageError(f'{where}: {err}') from None
        # window pixel u covers [u, u + 1) * (size / out); centre-indexed mapping below
        map_rows = ((rows_px - row0 + 0.5) * (out_rows / rows) - 0.5).astype(np.float32)
        map_cols = ((cols_px - col0 + 0.5) * (out_cols / cols) - 0.5).astype(np.float32)
        image = cv2.remap(rgb, map_cols, map_rows, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        if valid is not None and not valid.all():
            touched = cv2.remap(valid.astype(np.uint8) * 255, map_cols, map_rows,
                                cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) < 255
            if touched.mean() > self.max_nodata_fraction:
                raise MapCoverageError(
                    f'{where}: {touched.mean():.1%} of the crop falls on nodata in '
                    f'{self._where()} (allowed {self.max_nodata_fraction:.1%}); use a map '
                    'without gaps here or raise max_nodata_fraction')
        return SatelliteCrop(image=np.ascontiguousarray(image), meters_per_px=size_m / size_px,
                             centre_lat_deg=float(lat_deg), centre_lon_deg=float(lon_deg),
                             source=self.describe(),
                             **map_frame_placement(lat_deg, lon_deg, datum))
