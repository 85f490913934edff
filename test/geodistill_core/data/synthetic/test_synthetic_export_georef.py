"""Georeference of the synthetic worlds and the synthetic cities (pinned against pyproj)."""
import itertools
import math

import numpy as np
import pyproj
import pytest

from geodistill_core.data.synthetic import CITY_STYLES, SYNTHETIC_CITIES, Georeference
from geodistill_core.data.synthetic.georef import city_for_style, format_degrees


def test_world_frame_round_trip_and_metric_distances():
    geo = SYNTHETIC_CITIES['SynthDowntown'].georef()
    east = np.array([0.0, 400.0, 0.0, 250.0, 1000.0])
    north = np.array([0.0, 0.0, 400.0, 333.0, 1000.0])
    lat, lon = geo.world_to_geodetic(east, north)
    np.testing.assert_allclose(geo.geodetic_to_world(lat, lon), (east, north), atol=1e-5)
    assert (lat[0], lon[0]) == pytest.approx((geo.lat_deg, geo.lon_deg), abs=1e-12)
    # independent: geodesic distances and azimuths from the datum (pyproj.Geod). Geod
    # measures on the ellipsoid; the ground lies alt_m above it, longer by (R + h) / R.
    az, _, dist = pyproj.Geod(ellps='WGS84').inv(np.full(4, lon[0]), np.full(4, lat[0]),
                                                 lon[1:], lat[1:])
    at_height = dist * (1.0 + geo.alt_m / 6.371e6)
    np.testing.assert_allclose(at_height, np.hypot(east[1:], north[1:]), atol=0.005)
    assert not np.allclose(dist, np.hypot(east[1:], north[1:]), atol=0.005)
    np.testing.assert_allclose(az, np.degrees(np.arctan2(east[1:], north[1:])), atol=1e-3)


def test_convention_pin_east_is_longitude_north_is_latitude():
    geo = Georeference(49.0, 8.0, 100.0)
    lat_e, lon_e = geo.world_to_geodetic(100.0, 0.0)
    lat_n, lon_n = geo.world_to_geodetic(0.0, 100.0)
    assert lon_e > 8.0 and lat_e == pytest.approx(49.0, abs=1e-6)
    assert lat_n > 49.0 and lon_n == pytest.approx(8.0, abs=1e-9)
    assert not lat_e > 49.0 + 1e-4  # the swapped convention would fail here


def test_utm_round_trip_and_convergence_sign():
    geo = SYNTHETIC_CITIES['SynthOldTown'].georef()
    x, y = geo.world_to_utm([0.0, 300.0], [0.0, 200.0])
    np.testing.assert_allclose(geo.utm_to_world(x, y), ([0.0, 300.0], [0.0, 200.0]), atol=1e-6)
    # west of the central meridian (9 E) grid north lies west of true north (gamma < 0):
    # true north points at grid bearing -gamma, so a world step maps to the grid rotated
    # clockwise by |gamma| (x scale ~1.0001 ignored: 4 cm here)
    gamma = geo.utm_convergence_rad()
    assert math.degrees(gamma) == pytest.approx(-2.14, abs=0.02)
    c, s = math.cos(-gamma), math.sin(-gamma)
    expected = (300.0 * c + 200.0 * s, 200.0 * c - 300.0 * s)
    np.testing.assert_allclose((x[1] - x[0], y[1] - y[0]), expected, atol=0.1)
    assert abs(y[1] - y[0] - 200.0) > 10.0  # not a translation


def test_cities_one_per_style_far_apart_and_vigor_like():
    assert sorted(c.style for c in SYNTHETIC_CITIES.values()) == sorted(CITY_STYLES)
    assert {c.kitti_date for c in SYNTHETIC_CITIES.values()}.__len__() == 4
    geod = pyproj.Geod(ellps='WGS84')
    for a, b in itertools.combinations(SYNTHETIC_CITIES.values(), 2):
        assert geod.inv(a.lon_deg, a.lat_deg, b.lon_deg, b.lat_deg)[2] > 20_000.0
    for city in SYNTHETIC_CITIES.values():
        assert 0.1 <= city.meters_per_px_640 <= 0.12
        assert city_for_style(city.style) is city
    assert format_degrees(49.123456789) == '49.12345679'
