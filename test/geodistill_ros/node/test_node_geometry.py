"""Pure parts of the node: camera -> base_link poses, yaw priors, diagnostics levels."""
from collections import Counter
import math

from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
import pytest

from geodistill_core.geodesy import LocalEnu
from geodistill_ros.node.config import CameraOffset, config_from_values
from geodistill_ros.node.diagnostics import NodeStats, StatsWindow, diagnostic_status
from geodistill_ros.node.heading import HeadingSample, choose_yaw_prior, track_heading
from geodistill_ros.node.planar_pose import (
    PlanarPose,
    base_pose_from_camera,
    camera_pose_in_map,
    camera_yaw_prior_in_crop,
)
from geodistill_ros.satellite import SatelliteCrop
from geodistill_ros.satellite.base import map_frame_placement

DATUM = LocalEnu(49.0, 8.4)
CONFIG = config_from_values({'datum.latitude_deg': 49.0, 'datum.longitude_deg': 8.4,
                             'map_source.path': 'x.tif'})


def crop_at(east_m, north_m, datum=DATUM):
    lat, lon, _ = datum.to_geodetic(east_m, north_m, 0.0)
    return SatelliteCrop(np.zeros((8, 8, 3), np.uint8), 0.5, float(lat), float(lon),
                         **map_frame_placement(float(lat), float(lon), datum))


def test_camera_pose_in_map_adds_the_offset_to_the_crop_centre():
    crop = crop_at(120.0, -40.0)
    pose = camera_pose_in_map(crop, (3.0, 4.0), np.diag([1.0, 2.0]), 0.3, 0.01)
    assert pose.x_m == pytest.approx(123.0, abs=2e-3)
    assert pose.y_m == pytest.approx(-36.0, abs=2e-3)
    assert pose.yaw_rad == pytest.approx(0.3 + crop.map_from_crop_yaw_rad)
    assert pose.var_yaw_rad2 == 0.01


def test_crop_rotation_far_from_the_datum_rotates_yaw_and_covariance():
    crop = crop_at(30000.0, 0.0)  # 30 km east: meridians converge by ~0.27 deg
    assert abs(crop.map_from_crop_yaw_rad) > 1e-3
    cov = np.diag([4.0, 0.25])
    pose = camera_pose_in_map(crop, (0.0, 0.0), cov, 0.0, 0.0)
    a = crop.map_from_crop_yaw_rad
    assert pose.yaw_rad == pytest.approx(a)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    np.testing.assert_allclose(pose.cov_xy_m2, R @ cov @ R.T)
    assert pose.cov_xy_m2[0, 1] != 0.0  # counter-example: not the unrotated diagonal
    # and the yaw prior goes the other way into the crop frame
    assert camera_yaw_prior_in_crop(0.5, CameraOffset(yaw_rad=0.2), crop) == pytest.approx(
        0.5 + 0.2 - a)


def test_base_pose_lever_arm_and_yaw_offset():
    camera = PlanarPose(10.0, 20.0, math.pi / 2, np.eye(2) * 0.1, 0.0)
    offset = CameraOffset(x_m=2.0, y_m=1.0, yaw_rad=math.radians(30.0))
    base = base_pose_from_camera(camera, offset)
    # base_link yaw = 90 - 30 = 60 deg; the camera is 2 m ahead, 1 m left of base_link
    yaw = math.radians(60.0)
    assert base.yaw_rad == pytest.approx(yaw)
    ahead, left = np.array([math.cos(yaw), math.sin(yaw)]), np.array([-math.sin(yaw),
                                                                       math.cos(yaw)])
    expected = np.array([10.0, 20.0]) - 2.0 * ahead - 1.0 * left
    np.testing.assert_allclose([base.x_m, base.y_m], expected, atol=1e-12)
    np.testing.assert_allclose(base.cov_xy_m2, camera.cov_xy_m2)  # no yaw error, no lever term


def test_covariance_propagation_matches_finite_differences():
    camera = PlanarPose(0.0, 0.0, 0.7, np.array([[0.5, 0.1], [0.1, 0.3]]), 0.04)
    offset = CameraOffset(x_m=1.6, y_m=-0.4, yaw_rad=0.1)
    base = base_pose_from_camera(camera, offset)
    eps = 1e-6

    def position(yaw):
        shifted = PlanarPose(0.0, 0.0, yaw, camera.cov_xy_m2, 0.0)
        moved = base_pose_from_camera(shifted, offset)
        return np.array([moved.x_m, moved.y_m])

    J = (position(0.7 + eps) - position(0.7 - eps)) / (2 * eps)
    np.testing.assert_allclose(base.cov_xy_m2, camera.cov_xy_m2 + 0.04 * np.outer(J, J),
                               rtol=1e-6)
    assert np.linalg.eigvalsh(base.cov_xy_m2).min() > 0.0
    inflated = base.inflated(10.0)
    np.testing.assert_allclose(inflated.cov_xy_m2, 10.0 * base.cov_xy_m2)
    assert inflated.var_yaw_rad2 == pytest.approx(0.4)


def test_track_heading_direction_and_speed_threshold():
    assert track_heading((0.0, 0.0), (0.0, 5.0), 1.0, 1.0) == pytest.approx(math.pi / 2)
    assert track_heading((0.0, 0.0), (-3.0, 0.0), 1.0, 1.0) == pytest.approx(math.pi)
    assert track_heading((0.0, 0.0), (0.5, 0.0), 1.0, 1.0) is None  # 0.5 m/s: standing
    assert track_heading((0.0, 0.0), (5.0, 0.0), 0.0, 1.0) is None


def test_yaw_prior_order_topic_track_fixed():
    stamp = 10**18
    heading = HeadingSample(stamp - 10**8, 1.0)
    prior = choose_yaw_prior(CONFIG, stamp, heading, 2.0)
    assert (prior.source, prior.yaw_rad, prior.range_deg) == ('topic', 1.0, 20.0)
    old = HeadingSample(stamp - 5 * 10**9, 1.0)
    prior = choose_yaw_prior(CONFIG, stamp, old, 2.0)
    assert (prior.source, prior.yaw_rad) == ('track', 2.0)
    prior = choose_yaw_prior(CONFIG, stamp, None, None)
    assert (prior.source, prior.yaw_rad, prior.range_deg) == ('fixed', 0.0, 180.0)
    fixed = config_from_values({'datum.from_first_fix': True, 'map_source.path': 'x.tif',
                                'heading_source': 'fixed', 'default_yaw_deg': 90.0,
                                'default_yaw_range_deg': 0.0})
    prior = choose_yaw_prior(fixed, stamp, heading, 2.0)
    assert (prior.source, prior.range_deg) == ('fixed', 0.0)
    assert prior.yaw_rad == pytest.approx(math.pi / 2)


def window(**kwargs) -> StatsWindow:
    values = dict(elapsed_s=1.0, received=Counter(image=10, fix=10), outputs=10,
                  low_confidence=0, dropped_busy=0, rejections=Counter(),
                  fixes_rejected=Counter(), map_errors=0,
                  totals={'images': 10, 'outputs': 10, 'low_confidence': 0,
                          'dropped_busy': 0, 'map_errors': 0, 'time_jumps': 0,
                          'rejections': {}, 'fixes_rejected': {}},
                  latency_ms={'p50': 50.0, 'p95': 80.0,
                              **{f'{s}_p50': 1.0 for s in ('decode', 'pairing', 'crop',
                                                           'inference', 'post', 'fusion',
                                                           'publish')}})
    values.update(kwargs)
    return StatsWindow(**values)


def test_diagnostic_levels():
    ok = diagnostic_status(window(), 'n', 'cpu')
    assert ok.level == DiagnosticStatus.OK and '10.0 Hz' in ok.message
    keys = {kv.key: kv.value for kv in ok.values}
    assert keys['image_rate_hz'] == '10' and keys['latency_p95_ms'] == '80'
    warn = diagnostic_status(window(rejections=Counter(map_coverage=2), outputs=8), 'n', 'cpu')
    assert warn.level == DiagnosticStatus.WARN and 'map_coverage x2' in warn.message
    error = diagnostic_status(window(outputs=0, rejections=Counter(fix_stale=10)), 'n', 'cpu')
    assert error.level == DiagnosticStatus.ERROR and 'fix_stale' in error.message
    idle = diagnostic_status(window(received=Counter(), outputs=0), 'n', 'cpu')
    assert idle.level == DiagnosticStatus.WARN and 'no images' in idle.message


def test_stats_latency_percentiles_and_window_reset():
    now = [0.0]
    stats = NodeStats(clock=lambda: now[0])
    for i in range(100):
        stats.received('image')
        stats.localized(0.5, 0.01, False, True, latency_s=(i + 1) * 1e-3,
                        stages_s={'inference': 1e-3})
    now[0] = 2.0
    w = stats.window()
    assert w.received['image'] == 100 and w.outputs == 100 and w.elapsed_s == 2.0
    assert w.latency_ms['p50'] == pytest.approx(50.5)
    assert w.latency_ms['p95'] == pytest.approx(95.05)
    assert w.latency_ms['inference_p50'] == pytest.approx(1.0)
    assert math.isnan(w.latency_ms['crop_p50'])
    now[0] = 3.0
    assert stats.window().received['image'] == 0  # the window restarted
    assert stats.count('image') == 100
