"""The localizer node's parameters: one table of specs, descriptors, validation.

Every parameter has a default, a description, a range or a list of choices and a
read_only flag (model, device, map source and topics are fixed at start-up; thresholds,
crop and publish options can change at run time with ``ros2 param set``). The table is the
single source for ``declare_parameters`` (the node), ``config/localize.yaml`` (a test
checks every key there is declared here) and the validating set-parameters callback.

Required parameters without a sensible default (the map datum) are declared statically
typed and unset; ``config.config_from_values`` says how to set them when missing.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
import re
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.parameter import Parameter

_PYTHON_TYPES = {Parameter.Type.BOOL: bool, Parameter.Type.INTEGER: int,
                 Parameter.Type.DOUBLE: float, Parameter.Type.STRING: str}


class ParameterError(ValueError):
    """A parameter value the node cannot run with; the message names it and the fix."""


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter.

    default: the default value, or a ``Parameter.Type`` for a required parameter that is
    declared unset. choices: allowed strings. min_value/max_value: inclusive range.
    """

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    read_only: bool = False

    @property
    def type(self) -> Parameter.Type:
        if isinstance(self.default, Parameter.Type):
            return self.default
        return Parameter.Type.from_parameter_value(self.default)

    @property
    def required(self) -> bool:
        return isinstance(self.default, Parameter.Type)

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(description=self.description,
                                         read_only=self.read_only)
        if self.choices:
            descriptor.additional_constraints = 'one of: ' + ', '.join(self.choices)
        if self.min_value is not None:
            if self.type == Parameter.Type.INTEGER:
                descriptor.integer_range = [IntegerRange(
                    from_value=int(self.min_value), to_value=int(self.max_value), step=1)]
            else:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(self.min_value), to_value=float(self.max_value),
                    step=0.0)]
        return descriptor

    def check(self, value) -> str | None:
        """Why ``value`` is not acceptable for this parameter, or None when it is."""
        expected = _PYTHON_TYPES[self.type]
        if value is None:
            return None if self.required else f'{self.name} cannot be unset'
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            return (f'{self.name} must be a float: write {value}.0, not {value} (ROS 2 '
                    'parameters are typed)')
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            return (f'{self.name} must be a {expected.__name__}, got {value!r} '
                    f'({type(value).__name__})')
        if self.choices and value not in self.choices:
            return f'{self.name} must be one of {list(self.choices)}, got {value!r}'
        if expected is float and not math.isfinite(value):
            return f'{self.name} must be finite, got {value}'
        if self.min_value is not None and not self.min_value <= value <= self.max_value:
            return (f'{self.name} must be in [{self.min_value}, {self.max_value}], '
                    f'got {value}')
        return None


def _spec(name, default, description, **kwargs) -> ParamSpec:
    return ParamSpec(name, default, description, **kwargs)


PARAMETERS: tuple[ParamSpec, ...] = (
    # --- lifecycle ----------------------------------------------------------------------------
    _spec('autostart', True, 'configure and activate at start-up (true: no lifecycle manager '
          'needed); false: wait in unconfigured for ~/change_state (a lifecycle manager)',
          read_only=True),
    # --- inputs ---------------------------------------------------------------------------
    _spec('camera_model', 'pinhole', 'camera of the image topic; must match the model',
          choices=('pinhole', 'panorama'), read_only=True),
    _spec('image_transport', 'raw', "subscribe 'image' (sensor_msgs/Image, raw) or "
          "'image/compressed' (sensor_msgs/CompressedImage, jpeg/png)",
          choices=('raw', 'compressed'), read_only=True),
    _spec('max_image_pixels', 40_000_000, 'images declaring more pixels (width x height, '
          'read from the jpeg/png header before decoding) are rejected as image_decode',
          min_value=1, max_value=1_000_000_000),
    _spec('camera_info_rectified', True, 'images are rectified: intrinsics from CameraInfo '
          'P (KITTI image_02, image_proc output); false: from K'),
    # --- frames -----------------------------------------------------------------------------
    _spec('map_frame', 'map', 'frame_id of the outputs: ENU metres at the datum (REP-103)',
          read_only=True),
    _spec('base_frame', 'base_link', 'the frame whose pose is published', read_only=True),
    _spec('camera_offset.x_m', 0.0, 'camera position in base_frame, x (forward), metres',
          min_value=-100.0, max_value=100.0),
    _spec('camera_offset.y_m', 0.0, 'camera position in base_frame, y (left), metres',
          min_value=-100.0, max_value=100.0),
    _spec('camera_offset.z_m', 0.0, 'camera position in base_frame, z (up), metres; the '
          'GNSS altitude stands in for the camera height in the published z',
          min_value=-100.0, max_value=100.0),
    _spec('camera_offset.yaw_deg', 0.0, 'camera heading in base_frame (CCW from x; pinhole: '
          'optical axis, panorama: centre column)', min_value=-360.0, max_value=360.0),
    # --- datum of the map frame -------------------------------------------------------------
    _spec('datum.latitude_deg', Parameter.Type.DOUBLE, 'WGS 84 latitude of the map frame '
          'origin (required unless datum.from_first_fix)', min_value=-90.0, max_value=90.0,
          read_only=True),
    _spec('datum.longitude_deg', Parameter.Type.DOUBLE, 'WGS 84 longitude of the map frame '
          'origin (required unless datum.from_first_fix)', min_value=-180.0,
          max_value=180.0, read_only=True),
    _spec('datum.altitude_m', 0.0, 'ellipsoidal height of the map frame origin, metres',
          min_value=-1000.0, max_value=10000.0, read_only=True),
    _spec('datum.from_first_fix', False, 'place the map origin at the first valid fix '
          '(each run gets its own map frame; prefer a fixed datum)', read_only=True),
    # --- satellite map source ---------------------------------------------------------------
    _spec('map_source.kind', 'geotiff', 'satellite imagery: a GeoTIFF file or a local XYZ '
          'tile folder {z}/{x}/{y}.ext (no tile server: terms forbid bulk caching)',
          choices=('geotiff', 'xyz'), read_only=True),
    _spec('map_source.path', '', 'GeoTIFF file (kind geotiff), any projected CRS',
          read_only=True),
    _spec('map_source.root', '', 'tile folder (kind xyz)', read_only=True),
    _spec('map_source.zoom', 19, 'tile zoom level (kind xyz)', min_value=0, max_value=24,
          read_only=True),
    _spec('map_source.ext', 'png', 'tile file extension (kind xyz)',
          choices=('png', 'jpg', 'jpeg', 'webp'), read_only=True),
    _spec('map_source.tms', False, 'TMS row order (y flipped, gdal2tiles without --xyz)',
          read_only=True),
    _spec('map_source.cache_tiles', 256, 'decoded tiles kept in memory (kind xyz)',
          min_value=0, max_value=100000, read_only=True),
    _spec('crop_size_m', 50.13, 'side of the north-up satellite crop around the fix, metres',
          min_value=1.0, max_value=5000.0),
    _spec('crop_size_px', 192, 'side of the satellite crop, pixels', min_value=16,
          max_value=8192),
    # --- model ------------------------------------------------------------------------------
    _spec('location_checkpoint', '', "location model checkpoint file; '' = the default "
          'model shipped with the package (never downloaded)', read_only=True),
    _spec('orientation_checkpoint', '', "orientation model checkpoint file; '' = none or "
          "the default model's own", read_only=True),
    _spec('device', 'auto', "'auto' = CUDA when available, else CPU (logged)",
          choices=('auto', 'cuda', 'cpu'), read_only=True),
    _spec('precision', 'float32', 'inference precision (half types on CUDA only)',
          choices=('float32', 'bfloat16', 'float16'), read_only=True),
    _spec('yaw_search', 'auto', "yaw estimation by the location model itself: 'rotation' "
          '(score the BEV over yaw candidates inside the prior range, coarse to fine; yaw and '
          "its variance from the score curve; it costs 3-5x the inference), 'auto' (the "
          'rotation search except when the prior comes from the heading_prior topic, an '
          'INS whose heading the search would only blur, unless heading_prior_sigma_deg '
          "states it worse than yaw_search_auto_min_sigma_deg; 'none' where the search "
          'cannot run: '
          "the onnxruntime backend or a non-correlation model), 'none' (publish the prior's "
          "yaw) or 'model' (the Localizer default's setting: rotation for both embedded "
          "models; 'none' for a checkpoint). The yaw source is in /diagnostics (yaw_source)",
          choices=('auto', 'model', 'none', 'rotation'), read_only=True),
    _spec('backend', 'torch', "location model runtime: 'torch' (eager) or 'onnxruntime' (its "
          'ONNX export, made once into $GEODISTILL_CACHE_DIR or ~/.cache/geodistill/onnx; '
          'TensorRT/CUDA providers on a CUDA device when installed, else CPU, logged)',
          choices=('torch', 'onnxruntime'), read_only=True),
    # --- yaw prior ----------------------------------------------------------------------------
    _spec('heading_source', 'auto', "yaw prior of base_frame: 'topic' (heading_prior), "
          "'velocity' (course over ground of gnss_velocity while moving), 'track' (fix track "
          "while moving), 'fixed' (default_yaw_deg), 'auto' = first available of topic, "
          'velocity, track, fixed', choices=('auto', 'topic', 'velocity', 'track', 'fixed')),
    _spec('gnss_velocity_input', 'twist_with_covariance', "the GNSS receiver's velocity on "
          "'gnss_velocity', linear.x east and linear.y north in m/s: "
          "'twist_with_covariance' (geometry_msgs/TwistWithCovarianceStamped, e.g. ublox_gps "
          "fix_velocity), 'twist' (geometry_msgs/TwistStamped, e.g. nmea_navsat_driver vel) "
          "or 'none' (not subscribed)", choices=('twist_with_covariance', 'twist', 'none'),
          read_only=True),
    _spec('gnss_velocity_min_speed_mps', 2.0, 'below this speed the GNSS velocity gives no '
          'heading (its course is noise)', min_value=0.0, max_value=100.0),
    _spec('gnss_velocity_sigma_mps', 0.1, 'per-axis sigma of a GNSS velocity without a '
          'covariance (TwistStamped, or an all-zero covariance)', min_value=1e-4,
          max_value=100.0),
    _spec('yaw_prior_range_deg', 20.0, 'half-range (deg) of a measured heading (topic or '
          'track): the orientation search range of models that take one; when the model '
          'does not estimate yaw, the published yaw std is this / sqrt(3)',
          min_value=0.0, max_value=180.0),
    _spec('heading_prior_sigma_deg', 0.0, 'heading error (deg, 1 sigma) of the heading_prior '
          'topic, whose QuaternionStamped states none: your INS heading accuracy (0 = exact, '
          "or unknown). Stated (> 0), it is the prior's published yaw std, and a heading at "
          'least yaw_search_auto_min_sigma_deg uncertain is searched by yaw_search auto '
          'within +-fusion.yaw_window_sigmas of it (at least fusion.yaw_min_range_deg, at '
          'most yaw_prior_range_deg)', min_value=0.0, max_value=180.0),
    _spec('yaw_search_auto_min_sigma_deg', 1.5, "yaw_search 'auto' searches a measured "
          'heading (heading_prior with heading_prior_sigma_deg, or a GNSS course over ground) '
          'only when its stated std is at least this: the search itself errs by about 1 deg '
          '(median, the model cards), so a better heading is kept as it is',
          min_value=0.0, max_value=180.0),
    _spec('yaw_search_auto_max_range_deg', 45.0, "yaw_search 'auto' searches only priors "
          'whose half-range is at most this (a fix-track heading: yes; an unknown heading, '
          'default_yaw_range_deg 180: no, a full-circle search costs seconds per frame)',
          min_value=0.0, max_value=180.0),
    _spec('default_yaw_deg', 0.0, 'yaw prior of base_frame without a measured heading '
          '(0 = east, CCW, degrees)', min_value=-360.0, max_value=360.0),
    _spec('default_yaw_range_deg', 180.0, 'half-range (deg) around default_yaw_deg, as '
          'yaw_prior_range_deg (180 = unknown heading; 0 = known, e.g. north-aligned '
          'panoramas)', min_value=0.0, max_value=180.0),
    _spec('heading_max_age_s', 0.5, 'heading_prior and gnss_velocity messages older than '
          'this are ignored',
          min_value=0.0, max_value=3600.0),
    _spec('track_min_speed_mps', 1.0, 'below this speed the fix track gives no heading',
          min_value=0.0, max_value=100.0),
    _spec('track_window_s', 1.0, 'time between the two fixes giving the track heading',
          min_value=0.01, max_value=60.0),
    # --- pairing and output policy ----------------------------------------------------------
    _spec('max_fix_age_s', 0.5, 'reject images farther than this from any cached fix',
          min_value=0.0, max_value=3600.0),
    _spec('busy_policy', 'latest', "an image arriving while one is being localized: "
          "'latest' (kept in a one-image slot, replacing an older waiting one, and localized "
          "next: the rate follows the camera while the mean processing time fits the frame "
          "period; latency at most two processing times) or 'drop' (dropped: latency one "
          "processing time, fewer frames)", choices=('latest', 'drop')),
    _spec('min_confidence', 0.0, 'heatmap confidence (1 - normalised entropy) below which '
          'a result is low-confidence', min_value=0.0, max_value=1.0),
    _spec('low_confidence_policy', 'drop', "low-confidence results: 'drop' (no pose, no "
          "fix_corrected) or 'inflate' (covariances times low_confidence_inflation)",
          choices=('drop', 'inflate')),
    _spec('low_confidence_inflation', 100.0, 'covariance factor for inflated results',
          min_value=1.0, max_value=1e9),
    _spec('publish_tf', False, 'broadcast map -> base_frame on /tf (off: '
          'robot_localization owns map -> odom)', read_only=True),
    _spec('publish_heatmap', True, "publish the heatmap as nav_msgs/OccupancyGrid "
          "'heatmap'"),
    _spec('publish_fix_corrected', True, "publish the position as sensor_msgs/NavSatFix "
          "'fix_corrected'"),
    # --- sequence fusion (geodistill_core.filtering; README 'Fusing over time') --------------
    _spec('fusion.mode', 'filter', "'filter': pose = the Bayes filter's posterior (camera "
          "heatmaps + GNSS + motion); 'gnss': the filter without the camera (GNSS + motion "
          "only, a baseline); 'none': pose = the single-frame estimate (fuse it yourself, "
          "e.g. in robot_localization)", choices=('filter', 'gnss', 'none')),
    _spec('fusion.odometry', 'twist', "motion input: 'twist' (geometry_msgs/"
          "TwistWithCovarianceStamped on 'twist', base_frame), 'odometry' (nav_msgs/Odometry "
          "on 'odom', twist in child_frame_id = base_frame) or 'none' (motion from the fix "
          'track)', choices=('twist', 'odometry', 'none'), read_only=True),
    _spec('fusion.odometry_sigma_mps', 0.1, 'velocity sigma used when an odometry message '
          'has an all-zero covariance (unknown)', min_value=1e-4, max_value=100.0),
    _spec('fusion.odometry_yaw_rate_sigma_rps', 0.01, 'yaw-rate sigma used when an '
          'odometry message has an all-zero covariance', min_value=1e-5, max_value=10.0),
    _spec('fusion.cell_m', 0.5, 'filter grid cell, metres', min_value=0.05, max_value=10.0),
    _spec('fusion.window_m', 64.0, 'side of the filter window that follows the vehicle, '
          'metres (must hold the belief: a few GNSS sigmas)', min_value=4.0,
          max_value=2000.0),
    _spec('fusion.process_noise_m2_per_s', 0.05, 'position diffusion added to every '
          'prediction, m^2/s per axis', min_value=0.0, max_value=1e4),
    _spec('fusion.process_noise_full_speed_mps', 1.0, 'the process noise applies in full '
          'from this predicted speed, in proportion below (a standing vehicle does not '
          'wander); 0 = in full at any speed', min_value=0.0, max_value=100.0),
    _spec('fusion.heading_sigma_deg', 3.0, 'heading error that rotates the odometry '
          'displacement (1 sigma)', min_value=0.0, max_value=180.0),
    _spec('fusion.no_motion_sigma_mps', 5.0, 'random-walk speed sigma without odometry '
          'and without a fix track', min_value=0.0, max_value=100.0),
    _spec('fusion.track_window_s', 3.0, 'fixes used for the track velocity (no odometry)',
          min_value=0.2, max_value=60.0),
    _spec('fusion.gnss_sigma_m', 5.0, 'per-axis sigma of a fix whose covariance type is '
          'unknown', min_value=0.01, max_value=1e4),
    _spec('fusion.gnss_bias_sigma_m', 3.0, 'correlated GNSS error (multipath, atmosphere) '
          'per axis that the fix covariance does not state; 0 = fixes are white',
          min_value=0.0, max_value=1e3),
    _spec('fusion.gnss_bias_correlation_s', 60.0, 'correlation time of that error',
          min_value=0.1, max_value=1e6),
    _spec('fusion.gate_chi2', 25.0, 'fixes whose normalised innovation squared (2 dof) '
          'exceeds this are not fused (gated)', min_value=1.0, max_value=1e6),
    _spec('fusion.fix_jump_count', 20, 'that many gated fixes in a row reset the filter '
          'around the new fixes', min_value=1, max_value=100000),
    _spec('fusion.bias_excursion_chi2', 9.0, 'restart the filter around the fixes when '
          'its expected GNSS error b is implausible under the bias prior: |b|^2 / '
          'gnss_bias_sigma_m^2 above this (2 dof; 0 = off)', min_value=0.0, max_value=1e6),
    _spec('fusion.max_gap_s', 5.0, 'no frame for this long resets the filter',
          min_value=0.1, max_value=3600.0),
    _spec('fusion.min_outlier_weight', 0.02, 'uniform floor mixed into every calibrated '
          'heatmap (robustness: one wrong frame cannot capture the belief)',
          min_value=0.0, max_value=0.99),
    _spec('fusion.camera_weight', 0.25, 'exponent of each frame\'s heatmap likelihood: 1 = '
          'frames independent, below 1 = consecutive frames make correlated errors',
          min_value=0.01, max_value=1.0),
    _spec('fusion.camera_weight_distance_m', 0.8, 'frames share camera_weight per this much '
          'net predicted motion: in full from this distance between frames, in proportion '
          'below (stopped or slow vehicle, camera above 10 Hz); 0 = per frame',
          min_value=0.0, max_value=100.0),
    _spec('fusion.late_fix_max_s', 0.5, 'a fix arriving after a later frame is moved '
          'forward by the odometry and fused when at most this late', min_value=0.0,
          max_value=10.0),
    _spec('fusion.camera_max_search_yaw_std_deg', 180.0, 'frames whose rotation-search yaw '
          'std exceeds this (deg) are not fused (their heatmap was computed at an uncertain '
          'yaw); 180 = fuse every frame', min_value=0.1, max_value=180.0),
    _spec('fusion.camera_max_prior_disagreement_deg', 180.0, 'while the yaw is tracked, '
          'frames are not fused when the track disagrees with the measured yaw priors (fix '
          'track, GNSS course) on average over fusion.yaw_prior_check_s by more than this '
          '(deg): a lock on a wrong peak, not yet dropped, gives confidently wrong heatmaps; '
          '180 = fuse every frame, the default (a fixed threshold fires on right tracks under '
          'noisy fixes: README)',
          min_value=1.0, max_value=180.0),
    _spec('fusion.single_covariance_adapt', 'auto', 'scale the published single-frame '
          'covariance (pose_single) so that its innovations against the filter\'s belief '
          'have the mean NIS fusion.single_covariance_target_nis (label-free, the last 300 '
          "frames; diagnostics single_covariance_scale): 'true', 'false' (the checkpoint "
          "calibration's scale alone) or 'auto' = true for pinhole cameras only (validation "
          'drives: it brought the pinhole model into NEES [1, 3] and 88-98% coverage on all '
          'four; panorama frames are nearly as accurate as the belief, whose errors they '
          'share, and it made them overconfident)', choices=('auto', 'true', 'false')),
    _spec('fusion.single_covariance_target_nis', 1.2, 'the mean normalised innovation '
          'squared the adapted scale aims at (2 for independent Gaussian errors; consecutive '
          'frames share errors the belief has partly absorbed, so innovations understate '
          'them: 1.2 chosen on the validation drives)', min_value=0.1,
          max_value=10.0),
    _spec('fusion.single_covariance_gate', 'auto', 'gate pose_single against the filter\'s '
          'belief: a frame whose innovation NIS exceeds fusion.single_covariance_gate_nis '
          'disagrees with the fixes, odometry and earlier frames (a wrong peak its heatmap '
          'cannot tell): its covariance is widened until that NIS is 2, its position kept; '
          'frames within the gate get fusion.single_covariance_gate_inlier_scale (the '
          'calibration\'s scale also covered the wrong peaks). \'true\', \'false\' or '
          '\'auto\' = where fusion.single_covariance_adapt is off (panoramas by default; '
          'chosen on the validation drives, README). Diagnostics '
          'single_covariance_gated_total', choices=('auto', 'true', 'false')),
    _spec('fusion.single_covariance_gate_nis', 9.21, 'the gate (NIS, 2 dof; 9.21 = 99%)',
          min_value=2.5, max_value=1000.0),
    _spec('fusion.single_covariance_gate_inlier_scale', 0.5, 'factor on the single-frame '
          'covariance of frames within the gate, when gating (0.5 chosen on the panorama '
          'validation drives, with and without 3 deg of heading noise)', min_value=0.01,
          max_value=10.0),
    _spec('fusion.yaw_tracking', True, 'track the yaw over the drive (a Kalman filter on yaw '
          'and yaw rate fed by the rotation search and the odometry yaw rate): each frame '
          'searches around the predicted yaw instead of the prior\'s whole range (faster; '
          'the fused pose carries the tracked yaw); false: every frame searches the prior '
          'range. Only with fusion.mode filter or gnss and a rotation search'),
    _spec('fusion.yaw_accel_sigma_dps2', 20.0, 'white yaw acceleration of the tracked turn '
          'rate (deg/s^2): how fast the vehicle may start or stop turning',
          min_value=0.1, max_value=1000.0),
    _spec('fusion.yaw_window_sigmas', 4.0, 'search half-range = this x the predicted yaw '
          'std (clamped to [fusion.yaw_min_range_deg, the prior range])', min_value=1.0,
          max_value=20.0),
    _spec('fusion.yaw_min_range_deg', 3.0, 'smallest search half-range while tracking (deg)',
          min_value=0.5, max_value=180.0),
    _spec('fusion.yaw_gate_chi2', 10.83, 'search results whose normalised innovation '
          'squared (1 dof) exceeds this are not fused', min_value=1.0, max_value=1000.0),
    _spec('fusion.yaw_max_rejections', 3, 'that many refused search results in a row mark '
          'the track lost: it widens to the prior range around the predicted yaw (gaps, '
          'time jumps and ~/reset drop it: the next frame searches around the prior)',
          min_value=1, max_value=1000),
    _spec('fusion.yaw_prior_check_s', 5.0, 'a track whose predicted yaw disagrees with the '
          'measured yaw priors (fix track, GNSS course, heading topic) on average over this '
          'many seconds by more than fusion.yaw_max_prior_disagreement_deg is dropped (a lock '
          'on a wrong peak: a street grid 90 deg off, a road 180 deg)', min_value=0.5,
          max_value=120.0),
    _spec('fusion.yaw_max_prior_disagreement_deg', 45.0, 'see fusion.yaw_prior_check_s (one '
          'fix-track prior is tens of degrees off, its mean over seconds is not)',
          min_value=1.0, max_value=180.0),
    _spec('fusion.yaw_search_every', 2, 'while the yaw track is confident (window at '
          'fusion.yaw_min_range_deg) run the rotation search on every N-th frame only; the '
          'others are localized at the tracked yaw (yaw_source yaw_tracker): N x fewer '
          'searches', min_value=1, max_value=100),
    _spec('fusion.yaw_max_start_std_deg', 5.0, 'a track starts (or restarts after a drop) '
          'from a search result whose yaw std is at most this (deg)', min_value=0.1,
          max_value=180.0),
    _spec('diagnostics_period_s', 1.0, 'period of /diagnostics', min_value=0.05,
          max_value=60.0, read_only=True),
    _spec('warning_throttle_s', 5.0, 'minimum time between two warnings of one kind',
          min_value=0.0, max_value=3600.0),
)
"""Every parameter the node declares, in declaration order."""

SPECS: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}

BUILTIN_PARAMETERS = ('use_sim_time', 'start_type_description_service')
"""Parameters rclpy declares itself (not in the table, accepted in params files)."""


def check_value(name: str, value) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name`` (None when it is)."""
    spec = SPECS.get(name)
    if spec is None:
        return f'unknown parameter {name!r}'
    return spec.check(value)


def declare_parameters(node, overrides: dict[str, Any]) -> dict[str, Any]:
    """Declare every parameter on ``node``; returns name -> value (None when unset).

    overrides: name -> value the node was started with (params file, -p). Each is checked
    first: rclpy drops a declaration whose override breaks the descriptor without saying
    why, so the check raises ParameterError naming the parameter and the fix instead.
    """
    for spec in PARAMETERS:
        if spec.name in overrides:
            reason = spec.check(overrides[spec.name])
            if reason is not None:
                raise ParameterError(f'invalid parameter: {reason}')
        node.declare_parameter(spec.name, spec.default, spec.descriptor())
    return {spec.name: node.get_parameter_or(spec.name).value for spec in PARAMETERS}


def unknown_parameters(names) -> list[str]:
    """Names not declared by the node (typos in a params file), sorted."""
    return sorted(n for n in names if n not in SPECS and n not in BUILTIN_PARAMETERS
                  and not n.startswith('qos_overrides.'))


def start_up_error(err: Exception) -> str:
    """One line for a start-up failure; rcl's params-file errors lose their C locations."""
    if type(err).__name__ == 'RCLError':
        text = re.sub(r', at [^,]+:\d+', '', str(err)).replace('failed to initialize rcl: ', '')
        return (f'{text}; check the --params-file path and its YAML (/**: ros__parameters: '
                'name: value)')
    return f'{type(err).__name__}: {err}'
