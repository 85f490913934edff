"""Georeference of the synthetic worlds (world map frame <-> WGS 84) and the synthetic cities.

A world's map frame (ENU metres, origin at its south-west corner, flat ground at up = 0) is
the local east-north-up tangent plane (``geodesy.LocalEnu``) at a datum: the latitude and
longitude of the south-west corner and the ground's ellipsoidal height. Both directions go
through that one LocalEnu with the ground on the datum's tangent plane, so
world -> lat/lon -> world is exact to micrometres over kilometres.

What the exports neglect (documented, below a centimetre in any world of a few hundred m):
the ground of a world is its datum's tangent plane, not the ellipsoid (it drops below
the ellipsoid by d^2 / 2R, 2 cm at 500 m); world axes and the local east/north axes at a
point d metres away differ by about d * tan(lat) / R radians (1.8e-4 rad at 1 km, 49 deg),
so a north-up tile or an OXTS yaw in world axes is north-up / true-north to that angle;
world metres are ground metres at the datum's height, (R + h) / R = 1 + 2e-5 longer than
the ellipsoid metres of geodesics and map projections (1 cm at 500 m).
The GeoTIFF export (export_geotiff) does handle the UTM grid's meridian convergence and
scale factor exactly: they are degrees and 1e-4, not negligible.

Cities: one fictional city per style (``SYNTHETIC_CITIES``), each placed at real-looking
coordinates in the KITTI region (latitude about 49 deg, where KITTI's 0.19583 m/px satmap
resolution is defined; UTM zone 32N), with a VIGOR-like per-city satellite resolution and a
KITTI recording date. ``SynthOldTown`` sits 2.8 deg west of its UTM central meridian, so
its GeoTIFF has a meridian convergence of -2.1 deg (a test relies on that).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import functools

import numpy as np

from geodistill_core.geodesy import (
    LocalEnu,
    geodetic_to_utm,
    meridian_convergence_rad,
    utm_epsg_for,
    utm_to_geodetic,
)


@dataclass(frozen=True)
class Georeference:
    """World map frame <-> WGS 84: the world frame is the ENU tangent plane at the datum.

    lat_deg, lon_deg: WGS 84 position of the world's south-west corner (map origin).
    alt_m: ellipsoidal height of the ground there (the world's up = 0).
    """

    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0

    @functools.cached_property
    def enu(self) -> LocalEnu:
        """The datum's LocalEnu (origin = the world's south-west corner on the ground)."""
        return LocalEnu(self.lat_deg, self.lon_deg, self.alt_m)

    def world_to_geodetic(self, east_m, north_m):
        """World (east_m, north_m) on the ground -> (lat_deg, lon_deg) float64 arrays."""
        lat, lon, _ = self.enu.to_geodetic(east_m, north_m, 0.0)
        return lat, lon

    def geodetic_to_world(self, lat_deg, lon_deg):
        """(lat_deg, lon_deg) -> world (east_m, north_m) on the ground plane."""
        east, north, _ = self.enu.to_enu(lat_deg, lon_deg, self.alt_m)
        return east, north

    def utm_epsg(self) -> int:
        """EPSG code of the WGS 84 UTM zone of the datum (326zz north)."""
        return utm_epsg_for(self.lat_deg, self.lon_deg)

    def world_to_utm(self, east_m, north_m, epsg: int | None = None):
        """World (east_m, north_m) -> UTM (x_m, y_m) in zone ``epsg`` (default: the datum's)."""
        lat, lon = self.world_to_geodetic(east_m, north_m)
        x, y, _ = geodetic_to_utm(lat, lon, epsg or self.utm_epsg())
        return x, y

    def utm_to_world(self, x_m, y_m, epsg: int | None = None):
        """UTM (x_m, y_m) in zone ``epsg`` (default: the datum's) -> world (east_m, north_m)."""
        lat, lon = utm_to_geodetic(x_m, y_m, epsg or self.utm_epsg())
        return self.geodetic_to_world(lat, lon)

    def utm_convergence_rad(self, epsg: int | None = None) -> float:
        """Meridian convergence (rad, PROJ sign) of the UTM grid at the datum."""
        return float(meridian_convergence_rad(self.lat_deg, self.lon_deg,
                                              epsg or self.utm_epsg()))

    def to_json(self) -> dict:
        return {'lat_deg': self.lat_deg, 'lon_deg': self.lon_deg, 'alt_m': self.alt_m}


@dataclass(frozen=True)
class SyntheticCity:
    """A fictional city: one world style at a datum, with its dataset-layout constants.

    name: the VIGOR city folder name. style: a CITY_STYLES name. lat_deg, lon_deg, alt_m:
    the datum of its world's south-west corner. meters_per_px_640: ground resolution of its
    640-px VIGOR tiles. kitti_date: its KITTI recording date folder (YYYY_MM_DD).
    """

    name: str
    style: str
    lat_deg: float
    lon_deg: float
    alt_m: float
    meters_per_px_640: float
    kitti_date: str

    def georef(self) -> Georeference:
        return Georeference(self.lat_deg, self.lon_deg, self.alt_m)

    def to_json(self) -> dict:
        return asdict(self)


SYNTHETIC_CITIES: dict[str, SyntheticCity] = {c.name: c for c in (
    SyntheticCity('SynthDowntown', 'grid_downtown', 49.0091, 8.3952, 115.0, 0.110,
                  '2024_06_03'),
    SyntheticCity('SynthSuburb', 'suburb_organic', 49.4783, 8.4529, 96.0, 0.105,
                  '2024_06_04'),
    SyntheticCity('SynthIndustrial', 'industrial', 49.2402, 6.9969, 190.0, 0.115,
                  '2024_06_05'),
    SyntheticCity('SynthOldTown', 'old_town', 49.1163, 6.1757, 175.0, 0.108,
                  '2024_06_06'),
)}
"""The synthetic cities by name, one per city style."""

CITY_INDEX = {name: i for i, name in enumerate(SYNTHETIC_CITIES)}
"""Stable small integer per city (enters every seed derived for the city)."""


def get_city(name: str) -> SyntheticCity:
    """The SyntheticCity called ``name``; ValueError listing the known ones."""
    if name not in SYNTHETIC_CITIES:
        raise ValueError(f'unknown synthetic city {name!r}; known: {sorted(SYNTHETIC_CITIES)}')
    return SYNTHETIC_CITIES[name]


def city_for_style(style: str) -> SyntheticCity:
    """The synthetic city of a city style."""
    for city in SYNTHETIC_CITIES.values():
        if city.style == style:
            return city
    raise ValueError(f'no synthetic city has style {style!r}')


def format_degrees(value) -> str:
    """Degrees with 8 decimals (1.1 mm of latitude): file-name coordinates."""
    return f'{float(np.asarray(value)):.8f}'
