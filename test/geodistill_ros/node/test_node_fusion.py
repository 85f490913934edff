"""The node's sequence filter over DDS: pose is the posterior, pose_single the frame alone,
odometry in and rejected when bad, the ~/reset service, fusion diagnostics, yaw tracking."""
from dataclasses import dataclass, field, replace
import math

from geometry_msgs.msg import PoseWithCovarianceStamped, TwistWithCovarianceStamped
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger
from test_node_harness import (
    NodeHarness,
    ScriptedLocalizer,
    base_overrides,
    en_to_latlon,
    test_image,
    write_geotiff,
    yaw_of,
)
import torch

from geodistill_ros.node.messages import ns_to_stamp
from geodistill_ros.node.topics import POSE_QOS

STAMP_NS = 1_317_046_945_000_000_000
STEP_NS = 100_000_000
FILTER = {'fusion.mode': 'filter'}  # the node's default (the harness sets 'none')
# the harness's car is parked: its frames count per frame, as a moving car's would
PER_FRAME = {**FILTER, 'fusion.camera_weight_distance_m': 0.0,
             'fusion.process_noise_full_speed_mps': 0.0}


@pytest.fixture(scope='module')
def tif(tmp_path_factory):
    return write_geotiff(tmp_path_factory.mktemp('fusion_map') / 'map.tif')


def twist_msg(stamp_ns, v=0.0, frame='base_link', var=0.01):
    msg = TwistWithCovarianceStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame
    msg.twist.twist.linear.x = v
    cov = np.zeros(36)
    cov[0] = cov[7] = var
    cov[35] = 1e-4
    msg.twist.covariance = cov.tolist()
    return msg


class FusionHarness(NodeHarness):
    def __init__(self, overrides, localizer, odometry=True):
        super().__init__(overrides, localizer)
        self.odometry = odometry
        self.singles = []
        self.tester.create_subscription(PoseWithCovarianceStamped, 'pose_single',
                                        self._keep(self.singles), POSE_QOS)
        self.twist_pub = self.tester.create_publisher(
            TwistWithCovarianceStamped, 'twist', QoSProfile(depth=50,
                                                            reliability=ReliabilityPolicy.RELIABLE))
        self.reset_client = self.tester.create_client(Trigger, 'geodistill_localizer/reset')
        if odometry:
            self.spin_until(lambda: self.twist_pub.get_subscription_count() > 0, 10.0,
                            'twist')

    def frame(self, k, fix_en_m, v=0.0):
        stamp = STAMP_NS + k * STEP_NS
        if self.odometry:
            before = self.node.stats.count('twist')
            self.twist_pub.publish(twist_msg(stamp, v))
            self.spin_until(lambda: self.node.stats.count('twist') > before, 5.0, 'twist')
        self.send_fix(stamp, *en_to_latlon(*fix_en_m))
        n = len(self.poses)
        self.send_image(test_image(stamp))
        self.spin_until(lambda: len(self.poses) > n and len(self.singles) >= len(self.poses),
                        5.0, 'pose and pose_single')
        return self.poses[-1], self.singles[-1]


def test_pose_is_the_posterior_and_pose_single_the_frame_alone(ros_isolation, tif):
    # the camera sees itself 3 m east of noisy fixes scattered around the truth
    scripted = ScriptedLocalizer(offset_en_m=(0.0, 0.0), heatmap_sigma_m=1.0)
    rng = np.random.default_rng(0)
    truth = np.array([5.0, -3.0])
    with FusionHarness(base_overrides(tif, **PER_FRAME), scripted) as h:
        h.send_camera_info()
        for k in range(15):
            fix = truth + rng.normal(0.0, 2.0, 2)
            scripted.offset_en_m = tuple(truth - fix)  # the heatmap is on the truth
            pose, single = h.frame(k, fix)
        fused_xy = np.array([pose.pose.pose.position.x, pose.pose.pose.position.y])
        single_xy = np.array([single.pose.pose.position.x, single.pose.pose.position.y])
        assert np.linalg.norm(single_xy - truth) < 0.3  # the frame alone, on the heatmap
        assert np.linalg.norm(fused_xy - truth) < 0.5
        cov_fused = np.array(pose.pose.covariance).reshape(6, 6)[:2, :2]
        cov_single = np.array(single.pose.covariance).reshape(6, 6)[:2, :2]
        assert np.trace(cov_fused) < np.trace(cov_single)  # 15 frames know more than one
        values = h.last_diagnostics()
        assert values['fusion'] == 'filter'
        assert int(values['fusion_frames_total']) == 15
        assert int(values['fusion_motion_odometry_total']) >= 14
        assert values['fusion_motion'] == 'odometry'
        assert float(values['fusion_camera_weight']) == pytest.approx(0.25)  # per frame here


def test_a_parked_car_counts_its_view_once(ros_isolation, tif):
    """The node's defaults: the harness's car stands (odometry 0 m/s), so after the first
    frame no heatmap is fused again and the diagnostics say so."""
    scripted = ScriptedLocalizer(offset_en_m=(0.0, 0.0), heatmap_sigma_m=1.0)
    with FusionHarness(base_overrides(tif, **FILTER), scripted) as h:
        h.send_camera_info()
        for k in range(4):
            h.frame(k, (5.0, -3.0))
        values = h.last_diagnostics()
        assert float(values['fusion_camera_weight']) == 0.0
        assert int(values['fusion_camera_outliers_total']) == 0


def test_fusion_none_publishes_the_single_frame_pose(ros_isolation, tif):
    scripted = ScriptedLocalizer(offset_en_m=(1.0, 2.0))
    with FusionHarness(base_overrides(tif, **{'fusion.mode': 'none'}), scripted,
                       odometry=False) as h:
        assert h.twist_pub.get_subscription_count() == 0  # no filter, no odometry input
        h.send_camera_info()
        pose, single = h.frame(0, (5.0, -3.0))
        assert pose.pose.pose.position.x == pytest.approx(single.pose.pose.position.x)
        assert pose.pose.pose.position.x == pytest.approx(6.0, abs=2e-3)


def test_bad_odometry_is_rejected_counted_and_never_fused(ros_isolation, tif):
    scripted = ScriptedLocalizer(offset_en_m=(0.0, 0.0))
    with FusionHarness(base_overrides(tif, **FILTER), scripted) as h:
        h.send_camera_info()
        h.frame(0, (5.0, -3.0))
        bad = [twist_msg(STAMP_NS + STEP_NS, v=math.nan),           # NaN
               twist_msg(STAMP_NS + STEP_NS, v=20.0, frame='odom'),  # not base_link
               twist_msg(STAMP_NS - 5 * STEP_NS, v=20.0),            # going backwards
               twist_msg(STAMP_NS + STEP_NS, v=20.0, var=-1.0)]      # negative variance
        for k, msg in enumerate(bad):
            h.twist_pub.publish(msg)
            h.spin_until(lambda k=k: h.node.stats.count('twist') > 1 + k, 5.0, 'twist')
        values = h.last_diagnostics()
        for reason in ('non_finite', 'wrong_frame', 'stamp_not_increasing',
                       'negative_variance'):
            assert int(values[f'odometry_rejected_{reason}_total']) == 1, reason
        # none of the 20 m/s samples moved the belief
        h.send_fix(STAMP_NS + 2 * STEP_NS, *en_to_latlon(5.0, -3.0))
        n = len(h.poses)
        h.send_image(test_image(STAMP_NS + 2 * STEP_NS))
        h.spin_until(lambda: len(h.poses) > n, 5.0, 'pose')
        assert h.poses[-1].pose.pose.position.x == pytest.approx(5.0, abs=1.0)


def test_reset_service_restarts_the_filter(ros_isolation, tif):
    scripted = ScriptedLocalizer(offset_en_m=(0.0, 0.0))
    with FusionHarness(base_overrides(tif, **FILTER), scripted) as h:
        h.send_camera_info()
        for k in range(3):
            h.frame(k, (5.0, -3.0))
        h.spin_until(lambda: h.reset_client.service_is_ready(), 5.0, 'the reset service')
        future = h.reset_client.call_async(Trigger.Request())
        h.spin_until(future.done, 5.0, 'the reset response')
        assert future.result().success
        h.frame(3, (5.0, -3.0))
        values = h.last_diagnostics()
        assert values['fusion_last_reset'] == 'service'
        assert int(values['fusion_resets_total']) == 2


@dataclass
class SearchingLocalizer(ScriptedLocalizer):
    """A model with a rotation search: it finds the true camera yaw (the first frame's prior
    in the crop frame plus true_offset_deg, with +-0.5 deg alternating error), clipped to
    the interval it is asked to search; records each searched half-range."""

    true_offset_deg: float = 4.0
    estimates_yaw: bool = False
    yaw_search: str = 'rotation'
    ranges: list = field(default_factory=list)
    first_prior_rad: float | None = None

    def localize(self, ground_rgb, satellite_rgb, sat_meters_per_px, *, yaw_prior_rad, K=None,
                 camera_height_m=None, use_orientation=True, use_yaw_search=True,
                 yaw_prior_range_deg=None):
        result = super().localize(ground_rgb, satellite_rgb, sat_meters_per_px,
                                  yaw_prior_rad=yaw_prior_rad, K=K)
        if not use_yaw_search:
            return result
        if self.first_prior_rad is None:
            self.first_prior_rad = float(yaw_prior_rad)
        self.ranges.append(float(yaw_prior_range_deg))
        error = 0.5 if len(self.ranges) % 2 else -0.5
        true = self.first_prior_rad + math.radians(self.true_offset_deg + error)
        half = math.radians(yaw_prior_range_deg)
        yaw = min(max(true, yaw_prior_rad - half), yaw_prior_rad + half)
        return replace(result, yaw_rad=torch.tensor([yaw]), yaw_std_rad=torch.tensor([0.02]),
                       yaw_source='rotation_search')


SEARCH = {**FILTER, 'heading_source': 'fixed', 'default_yaw_deg': 10.0,
          'default_yaw_range_deg': 20.0, 'fusion.yaw_search_every': 1}


def test_yaw_tracking_narrows_the_search_and_the_pose_carries_the_tracked_yaw(ros_isolation,
                                                                              tif):
    searching = SearchingLocalizer(offset_en_m=(0.0, 0.0))
    with FusionHarness(base_overrides(tif, **SEARCH), searching) as h:
        h.send_camera_info()
        for k in range(12):
            pose, single = h.frame(k, (5.0, -3.0))
        assert searching.ranges[0] == 20.0  # untracked: the prior's range
        assert 3.0 <= searching.ranges[-1] < 6.0
        assert all(b <= a + 1e-9 for a, b in zip(searching.ranges[1:], searching.ranges[2:],
                                                 strict=False))
        # the tracked yaw averages the +-0.5 deg errors: 14 deg, tighter than one frame
        assert math.degrees(yaw_of(pose)) == pytest.approx(14.0, abs=0.3)
        assert abs(math.degrees(yaw_of(single)) - 14.0) == pytest.approx(0.5, abs=0.05)
        assert pose.pose.covariance[35] < single.pose.covariance[35]
        values = h.last_diagnostics()
        assert values['yaw_tracking'] == 'tracking'
        assert int(values['yaw_updates_total']) == 11 and int(values['yaw_starts_total']) == 1
        assert float(values['yaw_window_deg']) == pytest.approx(searching.ranges[-1])
        # ~/reset drops the track too: the next frame searches the prior's range again
        h.spin_until(lambda: h.reset_client.service_is_ready(), 5.0, 'the reset service')
        future = h.reset_client.call_async(Trigger.Request())
        h.spin_until(future.done, 5.0, 'the reset response')
        h.frame(12, (5.0, -3.0))
        assert searching.ranges[-1] == 20.0


def test_without_yaw_tracking_every_frame_searches_the_prior_range(ros_isolation, tif):
    searching = SearchingLocalizer(offset_en_m=(0.0, 0.0))
    overrides = base_overrides(tif, **SEARCH, **{'fusion.yaw_tracking': False})
    with FusionHarness(overrides, searching) as h:
        h.send_camera_info()
        for k in range(4):
            pose, single = h.frame(k, (5.0, -3.0))
        assert searching.ranges == [20.0] * 4
        assert yaw_of(pose) == pytest.approx(yaw_of(single))
        assert 'yaw_tracking' not in h.last_diagnostics()


def test_frames_whose_searched_yaw_is_too_uncertain_are_not_fused(ros_isolation, tif):
    """The search's yaw std (1.1 deg here) above fusion.camera_max_search_yaw_std_deg: the
    heatmap (3 m east of the fixes) is not fused, the posterior stays on the fixes."""
    searching = SearchingLocalizer(offset_en_m=(3.0, 0.0), heatmap_sigma_m=0.5)
    overrides = base_overrides(tif, **SEARCH, **{'fusion.camera_max_search_yaw_std_deg': 0.5})
    with FusionHarness(overrides, searching) as h:
        h.send_camera_info()
        for k in range(5):
            pose, single = h.frame(k, (5.0, -3.0))
        assert int(h.last_diagnostics()['fusion_camera_skipped_yaw_total']) == 5
        assert pose.pose.pose.position.x == pytest.approx(5.0, abs=0.3)
        assert single.pose.pose.position.x == pytest.approx(8.0, abs=0.3)


def test_a_confident_yaw_track_searches_every_nth_frame_only(ros_isolation, tif):
    searching = SearchingLocalizer(offset_en_m=(0.0, 0.0))
    overrides = base_overrides(tif, **{**SEARCH, 'fusion.yaw_search_every': 2})
    with FusionHarness(overrides, searching) as h:
        h.send_camera_info()
        for k in range(16):
            pose, single = h.frame(k, (5.0, -3.0))
        values = h.last_diagnostics()
        unsearched = int(values.get('yaw_source_yaw_tracker_total', 0))
        assert unsearched >= 3 and unsearched + len(searching.ranges) == 16
        assert int(values['yaw_unsearched_total']) == unsearched
        # a frame at the tracked yaw publishes it with the track's predicted spread
        assert math.degrees(yaw_of(pose)) == pytest.approx(14.0, abs=0.5)


def test_single_frame_covariance_follows_the_innovations(ros_isolation, tif):
    """A model stating 25 m^2 for frames that agree with the belief to within a metre:
    after min_frames innovations pose_single's covariance shrinks by the fitted scale;
    with fusion.single_covariance_adapt false it stays the calibration's."""
    for adapt in ('auto', 'false'):  # the harness camera is pinhole: auto = true
        scripted = ScriptedLocalizer(offset_en_m=(0.0, 0.0), heatmap_sigma_m=1.0,
                                     covariance_en_m2=np.eye(2) * 25.0)
        overrides = base_overrides(tif, **{**FILTER, 'fusion.single_covariance_adapt': adapt,
                                           'fusion.single_covariance_gate': 'false'})
        with FusionHarness(overrides, scripted) as h:
            h.send_camera_info()
            for k in range(34):
                pose, single = h.frame(k, (5.0, -3.0))
            scale = float(h.last_diagnostics()['single_covariance_scale'])
            if adapt == 'auto':
                assert scale < 0.3
                assert single.pose.covariance[0] == pytest.approx(25.0 * scale, rel=0.05)
            else:
                assert scale == 1.0 and single.pose.covariance[0] == pytest.approx(25.0, rel=0.05)


def test_a_frame_that_disagrees_with_the_belief_publishes_a_widened_covariance(ros_isolation,
                                                                               tif):
    """Ten frames agree with the fixes; the eleventh sees itself 10 m east with 0.5 m^2.
    Gating (fusion.single_covariance_gate 'auto' where the innovation scale is off): frames
    within the gate publish 0.5 x the inlier scale (0.5 by default); the eleventh is beyond
    the 99% gate against the belief, so pose_single keeps its position but its covariance is
    widened until the innovation's NIS is 2 (about 10^2 / 2 = 50 m^2 less the belief's own
    variance). Without gating ('false'; or 'auto' while the innovation scale adapts, as for
    this pinhole camera by default) nothing is gated."""
    cases = {('false', 'auto'): True, ('false', 'false'): False, ('auto', 'auto'): False}
    for (adapt, gate), gating in cases.items():
        scripted = ScriptedLocalizer(offset_en_m=(0.0, 0.0), heatmap_sigma_m=1.0,
                                     covariance_en_m2=np.eye(2) * 0.5)
        overrides = base_overrides(tif, **{**FILTER, 'fusion.single_covariance_adapt': adapt,
                                           'fusion.single_covariance_gate': gate})
        with FusionHarness(overrides, scripted) as h:
            h.send_camera_info()
            for k in range(10):
                _, single = h.frame(k, (5.0, -3.0))
            if adapt == 'false':  # the innovation scale (adapt) needs 30 frames to move
                expected = 0.25 if gating else 0.5
                assert single.pose.covariance[0] == pytest.approx(expected, rel=0.05)
            scripted.offset_en_m = (10.0, 0.0)
            pose, single = h.frame(10, (5.0, -3.0))
            diagnostics = h.last_diagnostics()
            east_of_fused = single.pose.pose.position.x - pose.pose.pose.position.x
            assert east_of_fused > 8.0  # the frame's own position is published as it is
            gated = int(diagnostics['single_covariance_gated_total'])
            if gating:
                assert gated == 1
                assert 35.0 < single.pose.covariance[0] < 50.0
                assert single.pose.covariance[7] == pytest.approx(
                    single.pose.covariance[0], rel=0.05)
            else:
                assert gated == 0
                assert single.pose.covariance[0] == pytest.approx(0.5, rel=0.05)


def test_frames_are_held_out_while_the_track_disagrees_with_the_priors(ros_isolation, tif):
    """The search finds 14 deg against a prior of 10 deg: once fusion.yaw_prior_check_s
    holds 20 priors, the track's mean disagreement (4 deg) exceeds
    fusion.camera_max_prior_disagreement_deg 2: those frames are not fused (counted), the
    track goes on; at the default (180) every frame is fused."""
    for limit, held_out in ((2.0, True), (180.0, False)):
        searching = SearchingLocalizer(offset_en_m=(0.0, 0.0))
        overrides = base_overrides(tif, **SEARCH,
                                   **{'fusion.camera_max_prior_disagreement_deg': limit})
        with FusionHarness(overrides, searching) as h:
            h.send_camera_info()
            for k in range(24):
                h.frame(k, (5.0, -3.0))
            values = h.last_diagnostics()
            skipped = int(values['fusion_camera_skipped_prior_total'])
            assert values['yaw_tracking'] == 'tracking'
            if held_out:
                assert 3 <= skipped <= 6, skipped
            else:
                assert skipped == 0
