"""Tests for geodistill_core.geodesy against PROJ's independent conversions and analytic pins."""
import dataclasses
import math

import numpy as np
import pyproj
import pytest
import torch

from geodistill_core.geodesy import (
    LocalEnu,
    compass_heading_to_yaw_rad,
    geodetic_to_utm,
    meridian_convergence_rad,
    utm_epsg_for,
    utm_to_geodetic,
    web_mercator_meters_per_px,
    wrap_angle_rad,
    yaw_rad_to_compass_heading_deg,
)

GEOD = pyproj.Geod(ellps='WGS84')
KARLSRUHE = (49.015, 8.43, 116.0)
SYDNEY = (-33.87, 151.21, 30.0)
SAN_FRANCISCO = (37.77, -122.42, 15.0)


def _points_around(lat0, lon0, alt0, n=200, radius_m=1000.0, seed=0):
    """Random geodetic points within about ``radius_m`` of a datum, +-50 m in height."""
    rng = np.random.default_rng(seed)
    dlat = rng.uniform(-1, 1, n) * radius_m / 111_000.0
    dlon = rng.uniform(-1, 1, n) * radius_m / (111_000.0 * math.cos(math.radians(lat0)))
    return lat0 + dlat, lon0 + dlon, alt0 + rng.uniform(-50, 50, n)


@pytest.mark.parametrize('datum', [KARLSRUHE, SYDNEY, SAN_FRANCISCO])
def test_enu_matches_proj_topocentric(datum):
    lat0, lon0, alt0 = datum
    lat, lon, alt = _points_around(*datum)
    proj_enu = pyproj.Transformer.from_pipeline(
        '+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad '
        '+step +proj=cart +ellps=WGS84 '
        f'+step +proj=topocentric +ellps=WGS84 +lat_0={lat0} +lon_0={lon0} +h_0={alt0}')
    e_ref, n_ref, u_ref = proj_enu.transform(lon, lat, alt)
    assert np.abs(e_ref).max() > 500 and np.abs(n_ref).max() > 500  # spread over ~1 km
    e, n, u = LocalEnu(*datum).to_enu(lat, lon, alt)
    assert e.shape == n.shape == u.shape == (200,)
    np.testing.assert_allclose(e, e_ref, rtol=0, atol=1e-3)
    np.testing.assert_allclose(n, n_ref, rtol=0, atol=1e-3)
    np.testing.assert_allclose(u, u_ref, rtol=0, atol=1e-3)


@pytest.mark.parametrize('datum', [KARLSRUHE, SYDNEY])
def test_enu_round_trip(datum):
    lat, lon, alt = _points_around(*datum, seed=1)
    enu = LocalEnu(*datum)
    lat2, lon2, alt2 = enu.to_geodetic(*enu.to_enu(lat, lon, alt))
    np.testing.assert_allclose(lat2, lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lon2, lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(alt2, alt, rtol=0, atol=1e-6)


def test_enu_datum_is_origin_and_shapes_broadcast():
    enu = LocalEnu(*KARLSRUHE)
    e, n, u = enu.to_enu(*KARLSRUHE)
    assert e.shape == () and max(abs(e), abs(n), abs(u)) < 1e-6
    e, n, u = enu.to_enu(np.full((2, 3), KARLSRUHE[0]), KARLSRUHE[1], 0.0)
    assert e.shape == n.shape == u.shape == (2, 3)
    np.testing.assert_allclose(u, -KARLSRUHE[2], atol=1e-6)


@pytest.mark.parametrize('datum', [KARLSRUHE, SYDNEY])
def test_enu_axes_pins(datum):
    lat0, lon0, _ = datum
    alt0 = 0.0  # on the ellipsoid, where geodesic lengths are measured (at h, x (R + h) / R)
    enu = LocalEnu(lat0, lon0, alt0)
    lon_n, lat_n, _ = GEOD.fwd(lon0, lat0, 0.0, 100.0)  # 100 m geodesic due north
    e, n, _ = enu.to_enu(lat_n, lon_n, alt0)
    assert abs(e) < 1e-3 and abs(n - 100.0) < 1e-3
    lon_e, lat_e, _ = GEOD.fwd(lon0, lat0, 90.0, 100.0)  # 100 m geodesic due east
    e, n, _ = enu.to_enu(lat_e, lon_e, alt0)
    assert abs(e - 100.0) < 1e-3 and abs(n) < 1e-3
    # Counter-examples: north is not swapped with east and east is not negated.
    e, n, _ = enu.to_enu(lat_n, lon_n, alt0)
    assert n > 99.0 and abs(e) < 1.0
    e, _, _ = enu.to_enu(lat0, lon0 + 1e-3, alt0)
    assert e > 0.0
    e, n, u = enu.to_enu(lat0, lon0, alt0 + 10.0)
    assert abs(u - 10.0) < 1e-6 and abs(e) < 1e-6 and abs(n) < 1e-6


def test_local_enu_is_frozen_and_validates():
    enu = LocalEnu(*KARLSRUHE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        enu.lat_deg = 0.0
    assert enu == LocalEnu(*KARLSRUHE)
    with pytest.raises(ValueError, match='out of range'):
        LocalEnu(91.0, 8.0)


@pytest.mark.parametrize(('lat', 'lon', 'epsg'), [
    (49.015, 8.43, 32632),  # Karlsruhe
    (-33.87, 151.21, 32756),  # Sydney
    (37.77, -122.42, 32610),  # San Francisco
    (0.0, 3.0, 32631),  # equator counts as north
    (60.39, 5.32, 32632),  # Bergen: Norway exception (would be 31)
    (78.0, 8.0, 32631),  # Svalbard exception (would be 32)
    (10.0, 179.9, 32660),
    (10.0, -179.9, 32601),
])
def test_utm_zone_selection(lat, lon, epsg):
    assert utm_epsg_for(lat, lon) == epsg


def test_utm_zone_rejects_polar_latitudes():
    with pytest.raises(ValueError, match='UPS'):
        utm_epsg_for(85.0, 0.0)


@pytest.mark.parametrize(('datum', 'proj4'), [
    (KARLSRUHE, '+proj=utm +zone=32 +ellps=WGS84'),
    (SYDNEY, '+proj=utm +zone=56 +south +ellps=WGS84'),
])
def test_utm_matches_pyproj(datum, proj4):
    lat, lon, _ = _points_around(*datum, radius_m=5000.0)
    east, north, epsg = geodetic_to_utm(lat, lon)
    for crs in (f'EPSG:{epsg}', proj4):
        ref_e, ref_n = pyproj.Transformer.from_crs(
            'EPSG:4326', crs, always_xy=True).transform(lon, lat)
        np.testing.assert_allclose(east, ref_e, rtol=0, atol=1e-3)
        np.testing.assert_allclose(north, ref_n, rtol=0, atol=1e-3)
    lat2, lon2 = utm_to_geodetic(east, north, epsg)
    np.testing.assert_allclose(lat2, lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lon2, lon, rtol=0, atol=1e-9)


def test_utm_keeps_first_zone_for_a_track_and_checks_epsg():
    _, _, epsg = geodetic_to_utm([49.0, 49.0], [11.9, 12.1])  # crosses 12 E
    assert epsg == 32632
    east, _, _ = geodetic_to_utm([49.0, 49.0], [11.9, 12.1])
    assert east[1] - east[0] > 14_000  # continuous grid: ~14.6 km apart, no zone jump
    with pytest.raises(ValueError, match='UTM EPSG'):
        geodetic_to_utm(49.0, 8.0, epsg=3857)


def _grid_bearing_of_true_north_deg(lat, lon, crs):
    """Independent: project +-500 m along the meridian geodesic, measure the grid angle."""
    to_grid = pyproj.Transformer.from_crs('EPSG:4326', crs, always_xy=True)
    lon_n, lat_n, _ = GEOD.fwd(lon, lat, 0.0, 500.0)
    lon_s, lat_s, _ = GEOD.fwd(lon, lat, 180.0, 500.0)
    (e_s, e_n), (n_s, n_n) = to_grid.transform([lon_s, lon_n], [lat_s, lat_n])
    return math.degrees(math.atan2(e_n - e_s, n_n - n_s))


@pytest.mark.parametrize(('lat', 'lon', 'crs', 'sign'), [
    (49.015, 8.43, 'EPSG:32632', -1),  # Karlsruhe: west of the 9 E central meridian
    (49.015, 8.43, 'EPSG:25832', -1),
    (49.015, 9.57, 'EPSG:32632', +1),  # east of the central meridian, north
    (-33.87, 151.21, 'EPSG:32756', +1),  # west of 153 E, south: sign flips
])
def test_meridian_convergence_sign_and_magnitude(lat, lon, crs, sign):
    gamma_deg = math.degrees(float(meridian_convergence_rad(lat, lon, crs)))
    assert np.sign(gamma_deg) == sign
    # Documented sign: gamma = -(grid bearing of true north), i.e. grid north is clockwise
    # of true north when gamma > 0.
    assert gamma_deg == pytest.approx(-_grid_bearing_of_true_north_deg(lat, lon, crs), abs=1e-5)
    central_meridian = {'EPSG:32632': 9.0, 'EPSG:25832': 9.0, 'EPSG:32756': 153.0}[crs]
    first_order = (lon - central_meridian) * math.sin(math.radians(lat))
    assert gamma_deg == pytest.approx(first_order, rel=0.01)


def test_meridian_convergence_karlsruhe_value_and_errors():
    gamma = meridian_convergence_rad([49.015, 49.015], [8.43, 9.57], 32632)
    np.testing.assert_allclose(np.degrees(gamma), [-0.4303, 0.4303], atol=1e-4)
    with pytest.raises(ValueError, match='projected'):
        meridian_convergence_rad(49.0, 8.0, 'EPSG:4326')


@pytest.mark.parametrize(('lat', 'zoom', 'tile'), [
    (49.015, 18, 256), (49.015, 18, 512), (0.0, 10, 256), (-33.87, 20, 256), (60.0, 15, 512)])
def test_web_mercator_resolution_matches_measurement(lat, zoom, tile):
    px_3857_m = 2 * math.pi * 6378137.0 / (tile * 2**zoom)  # one pixel in EPSG:3857 metres
    to_3857 = pyproj.Transformer.from_crs('EPSG:4326', 'EPSG:3857', always_xy=True)
    x, y = to_3857.transform(8.0, lat)
    (lon1, lon2, lon3), (lat1, lat2, lat3) = to_3857.transform(
        [x, x + px_3857_m, x], [y, y, y + px_3857_m], direction='INVERSE')
    east_m = GEOD.inv(lon1, lat1, lon2, lat2)[2]
    north_m = GEOD.inv(lon1, lat1, lon3, lat3)[2]
    expected = web_mercator_meters_per_px(lat, zoom, tile)
    assert east_m == pytest.approx(expected, rel=5e-3)
    # Web Mercator is spherical, so it is only nearly conformal on the ellipsoid: the
    # north-south pixel differs by up to e^2 ~ 0.67 % (at the equator).
    assert north_m == pytest.approx(expected, rel=1e-2)


def test_web_mercator_kitti_constant():
    assert web_mercator_meters_per_px(49.015, 18) == pytest.approx(0.39166, abs=1e-5)
    assert web_mercator_meters_per_px(49.015, 18, tile_size_px=512) == pytest.approx(
        0.19583, abs=1e-5)
    np.testing.assert_allclose(web_mercator_meters_per_px(np.array([0.0, 60.0]), 0),
                               [156543.03392804097, 78271.51696402048])


def test_compass_heading_to_yaw_pins():
    assert compass_heading_to_yaw_rad(0.0) == pytest.approx(math.pi / 2)  # north
    assert compass_heading_to_yaw_rad(90.0) == pytest.approx(0.0, abs=1e-12)  # east
    south = compass_heading_to_yaw_rad(180.0)
    assert south == pytest.approx(-math.pi / 2)
    assert south != pytest.approx(math.pi / 2)  # counter-example: not a mirrored convention
    assert compass_heading_to_yaw_rad(270.0) == pytest.approx(math.pi)  # west, wrapped to +pi
    assert compass_heading_to_yaw_rad(45.0) == pytest.approx(math.pi / 4)  # north-east


def test_yaw_to_compass_heading_pins_and_round_trip():
    assert yaw_rad_to_compass_heading_deg(0.0) == pytest.approx(90.0)
    assert yaw_rad_to_compass_heading_deg(math.pi / 2) == pytest.approx(0.0)
    assert yaw_rad_to_compass_heading_deg(-math.pi / 2) == pytest.approx(180.0)
    assert yaw_rad_to_compass_heading_deg(math.pi / 2 + 1e-3) == pytest.approx(
        360.0 - math.degrees(1e-3))  # just west of north: near 360, never negative
    headings = np.random.default_rng(0).uniform(0, 360, 1000)
    yaws = compass_heading_to_yaw_rad(headings)
    assert np.all(yaws > -math.pi) and np.all(yaws <= math.pi)
    back = yaw_rad_to_compass_heading_deg(yaws)
    assert np.all(back >= 0) and np.all(back < 360)
    np.testing.assert_allclose(back, headings, atol=1e-9)


def test_wrap_angle_numpy_and_float():
    angles = np.array([0.0, math.pi, -math.pi, 3 * math.pi, -3 * math.pi, 7.0, -7.0, 100.0])
    wrapped = wrap_angle_rad(angles)
    assert np.all(wrapped > -math.pi) and np.all(wrapped <= math.pi)
    np.testing.assert_allclose(wrapped[:5], [0.0, math.pi, math.pi, math.pi, math.pi])
    turns = (angles - wrapped) / (2 * math.pi)
    np.testing.assert_allclose(turns, np.round(turns), atol=1e-12)
    assert isinstance(wrap_angle_rad(-math.pi), float) and wrap_angle_rad(-math.pi) == math.pi
    # Rounding edge: one ulp above pi lands exactly on -pi before the half-open fix-up.
    assert wrap_angle_rad(np.nextafter(math.pi, 4.0)) == math.pi


def test_wrap_angle_torch_keeps_dtype_device_and_gradient():
    angles = torch.tensor([-7.0, -math.pi, 0.5, math.pi, 7.0], dtype=torch.float64,
                          requires_grad=True)
    wrapped = wrap_angle_rad(angles)
    assert wrapped.dtype == torch.float64 and wrapped.device == angles.device
    np.testing.assert_allclose(wrapped.detach().numpy(),
                               [-7.0 + 2 * math.pi, math.pi, 0.5, math.pi, 7.0 - 2 * math.pi])
    wrapped.sum().backward()
    np.testing.assert_allclose(angles.grad.numpy(), np.ones(5))
    wrapped32 = wrap_angle_rad(torch.linspace(-20, 20, 101))
    assert wrapped32.dtype == torch.float32 and wrapped32.abs().max() <= math.pi + 1e-6
