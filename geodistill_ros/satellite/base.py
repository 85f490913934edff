"""Satellite crops: the common interface of every map source and the crop it returns.

A crop is a square RGB image, north-up with respect to TRUE north at the crop centre
(the local east-north-up tangent plane there), centred on the requested point, covering
``size_m`` metres with ``size_px`` pixels. Pixel convention (geodistill_core.geometry.raster):
row grows south, column grows east, pixel i has its centre at i, the crop centre is the
pixel position ((size_px - 1) / 2, (size_px - 1) / 2) and pixel (row, col) lies at

    east_m  = (col - (size_px - 1) / 2) * meters_per_px
    north_m = -(row - (size_px - 1) / 2) * meters_per_px

from the centre, in the crop's own tangent plane. With a map datum (``LocalEnu``) the
crop also knows where it sits in the map frame: its centre and the small rotation between
its axes and the map axes (the two tangent planes differ by about 0.01 deg per km of
distance from the datum), so crop offsets convert exactly to map coordinates.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
import math

import numpy as np

from geodistill_core.geodesy import LocalEnu
from geodistill_core.geometry.raster import NorthUpCrop, pixel_to_offset_en_m


class MapSourceError(RuntimeError):
    """A map source failed: unreadable or malformed file or tile. Names the path and the fix."""


class MapCoverageError(MapSourceError):
    """The map source cannot supply a complete crop at the requested point.

    Raised for points outside the raster or tile coverage, missing tiles and nodata
    pixels; the message names the point, the file or tile and what to do about it.
    """


@dataclass(frozen=True, eq=False)
class SatelliteCrop:
    """A north-up metric satellite crop.

    image: (size_px, size_px, 3) uint8 RGB, row 0 = north edge, column 0 = west edge.
    meters_per_px: ground sampling distance (size_m / size_px).
    centre_lat_deg, centre_lon_deg: WGS 84 position of the crop centre.
    centre_x_map_m, centre_y_map_m, centre_z_map_m: the centre in the map frame (ENU at
        the datum, the centre taken at ellipsoidal height 0); None without a datum.
    map_from_crop_yaw_rad: angle (CCW) from the crop's east axis to the map's east axis
        direction, i.e. yaw_map = yaw_crop + map_from_crop_yaw_rad; 0.0 without a datum.
    source: a short description of where the pixels came from (file or tile folder).
    """

    image: np.ndarray
    meters_per_px: float
    centre_lat_deg: float
    centre_lon_deg: float
    centre_x_map_m: float | None = None
    centre_y_map_m: float | None = None
    centre_z_map_m: float | None = None
    map_from_crop_yaw_rad: float = 0.0
    source: str = ''

    @property
    def size_px(self) -> int:
        return int(self.image.shape[0])

    @property
    def size_m(self) -> float:
        return self.size_px * self.meters_per_px

    @property
    def has_map_frame(self) -> bool:
        return self.centre_x_map_m is not None

    def pixel_to_offset_en_m(self, row_px, col_px):
        """Pixel (row, col), sub-pixel -> (east_m, north_m) offset in the crop's frame."""
        return pixel_to_offset_en_m(row_px, col_px, self.size_px, self.size_px,
                                    self.meters_per_px)

    def offset_en_m_to_geodetic(self, east_m, north_m):
        """(east_m, north_m) offset from the centre in the crop frame -> (lat_deg, lon_deg)."""
        lat, lon, _ = LocalEnu(self.centre_lat_deg, self.centre_lon_deg).to_geodetic(
            east_m, north_m, 0.0)
        return lat, lon

    def offset_en_m_to_map_xy(self, east_m, north_m):
        """(east_m, north_m) offset in the crop frame -> map (x_m, y_m); needs a datum."""
        self._require_map_frame()
        c, s = math.cos(self.map_from_crop_yaw_rad), math.sin(self.map_from_crop_yaw_rad)
        east_m, north_m = np.asarray(east_m, np.float64), np.asarray(north_m, np.float64)
        return (self.centre_x_map_m + c * east_m - s * north_m,
                self.centre_y_map_m + s * east_m + c * north_m)

    def map_xy_to_offset_en_m(self, x_m, y_m):
        """Map (x_m, y_m) -> (east_m, north_m) offset in the crop frame; needs a datum."""
        self._require_map_frame()
        c, s = math.cos(self.map_from_crop_yaw_rad), math.sin(self.map_from_crop_yaw_rad)
        dx = np.asarray(x_m, np.float64) - self.centre_x_map_m
        dy = np.asarray(y_m, np.float64) - self.centre_y_map_m
        return c * dx + s * dy, -s * dx + c * dy

    def north_up_crop(self) -> NorthUpCrop:
        """The crop as a geometry ``NorthUpCrop`` in the map frame (needs a datum).

        NorthUpCrop has no rotation: it neglects ``map_from_crop_yaw_rad`` (below 1e-4 rad
        within about 10 km of the datum, i.e. < 5 mm at the edge of a 100 m crop). Use
        ``offset_en_m_to_map_xy`` where that matters.
        """
        self._require_map_frame()
        return NorthUpCrop(self.size_px, self.size_px, self.meters_per_px,
                           float(self.centre_x_map_m), float(self.centre_y_map_m))

    def _require_map_frame(self) -> None:
        if not self.has_map_frame:
            raise ValueError('this crop has no map frame: pass datum=LocalEnu(...) to crop()')


def check_crop_request(lat_deg: float, lon_deg: float, size_m: float, size_px: int) -> None:
    """Validate crop arguments; ValueError naming the bad value."""
    if not (math.isfinite(lat_deg) and math.isfinite(lon_deg)
            and -90.0 <= lat_deg <= 90.0 and -180.0 <= lon_deg <= 180.0):
        raise ValueError(f'crop centre out of range: lat={lat_deg}, lon={lon_deg} deg')
    if not (math.isfinite(size_m) and size_m > 0.0):
        raise ValueError(f'size_m must be a positive finite number of metres, got {size_m}')
    if int(size_px) != size_px or size_px < 1:
        raise ValueError(f'size_px must be a positive integer, got {size_px}')


def map_frame_placement(lat_deg: float, lon_deg: float, datum: LocalEnu | None) -> dict:
    """Centre (x, y, z) of a crop in the datum's ENU frame and the crop -> map yaw.

    The yaw is the direction of the crop's east axis (local east at the crop centre)
    expressed in the map frame, measured from the map's east axis, CCW positive.
    """
    if datum is None:
        return {}
    local = LocalEnu(lat_deg, lon_deg, 0.0)
    lat_e, lon_e, alt_e = local.to_geodetic([0.0, 1.0], [0.0, 0.0], [0.0, 0.0])
    x, y, z = datum.to_enu(lat_e, lon_e, alt_e)
    return {'centre_x_map_m': float(x[0]), 'centre_y_map_m': float(y[0]),
            'centre_z_map_m': float(z[0]),
            'map_from_crop_yaw_rad': math.atan2(y[1] - y[0], x[1] - x[0])}


class SatelliteSource(abc.ABC):
    """A map source that cuts north-up metric crops (see the module docstring)."""

    @abc.abstractmethod
    def crop(self, lat_deg: float, lon_deg: float, size_m: float, size_px: int,
             datum: LocalEnu | None = None) -> SatelliteCrop:
        """Crop centred at (lat_deg, lon_deg), size_m metres, (size_px, size_px) pixels.

        Raises MapCoverageError where the source cannot fill every pixel.
        """

    def describe(self) -> str:
        """One line for logs and diagnostics."""
        return type(self).__name__

    def close(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Release files; the default holds none."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
