"""The node end to end over DDS with a scripted localizer: frames, stamps, numbers.

The scripted localizer returns a known camera pose in the crop frame, so every published
number has an independent expected value (geodesy of the fix + the offset).
"""
import math

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from test_node_harness import (  # noqa: E402
    CENTRE_LAT_DEG,
    CENTRE_LON_DEG,
    IMAGE_HW,
    K_PX,
    STAMP_NS,
    NodeHarness,
    ScriptedLocalizer,
    base_overrides,
    en_to_latlon,
    quaternion_stamped,
    test_image,
    write_geotiff,
    yaw_of,
)

from geodistill_core.geodesy import LocalEnu  # noqa: E402

pytestmark = pytest.mark.ros
DATUM = LocalEnu(CENTRE_LAT_DEG, CENTRE_LON_DEG)
FIX_EN_M = (5.0, -3.0)


@pytest.fixture(scope='module')
def tif(tmp_path_factory):
    return write_geotiff(tmp_path_factory.mktemp('node_map') / 'map.tif')


def localize_once(harness, stamp_ns=STAMP_NS, fix_en_m=FIX_EN_M):
    harness.send_camera_info()
    harness.send_fix(stamp_ns, *en_to_latlon(*fix_en_m))
    harness.send_image(test_image(stamp_ns))
    harness.spin_until(lambda: harness.poses and harness.heatmaps and harness.fixes, 5.0,
                       'pose, heatmap and fix_corrected')
    return harness.poses[-1]


def test_pose_in_map_with_image_stamp_position_and_covariance(ros_isolation, tif):
    scripted = ScriptedLocalizer(offset_en_m=(3.0, -2.0), yaw_rad=0.4, yaw_std_rad=0.05)
    with NodeHarness(base_overrides(tif), scripted) as h:
        assert scripted.warmed_up
        pose = localize_once(h, STAMP_NS + 123)
        assert pose.header.frame_id == 'map'
        assert (pose.header.stamp.sec, pose.header.stamp.nanosec) == (1317046945, 123)
        # fix at (5, -3) in the map + the camera offset (3, -2) from the crop centre
        position = pose.pose.pose.position
        assert position.x == pytest.approx(8.0, abs=2e-3)
        assert position.y == pytest.approx(-5.0, abs=2e-3)
        assert position.z == pytest.approx(110.0 - 0.0 - 0.0, abs=0.01)  # fix altitude
        assert yaw_of(pose) == pytest.approx(0.4, abs=1e-5)
        cov = np.array(pose.pose.covariance).reshape(6, 6)
        np.testing.assert_allclose(cov[:2, :2], scripted.covariance_en_m2, atol=1e-5)
        assert cov[5, 5] == pytest.approx(0.05 ** 2)
        assert cov[2, 2] >= 1e3 and cov[3, 3] >= 1e3 and cov[4, 4] >= 1e3
        assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > 0.0
        off_diagonal = cov.copy()
        off_diagonal[:2, :2] = 0.0
        np.fill_diagonal(off_diagonal, 0.0)
        assert not off_diagonal.any()  # no correlations invented between x/y and the rest
        # what the localizer was given
        call = scripted.calls[-1]
        assert call['ground_shape'] == IMAGE_HW + (3,)
        assert call['sat_shape'] == (64, 64, 3)
        assert call['sat_meters_per_px'] == pytest.approx(0.5)
        np.testing.assert_allclose(call['K'], K_PX)  # from CameraInfo P
        assert call['yaw_prior_rad'] == pytest.approx(0.0, abs=1e-5)  # no heading: default_yaw_deg


def test_heatmap_peak_cell_is_at_the_published_position(ros_isolation, tif):
    scripted = ScriptedLocalizer(offset_en_m=(-4.0, 6.0))
    with NodeHarness(base_overrides(tif), scripted) as h:
        pose = localize_once(h)
        grid = h.heatmaps[-1]
        assert grid.header.frame_id == 'map'
        assert grid.header.stamp == pose.header.stamp
        info = grid.info
        assert (info.width, info.height) == (33, 33) and info.resolution == pytest.approx(1.0)
        values = np.array(grid.data, np.int8).reshape(info.height, info.width)
        assert values.max() == 100 and values.min() >= 0
        row, col = np.unravel_index(np.argmax(values), values.shape)
        # OccupancyGrid: row 0 at the origin (south-west corner), x east, y north
        x = info.origin.position.x + (col + 0.5) * info.resolution
        y = info.origin.position.y + (row + 0.5) * info.resolution
        assert x == pytest.approx(pose.pose.pose.position.x, abs=2e-3)
        assert y == pytest.approx(pose.pose.pose.position.y, abs=2e-3)
        # counter-example: without the row flip the peak would sit 12 m further south
        flipped_y = info.origin.position.y + (info.height - 1 - row + 0.5) * info.resolution
        assert abs(flipped_y - pose.pose.pose.position.y) > 10.0


def test_fix_corrected_round_trips_through_geodesy(ros_isolation, tif):
    with NodeHarness(base_overrides(tif), ScriptedLocalizer(offset_en_m=(1.0, 2.0))) as h:
        pose = localize_once(h)
        fix = h.fixes[-1]
        assert fix.header.stamp == pose.header.stamp
        assert fix.header.frame_id == 'base_link'
        east, north, _ = DATUM.to_enu(fix.latitude, fix.longitude, fix.altitude)
        assert float(east) == pytest.approx(pose.pose.pose.position.x, abs=1e-3)
        assert float(north) == pytest.approx(pose.pose.pose.position.y, abs=1e-3)
        cov = np.array(fix.position_covariance).reshape(3, 3)
        np.testing.assert_allclose(cov[:2, :2], ScriptedLocalizer().covariance_en_m2,
                                   atol=1e-5)
        assert cov[2, 2] == pytest.approx(8.0)  # the input fix's vertical variance
        assert fix.position_covariance_type == fix.COVARIANCE_TYPE_KNOWN


def test_camera_offset_moves_the_pose_to_base_link(ros_isolation, tif):
    scripted = ScriptedLocalizer(offset_en_m=(0.0, 0.0), yaw_rad=math.pi / 2)
    overrides = base_overrides(tif, **{'camera_offset.x_m': 1.5, 'camera_offset.y_m': 0.5,
                                       'camera_offset.z_m': 1.6,
                                       'camera_offset.yaw_deg': 90.0})
    with NodeHarness(overrides, scripted) as h:
        pose = localize_once(h, fix_en_m=(0.0, 0.0))
        # camera looks north and is mounted looking left: base_link faces east, and the
        # camera sits 1.5 m ahead (east) and 0.5 m left (north) of base_link
        assert yaw_of(pose) == pytest.approx(0.0, abs=1e-5)
        assert pose.pose.pose.position.x == pytest.approx(-1.5, abs=2e-3)
        assert pose.pose.pose.position.y == pytest.approx(-0.5, abs=2e-3)
        assert pose.pose.pose.position.z == pytest.approx(110.0 - 1.6, abs=0.01)
        # yaw uncertainty moves base_link sideways along the lever arm (|lever| > 0)
        cov = np.array(pose.pose.covariance).reshape(6, 6)
        assert cov[1, 1] > ScriptedLocalizer().covariance_en_m2[1, 1] + 1e-4


def test_yaw_prior_from_heading_topic_then_track(ros_isolation, tif):
    scripted = ScriptedLocalizer()
    overrides = base_overrides(tif, **{'camera_offset.yaw_deg': 10.0,
                                       'yaw_prior_range_deg': 15.0})
    with NodeHarness(overrides, scripted) as h:
        h.send_camera_info()
        # driving north at 5 m/s: fixes one second apart
        h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0))
        h.send_fix(STAMP_NS + 10**9, *en_to_latlon(0.0, 5.0))
        h.send_image(test_image(STAMP_NS + 10**9))
        track = scripted.calls[-1]
        assert track['yaw_prior_rad'] == pytest.approx(math.pi / 2 + math.radians(10.0),
                                                       abs=1e-3)
        h.heading_pub.publish(quaternion_stamped(STAMP_NS + 10**9, -1.0))
        h.spin_until(lambda: h.node.heading is not None, 5.0, 'heading_prior')
        h.send_image(test_image(STAMP_NS + 10**9))
        topic = scripted.calls[-1]
        assert topic['yaw_prior_rad'] == pytest.approx(-1.0 + math.radians(10.0), abs=1e-4)


def test_compressed_transport_and_diagnostics(ros_isolation, tif):
    overrides = base_overrides(tif, image_transport='compressed')
    with NodeHarness(overrides, ScriptedLocalizer(), compressed=True) as h:
        h.send_camera_info()
        h.send_fix(STAMP_NS, *en_to_latlon(*FIX_EN_M))
        h.send_image(test_image(STAMP_NS, compressed=True))
        h.spin_until(lambda: h.poses, 5.0, 'a pose')
        diag = h.last_diagnostics(min_count=1)
        assert diag['outputs_total'] == '1'
        assert diag['device'] == 'cpu'
        assert float(diag['latency_p50_ms']) > 0.0
        assert float(diag['latency_inference_p50_ms']) >= 0.0
        assert diag['confidence'] == '0.9'
        assert float(diag['fix_age_s']) == 0.0
        for key in ('image_rate_hz', 'fix_rate_hz', 'camera_info_rate_hz',
                    'dropped_busy_total', 'map_source', 'latency_p95_ms'):
            assert key in diag
        # an idle window is a warning: no images
        h.spin_for(0.5)
        idle = h.last_diagnostics(min_count=1)
        assert idle['_level'] == b'\x01' and 'no images' in idle['_message']


def test_no_tf_unless_publish_tf(ros_isolation, tif):
    with NodeHarness(base_overrides(tif), ScriptedLocalizer()) as h:
        localize_once(h)
        assert h.tester.count_publishers('/tf') == 0


@pytest.mark.parametrize('heading, std_deg', [(None, 180.0 / math.sqrt(3.0)),
                                               (1.0, 15.0 / math.sqrt(3.0))])
def test_yaw_variance_is_the_priors_when_the_model_does_not_estimate_yaw(
        ros_isolation, tif, heading, std_deg):
    """A model without an orientation estimator echoes the prior: publish its spread."""
    scripted = ScriptedLocalizer(estimates_yaw=False, yaw_std_rad=math.radians(5.0))
    overrides = base_overrides(tif, yaw_prior_range_deg=15.0, default_yaw_deg=30.0)
    with NodeHarness(overrides, scripted) as h:
        if heading is not None:
            h.heading_pub.publish(quaternion_stamped(STAMP_NS, heading))
            h.spin_until(lambda: h.node.heading is not None, 5.0, 'heading_prior')
        pose = localize_once(h, fix_en_m=(0.0, 0.0))
        cov = np.array(pose.pose.covariance).reshape(6, 6)
        assert math.degrees(math.sqrt(cov[5, 5])) == pytest.approx(std_deg, rel=1e-6)
        expected_yaw = math.radians(30.0) if heading is None else heading
        assert yaw_of(pose) == pytest.approx(expected_yaw, abs=1e-5)
        if heading is None:
            assert '104 deg' in h.wait_warning('no heading for this frame')


def test_gnss_velocity_course_is_the_yaw_prior_with_its_std(ros_isolation, tif):
    """A GNSS velocity (east/north) on gnss_velocity: its course over ground is the prior,
    published with the velocity's cross-track sigma over the speed; a NaN velocity is
    rejected and counted, never used."""
    from geometry_msgs.msg import TwistWithCovarianceStamped

    from geodistill_ros.node.messages import ns_to_stamp
    from geodistill_ros.node.topics import FIX_QOS
    scripted = ScriptedLocalizer(estimates_yaw=False, yaw_std_rad=math.radians(0.1))
    with NodeHarness(base_overrides(tif, default_yaw_deg=30.0), scripted) as h:
        pub = h.tester.create_publisher(TwistWithCovarianceStamped, 'gnss_velocity', FIX_QOS)
        h.spin_until(lambda: pub.get_subscription_count() > 0, 5.0, 'gnss_velocity match')

        def velocity(east, north, sigma):
            msg = TwistWithCovarianceStamped()
            msg.header.stamp = ns_to_stamp(STAMP_NS)
            msg.twist.twist.linear.x, msg.twist.twist.linear.y = east, north
            cov = [0.0] * 36
            cov[0] = cov[7] = sigma ** 2
            msg.twist.covariance = cov
            return msg
        pub.publish(velocity(math.nan, 1.0, 0.1))
        pub.publish(velocity(-4.0, 4.0, 0.2))  # north-west at 5.7 m/s
        h.spin_until(lambda: h.node.velocity_heading is not None, 5.0, 'the course')
        pose = localize_once(h, fix_en_m=(0.0, 0.0))
        assert math.degrees(yaw_of(pose)) == pytest.approx(135.0, abs=1e-4)
        cov = np.array(pose.pose.covariance).reshape(6, 6)
        assert math.sqrt(cov[5, 5]) == pytest.approx(0.2 / math.hypot(4.0, 4.0), rel=1e-4)
        diag = h.last_diagnostics()
        assert diag['yaw_prior_source'] == 'velocity'
        assert int(diag['gnss_velocity_rejected_non_finite_total']) == 1
