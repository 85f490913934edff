"""Geodesy at dataset boundaries: local ENU, UTM, grid convergence, Web Mercator, headings.

Frames and units (docs/method.md section 6): the map frame is ENU in metres; map yaw is in
radians with 0 = east and counter-clockwise positive; a compass heading is in degrees with
0 = north and clockwise positive. Geodetic coordinates are WGS 84 latitude/longitude in
degrees and ellipsoidal height in metres. Array functions broadcast their inputs and return
float64 numpy arrays (0-d for scalar inputs) unless stated otherwise.
"""
from dataclasses import dataclass, field
import functools
import math

import numpy as np
import pyproj

WEB_MERCATOR_M_PER_PX_Z0 = 156543.03392804097
"""Ground resolution in m/px of a 256-px Web Mercator tile at zoom 0 on the equator."""

_TWO_PI = 2.0 * math.pi


@functools.cache
def _transformer(src: str, dst: str) -> pyproj.Transformer:
    """Return a cached ``always_xy`` transformer (lon, lat order for geographic CRSs)."""
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def _as_f64(*arrays):
    return np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))


def _check_lat_lon(lat_deg: float, lon_deg: float) -> None:
    if not (-90.0 <= lat_deg <= 90.0 and -180.0 <= lon_deg <= 360.0):
        raise ValueError(f'latitude/longitude out of range: lat={lat_deg}, lon={lon_deg} deg')


@dataclass(frozen=True)
class LocalEnu:
    """Local east-north-up frame (metres) tangent to the WGS 84 ellipsoid at a datum.

    Geodetic <-> ECEF goes through PROJ (EPSG:4979 <-> EPSG:4978); ECEF <-> ENU is the
    rotation ``R_enu_from_ecef`` whose rows are the east, north and up unit vectors.
    """

    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    _xyz0_ecef_m: np.ndarray = field(init=False, repr=False, compare=False)
    _R_enu_from_ecef: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_lat_lon(self.lat_deg, self.lon_deg)
        lat, lon = math.radians(self.lat_deg), math.radians(self.lon_deg)
        sl, cl, so, co = math.sin(lat), math.cos(lat), math.sin(lon), math.cos(lon)
        R = np.array([[-so, co, 0.0], [-sl * co, -sl * so, cl], [cl * co, cl * so, sl]])
        xyz0 = _transformer('EPSG:4979', 'EPSG:4978').transform(
            self.lon_deg, self.lat_deg, self.alt_m)
        object.__setattr__(self, '_R_enu_from_ecef', R)
        object.__setattr__(self, '_xyz0_ecef_m', np.array(xyz0, dtype=np.float64))

    def to_enu(self, lat_deg, lon_deg, alt_m=0.0):
        """Geodetic (deg, deg, m) -> (east_m, north_m, up_m) relative to the datum."""
        lat, lon, alt = _as_f64(lat_deg, lon_deg, alt_m)
        xyz = np.stack(_transformer('EPSG:4979', 'EPSG:4978').transform(lon, lat, alt), -1)
        enu = (xyz - self._xyz0_ecef_m) @ self._R_enu_from_ecef.T
        return enu[..., 0], enu[..., 1], enu[..., 2]

    def to_geodetic(self, east_m, north_m, up_m=0.0):
        """(east_m, north_m, up_m) relative to the datum -> (lat_deg, lon_deg, alt_m)."""
        enu = np.stack(_as_f64(east_m, north_m, up_m), -1)
        xyz = enu @ self._R_enu_from_ecef + self._xyz0_ecef_m
        lon, lat, alt = _transformer('EPSG:4978', 'EPSG:4979').transform(
            xyz[..., 0], xyz[..., 1], xyz[..., 2])
        return np.asarray(lat), np.asarray(lon), np.asarray(alt)


def utm_epsg_for(lat_deg: float, lon_deg: float) -> int:
    """EPSG code of the WGS 84 UTM zone holding a point: 326zz north (lat >= 0), 327zz south.

    Includes the standard exceptions (south-west Norway in zone 32, Svalbard zones 31/33/35/37).
    UTM is defined only for -80 <= lat <= 84; outside that (UPS) a ValueError is raised.
    """
    lat, lon = float(lat_deg), float(lon_deg)
    if not -80.0 <= lat <= 84.0:
        raise ValueError(f'UTM covers latitudes -80..84 deg, got {lat}; use UPS near the poles')
    if not -180.0 <= lon <= 360.0:
        raise ValueError(f'longitude out of range: {lon} deg')
    lon = (lon + 180.0) % 360.0 - 180.0
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    if 56.0 <= lat < 64.0 and 3.0 <= lon < 12.0:
        zone = 32
    elif lat >= 72.0 and 0.0 <= lon < 42.0:
        zone = 31 if lon < 9.0 else 33 if lon < 21.0 else 35 if lon < 33.0 else 37
    return (32600 if lat >= 0.0 else 32700) + zone


def _check_utm_epsg(epsg: int) -> int:
    epsg = int(epsg)
    if not (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
        raise ValueError(f'not a WGS 84 UTM EPSG code (32601-32660, 32701-32760): {epsg}')
    return epsg


def geodetic_to_utm(lat_deg, lon_deg, epsg: int | None = None):
    """WGS 84 (deg) -> (easting_m, northing_m, epsg) in one UTM zone.

    Without ``epsg`` the zone of the first point is used for all points, so a trajectory
    that crosses a zone border stays in one continuous grid.
    """
    lat, lon = _as_f64(lat_deg, lon_deg)
    if epsg is None:
        epsg = utm_epsg_for(lat.flat[0], lon.flat[0])
    epsg = _check_utm_epsg(epsg)
    e, n = _transformer('EPSG:4326', f'EPSG:{epsg}').transform(lon, lat)
    return np.asarray(e), np.asarray(n), epsg


def utm_to_geodetic(easting_m, northing_m, epsg: int):
    """UTM (m, m) in zone ``epsg`` -> WGS 84 (lat_deg, lon_deg)."""
    e, n = _as_f64(easting_m, northing_m)
    lon, lat = _transformer(f'EPSG:{_check_utm_epsg(epsg)}', 'EPSG:4326').transform(e, n)
    return np.asarray(lat), np.asarray(lon)


def meridian_convergence_rad(lat_deg, lon_deg, crs) -> np.ndarray:
    """Grid convergence gamma (rad) of a projected CRS at a point: true north -> grid north.

    Sign (PROJ's, the usual surveying one): gamma > 0 when grid north lies clockwise (east)
    of true north, e.g. east of a UTM central meridian in the northern hemisphere. Hence
    ``compass_heading_true = grid_bearing + gamma`` and, for CCW map yaws,
    ``yaw_true_enu = yaw_grid - gamma``. In a grid-north-up raster true north points at
    grid bearing -gamma, so rotating the content clockwise by gamma makes it true-north up.
    ``crs``: anything ``pyproj.CRS.from_user_input`` accepts (32632, 'EPSG:25832', a CRS).
    """
    crs_obj = pyproj.CRS.from_user_input(crs)
    if not crs_obj.is_projected:
        raise ValueError(f'meridian convergence needs a projected CRS, got {crs_obj.name!r}')
    lat, lon = _as_f64(lat_deg, lon_deg)
    factors = pyproj.Proj(crs_obj).get_factors(lon, lat)
    return np.radians(np.asarray(factors.meridian_convergence, dtype=np.float64))


def web_mercator_meters_per_px(lat_deg, zoom: int, tile_size_px: int = 256):
    """Ground resolution (m/px) of a Web Mercator tile at latitude ``lat_deg`` and ``zoom``.

    ``tile_size_px`` = 512 is the 'scale 2' (high-DPI) tile covering the same ground, e.g.
    KITTI at zoom 18, latitude 49.015 deg: 0.39166 m/px at 256 px, 0.19583 m/px at 512 px.
    """
    lat = np.asarray(lat_deg, dtype=np.float64)
    return WEB_MERCATOR_M_PER_PX_Z0 * np.cos(np.radians(lat)) / 2.0**zoom * 256.0 / tile_size_px


def wrap_angle_rad(angle_rad):
    """Wrap angles (rad) to (-pi, pi]. Works on floats, numpy arrays and torch tensors."""
    wrapped = math.pi - (math.pi - angle_rad) % _TWO_PI
    return wrapped + (wrapped <= -math.pi) * _TWO_PI


def compass_heading_to_yaw_rad(heading_deg):
    """Compass heading (deg, 0 = north, clockwise) -> map yaw (rad, 0 = east, CCW), (-pi, pi]."""
    return wrap_angle_rad(math.pi / 2.0 - np.radians(np.asarray(heading_deg, dtype=np.float64)))


def yaw_rad_to_compass_heading_deg(yaw_rad):
    """Map yaw (rad, 0 = east, CCW) -> compass heading (deg, 0 = north, clockwise), [0, 360)."""
    heading = np.mod(90.0 - np.degrees(np.asarray(yaw_rad, dtype=np.float64)), 360.0)
    return np.where(heading >= 360.0, heading - 360.0, heading)
