"""The node's side of the sequence filter: messages in, SequenceFusion (geodistill_core)
driven, the posterior out as a PlanarPose. No rclpy import: the node and the offline
replay both use it.

Inputs (the node's callbacks, any thread; a lock guards the filter):
- ``add_fix``: every accepted NavSatFix, converted to the map frame (the fix is taken as
  base_frame's position, as the crop is); its covariance when stated, else
  ``fusion.gnss_sigma_m``;
- ``add_twist_msg`` / ``add_odometry_msg``: geometry_msgs/TwistWithCovarianceStamped in
  base_frame, nav_msgs/Odometry whose child_frame_id is base_frame (REP-105: the twist is
  in the child frame). NaN, another frame, a stamp going backwards or a negative variance
  is rejected and counted (``odometry_rejected_<reason>``), never fused;
- ``yaw_window`` / ``yaw_update``: the yaw tracker (geodistill_core YawTracker) around a
  frame's rotation search: the interval to search (around the predicted yaw, from the
  odometry's yaw rate when there is odometry), then the search's base-frame yaw;
- ``step``: one localized frame (its single-frame base pose, crop and calibrated heatmap)
  -> the posterior pose (the 2-D filter's position; the tracked yaw and its variance while
  the yaw is tracked, else the frame's); against the belief just before the frame it also
  feeds the single-frame innovation scale and gates the frame
  (``single_covariance_factor``: the factor on the published pose_single covariance).
"""
from __future__ import annotations

import math
import threading

import numpy as np

from geodistill_core.filtering import (
    CovarianceScaleConfig,
    HeatmapMeasurement,
    InnovationScale,
    SequenceFusion,
    TwistSample,
    YawTracker,
    YawWindow,
    gate_inflation,
)
from geodistill_ros.node.planar_pose import PlanarPose

ODOMETRY_REJECTIONS = ('non_finite', 'negative_variance', 'wrong_frame',
                       'stamp_not_increasing')


def _rot(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s], [s, c]])


class NodeFusion:
    """SequenceFusion for a node config (NodeConfig); inactive when fusion_mode 'none'."""

    def __init__(self, config):
        self.config = config
        self._lock = threading.Lock()
        self.fusion = SequenceFusion(config.fusion) if config.fusion_mode != 'none' else None
        self.yaw = (YawTracker(config.yaw_tracker)
                    if self.fusion is not None and config.yaw_tracker.enabled else None)
        self.odometry_rejected = {reason: 0 for reason in ODOMETRY_REJECTIONS}
        self.last_output = None
        self.last_yaw_window: YawWindow | None = None
        self.last_yaw_update = ''
        self.camera_skipped_yaw = 0
        self.camera_skipped_prior = 0
        self.single_scale = (InnovationScale(CovarianceScaleConfig(
            target_nis=config.single_covariance_target_nis))
            if self.fusion is not None and config.single_covariance_adapt else None)
        self.single_gate = 1.0  # the last frame's gate factor (inlier scale x gate_inflation)
        self.single_gated = 0

    @property
    def active(self) -> bool:
        return self.fusion is not None

    @property
    def tracks_yaw(self) -> bool:
        return self.yaw is not None

    def reset(self, reason: str) -> None:
        if self.fusion is not None:
            with self._lock:
                self.fusion.reset(reason)
                if self.yaw is not None:
                    self.yaw.reset(reason)

    # --- inputs ---------------------------------------------------------------------------
    def add_fix(self, fix, datum) -> None:
        """A GnssFix (fix_buffer) accepted by the node, with the map datum (LocalEnu)."""
        if self.fusion is None or datum is None:
            return
        alt = fix.alt_m if math.isfinite(fix.alt_m) else 0.0
        x, y, _ = datum.to_enu(fix.lat_deg, fix.lon_deg, alt)
        R = np.array(fix.covariance_enu_m2[:2, :2]) if fix.has_covariance else None
        with self._lock:
            self.fusion.add_fix(fix.stamp_ns, (float(x), float(y)), R)

    def add_twist(self, stamp_ns: int, frame_id: str, twist_with_covariance) -> str | None:
        """A geometry_msgs/TwistWithCovariance in frame_id at stamp_ns; the rejection
        reason (counted) or None."""
        if self.fusion is None:
            return None
        if frame_id != self.config.base_frame:
            return self._rejected('wrong_frame')
        twist = twist_with_covariance.twist
        cov6 = np.asarray(twist_with_covariance.covariance, np.float64).reshape(6, 6)
        cov = cov6[np.ix_((0, 1, 5), (0, 1, 5))]
        if np.isfinite(cov).all() and not cov.any():  # all zero: unknown
            cov = np.diag([self.config.odometry_sigma_mps ** 2] * 2
                          + [self.config.odometry_yaw_rate_sigma_rps ** 2])
        sample = TwistSample(int(stamp_ns), float(twist.linear.x), float(twist.linear.y),
                             float(twist.angular.z), cov)
        with self._lock:
            problem = self.fusion.add_twist(sample)
        return None if problem is None else self._rejected(problem)

    def add_twist_msg(self, stamp_ns: int, msg) -> str | None:
        """geometry_msgs/TwistWithCovarianceStamped."""
        return self.add_twist(stamp_ns, msg.header.frame_id, msg.twist)

    def add_odometry_msg(self, stamp_ns: int, msg) -> str | None:
        """nav_msgs/Odometry: the twist is in child_frame_id (REP-105)."""
        return self.add_twist(stamp_ns, msg.child_frame_id, msg.twist)

    def _rejected(self, reason: str) -> str:
        self.odometry_rejected[reason] = self.odometry_rejected.get(reason, 0) + 1
        return reason

    # --- a frame --------------------------------------------------------------------------
    def yaw_window(self, stamp_ns: int, prior_yaw_rad: float, prior_range_deg: float
                   ) -> YawWindow:
        """The rotation search's interval (base_frame yaw in map) for a frame: the prior's
        while the yaw is not tracked, else around the predicted yaw."""
        if self.yaw is None:
            return YawWindow(float(prior_yaw_rad), float(prior_range_deg), False)
        with self._lock:
            change = None
            last = self.yaw.last_update_ns
            if last is not None and stamp_ns > last:
                change = self.fusion.odometry_yaw_change(last, stamp_ns)
            window = self.yaw.window(stamp_ns, prior_yaw_rad, prior_range_deg, change)
        self.last_yaw_window = window
        return window

    def yaw_search_due(self, window: YawWindow) -> bool:
        """Whether this frame runs the rotation search (else it takes the tracked yaw)."""
        if self.yaw is None:
            return True
        with self._lock:
            return self.yaw.search_due(window)

    def yaw_update(self, stamp_ns: int, window: YawWindow, yaw_rad: float,
                   var_yaw_rad2: float) -> str:
        """The search's base_frame yaw and variance for the frame of ``window``."""
        if self.yaw is None:
            return 'disabled'
        with self._lock:
            self.last_yaw_update = self.yaw.update(stamp_ns, window, yaw_rad, var_yaw_rad2)
        return self.last_yaw_update

    def step(self, stamp_ns: int, single: PlanarPose, crop, result: dict | None,
             camera_offset) -> PlanarPose | None:
        """The posterior at the frame (None before the first fix, or when inactive).

        single: the frame's base pose (yaw used for motion and published with the
        posterior). result: the Localizer result (calibrated heatmap) or None to fuse no
        camera information this frame (low confidence dropped, fusion.mode 'gnss'); a
        rotation-search result whose yaw std exceeds fusion.camera_max_search_yaw_std_deg
        is not fused either (counted: fusion_camera_skipped_yaw_total).
        """
        if self.fusion is None:
            return None
        heatmap = None
        max_std = math.radians(self.config.camera_max_search_yaw_std_deg)
        if (result is not None and result.get('yaw_source') == 'rotation_search'
                and single.var_yaw_rad2 > max_std ** 2):
            # the search could not pin the yaw: a heatmap at a yaw tens of degrees off is
            # confidently wrong, and a run of them would pull the belief away
            result = None
            self.camera_skipped_yaw += 1
        if result is not None and self.yaw is not None:
            with self._lock:
                disagreement = self.yaw.prior_disagreement_deg()
            if (disagreement is not None
                    and disagreement > self.config.camera_max_prior_disagreement_deg):
                # the tracked yaw sits far from what the measured priors say on average: a
                # lock on a wrong peak whose heatmaps would pull the belief along
                result = None
                self.camera_skipped_prior += 1
        if result is not None:
            lever = _rot(single.yaw_rad) @ np.array([camera_offset.x_m, camera_offset.y_m])
            heatmap = HeatmapMeasurement(
                np.asarray(result['heatmap_prob'], np.float64),
                float(result['heatmap_cell_m']),
                np.array([crop.centre_x_map_m, crop.centre_y_map_m]),
                float(crop.map_from_crop_yaw_rad), (float(lever[0]), float(lever[1])),
                float(result.get('heatmap_floor_prob', 0.0)))
        with self._lock:
            tracked = self.yaw.estimate() if self.yaw is not None else None
            yaw, var_yaw = tracked if tracked is not None else (single.yaw_rad,
                                                                single.var_yaw_rad2)
            gating = self.config.single_covariance_gate
            out = self.fusion.step(stamp_ns, yaw, heatmap,
                                   self.single_scale is not None or gating)
            before = None if out is None else out.belief_before_camera
            # a frame without a belief to check it against (the first after a reset, or one
            # whose heatmap was not fused) keeps the calibration's covariance, which covers
            # right and wrong peaks alike
            self.single_gate = 1.0
            if before is not None:
                cov = single.cov_xy_m2
                if self.single_scale is not None:
                    self.single_scale.add((single.x_m, single.y_m), cov, before.mean_xy_m,
                                          before.cov_xy_m2)
                    cov = cov * self.single_scale.scale()
                if gating:
                    inlier = self.config.single_covariance_gate_inlier_scale
                    nu = np.array([single.x_m, single.y_m]) - before.mean_xy_m
                    self.single_gate = inlier * gate_inflation(
                        nu, inlier * cov, before.cov_xy_m2,
                        self.config.single_covariance_gate_nis)
                    self.single_gated += self.single_gate > inlier
        self.last_output = out
        if out is None:
            return None
        return PlanarPose(float(out.mean_xy_m[0]), float(out.mean_xy_m[1]), yaw,
                          np.array(out.cov_xy_m2), var_yaw)

    def single_covariance_scale(self) -> float:
        """The deployment's scale of the single-frame covariance (1 without the filter or
        while too few innovations are in)."""
        with self._lock:
            return self.single_covariance_scale_locked()

    def single_covariance_factor(self) -> float:
        """The factor on the last frame's published single-frame covariance: the
        deployment's scale times the frame's gate factor (fusion.single_covariance_gate: the
        inlier scale, times the widening of a gated frame)."""
        with self._lock:
            return self.single_covariance_scale_locked() * self.single_gate

    def single_covariance_scale_locked(self) -> float:
        """single_covariance_scale with the lock already held."""
        return 1.0 if self.single_scale is None else self.single_scale.scale()

    def diagnostics(self) -> dict:
        """Key -> value for /diagnostics (filter state, gating, innovations, odometry)."""
        if self.fusion is None:
            return {'fusion': 'none'}
        with self._lock:
            stats = self.fusion.stats
            values = {'fusion': self.config.fusion_mode,
                      'fusion_last_reset': stats.last_reset,
                      'fusion_camera_skipped_yaw_total': self.camera_skipped_yaw,
                      'fusion_camera_skipped_prior_total': self.camera_skipped_prior,
                      'single_covariance_scale': self.single_covariance_scale_locked(),
                      'single_covariance_gated_total': self.single_gated,
                      'single_covariance_innovations': (
                          0 if self.single_scale is None else self.single_scale.frames),
                      'fusion_gnss_nis_mean': stats.nis_mean(),
                      **{f'fusion_{k}_total': v for k, v in stats.counters.items()},
                      **{f'odometry_rejected_{k}_total': v
                         for k, v in self.odometry_rejected.items()}}
            out = self.last_output
            if self.yaw is not None:
                window = self.last_yaw_window
                values.update({
                    'yaw_tracking': 'tracking' if self.yaw.tracking else 'searching_prior',
                    'yaw_window_deg': math.nan if window is None else window.range_deg,
                    'yaw_last_update': self.last_yaw_update or 'none',
                    'yaw_last_drop': self.yaw.stats.last_drop,
                    **{f'yaw_{k}_total': v for k, v in self.yaw.stats.counters.items()}})
        if out is not None:
            values.update({'fusion_motion': out.motion,
                           'fusion_sigma_m': float(math.sqrt(max(np.trace(out.cov_xy_m2),
                                                                 0.0) / 2.0)),
                           'fusion_gnss_bias_m': float(np.hypot(*out.gnss_bias_xy_m)),
                           'fusion_camera_outlier_prob': (
                               math.nan if out.camera_outlier_prob is None
                               else out.camera_outlier_prob),
                           'fusion_camera_weight': (math.nan if out.camera_weight is None
                                                    else out.camera_weight)})
        return values
