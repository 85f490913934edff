"""The localizer node: camera image + GNSS fix in, pose of base_link in ``map`` out.

Topics (relative; remapped by launch/localize.launch.py):
  in   image (sensor_msgs/Image) or image/compressed (CompressedImage)  sensor data, depth 1
       camera_info (CameraInfo, pinhole cameras)                          sensor data, depth 1
       fix (NavSatFix)                                                    sensor data, depth 10
       heading_prior (geometry_msgs/QuaternionStamped, base yaw in map)   sensor data, depth 10
       gnss_velocity (TwistWithCovarianceStamped or TwistStamped; east/north m/s: the
           course over ground as the yaw prior; gnss_velocity_input)      sensor data, depth 10
       twist (TwistWithCovarianceStamped, base_frame; fusion.odometry twist) sensor, depth 50
       odom (nav_msgs/Odometry; fusion.odometry odometry)                 sensor data, depth 50
  out  pose (PoseWithCovarianceStamped): the filter's posterior    reliable, volatile, depth 10
       pose_single (PoseWithCovarianceStamped): the frame alone     reliable, volatile, depth 10
       fix_corrected (NavSatFix)                                   reliable, volatile, depth 10
       heatmap (nav_msgs/OccupancyGrid)                            reliable, transient local, 1
       /diagnostics (DiagnosticArray)                              reliable, volatile, depth 10
       /tf (tf2_msgs/TFMessage, only with publish_tf)              reliable, volatile, depth 10
  srv  ~/reset (std_srvs/Trigger): restart the filter around the next fix
       ~/change_state, ~/get_state, ... (lifecycle_msgs): the managed-node interface

A managed (lifecycle) node: configure loads parameters, model and map; activate
subscribes and enables the outputs; deactivate and cleanup release them. ``autostart``
(default true) configures and activates at start-up for users without a lifecycle
manager; ``autostart: false`` waits, unconfigured, for one (e.g. nav2_lifecycle_manager).

Only the newest image is processed. With ``busy_policy: latest`` (default) an image that
arrives while the inference worker is busy waits in a one-image slot (a newer one replaces
it; the replaced one is dropped and counted) and is localized next: the output rate follows
the camera as long as the mean processing time fits the frame period, and latency stays
below two processing times. With ``drop`` it is dropped and counted (latency one processing
time). Latency never accumulates. Fixes are cached and each image
is paired with the fix at its own stamp. Bad input never stops the node: it is counted in
/diagnostics and named in a throttled warning. Sequence fusion (fusion.mode, default
'filter'): a grid Bayes filter (geodistill_core.filtering, adapter fusion_adapter) fuses
each frame's calibrated heatmap, every fix and the odometry; ``pose`` already contains the
GNSS, so do not feed the same fix to robot_localization again (or use fusion.mode 'none').
robot_localization: pose0_config [true, true, false, false, false, true, false x9] (x, y,
yaw), smooth_lagged_data: true.
"""
from __future__ import annotations

import threading
import time

from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from geodistill_ros.node.camera_info import (
    CameraInfoError,
    camera_info_to_pinhole,
    describe_calibration,
)
from geodistill_ros.node.config import check_map_source_options, config_from_values
from geodistill_ros.node.diagnostics import NodeStats
from geodistill_ros.node.fix_buffer import FixBuffer
from geodistill_ros.node.fusion_adapter import NodeFusion
from geodistill_ros.node.heading import (
    HeadingSample,
    VelocityHeading,
    next_velocity_heading,
    velocity_heading_from_msg,
)
from geodistill_ros.node.messages import (
    QuaternionError,
    navsatfix_to_fix,
    stamp_to_ns,
    yaw_from_quaternion,
)
from geodistill_ros.node.model_loading import (
    check_camera_model,
    crop_resolution_note,
    load_localizer,
    resolve_device,
)
from geodistill_ros.node.params import (
    BUILTIN_PARAMETERS,
    ParameterError,
    check_value,
    declare_parameters,
    start_up_error,
    unknown_parameters,
)
from geodistill_ros.node.pipeline import Frame, LocalizationPipeline, Rejected
from geodistill_ros.node.topics import NodeIo
from geodistill_ros.satellite import make_source

NODE_NAME = 'geodistill_localizer'


class LocalizerNode(LifecycleNode):
    """Managed (lifecycle) rclpy node around a Localizer and a satellite map source.

    Lifecycle, as Nav2's localization nodes: parameters are declared (and each value
    checked) at construction; ``configure`` builds the configuration, loads the model and
    the map and warms up; ``activate`` subscribes and enables the outputs; ``deactivate``
    unsubscribes (the frame in flight finishes first) and disables the outputs;
    ``cleanup`` releases model, map and publishers; ``shutdown`` releases everything from
    any state. ``autostart`` (default true) configures and activates in the constructor,
    raising the configure error, as a node without lifecycle did.

    localizer, map_source: inject ready objects (tests, offline tools); they are reused at
    every configure. By default both are built from the parameters at configure and
    released at cleanup. Other keyword arguments go to rclpy's Node.
    """

    def __init__(self, localizer=None, map_source=None, node_name: str = NODE_NAME,
                 **kwargs):
        super().__init__(node_name, **kwargs)
        self._given = (localizer, map_source)
        self._job = None
        self._busy = False
        self._stopping = False
        self._job_ready = threading.Condition()
        self._worker = None
        self._autostarting = False
        self._configure_error: Exception | None = None
        self.config = self.localizer = self.map_source = self.io = self.fusion = None
        self.stats = NodeStats()
        self._warned_at: dict[str, float] = {}
        try:
            overrides = {name: p.value for name, p in self._parameter_overrides.items()}
            self._values = declare_parameters(self, overrides)
            for name in unknown_parameters(overrides):
                self.get_logger().warning(f'parameter {name!r} is not used by this node '
                                          '(typo in the params file?)')
            self.add_on_set_parameters_callback(self._validate_parameters)
            self.add_post_set_parameters_callback(self._apply_parameters)
            if self._values['autostart']:
                self._autostart()
        except BaseException:
            self.destroy_node()
            raise

    def _autostart(self) -> None:
        """configure + activate now; a configure failure raises its error."""
        self._autostarting = True
        try:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise self._configure_error or RuntimeError('configure failed')
            if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                raise RuntimeError('activate failed')
        finally:
            self._autostarting = False

    # --- lifecycle transitions ----------------------------------------------------------------

    def on_configure(self, state) -> TransitionCallbackReturn:
        """Parameters -> config; model and map loaded, warmed up; outputs created inactive."""
        self._configure_error = None
        try:
            self._configure()
        except Exception as err:
            self._configure_error = err
            self._release()
            if not self._autostarting:  # autostart: the caller reports it (one line)
                self.get_logger().error(f'cannot configure: {start_up_error(err)}')
            return TransitionCallbackReturn.FAILURE
        if not self._autostarting:
            self.get_logger().info('configured (inactive): activate to start localizing')
        return super().on_configure(state)

    def on_activate(self, state) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # the lifecycle publishers first
        self.io.activate()
        self.get_logger().info(self._ready_line)
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_input()
        self.get_logger().info('deactivated: inputs unsubscribed, outputs stopped')
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info('cleaned up: model, map and publishers released')
        return super().on_cleanup(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop_input()
        self._release()
        return super().on_shutdown(state)

    def on_error(self, state) -> TransitionCallbackReturn:
        self._stop_input()
        self._release()
        return super().on_error(state)

    def _configure(self) -> None:
        self.config = config_from_values(self._values)
        cfg = self.config
        self._warned_at = {}
        self._fix_lock = threading.Lock()
        self._fixes = FixBuffer()
        self._datum = cfg.datum
        self._calibration = None
        self._calibration_stamp_ns = 0
        self._calibration_error = ''
        self._heading: HeadingSample | None = None
        self._velocity_heading: VelocityHeading | None = None
        self.fusion = NodeFusion(cfg)
        localizer, map_source = self._given
        if map_source is None:
            check_map_source_options(cfg)
            map_source = make_source(cfg.map_source_kind, **cfg.map_source_options)
        self.map_source = map_source
        if localizer is None:
            device, fallback = resolve_device(cfg.device)
            if fallback:
                self.get_logger().warning(fallback)
            localizer = load_localizer(cfg, device, self.get_logger().warning)
        else:
            check_camera_model(localizer, cfg.camera_model)
        self.localizer = localizer
        note = crop_resolution_note(localizer, cfg.crop_size_m)
        if note:
            self.get_logger().warning(note)
        self.pipeline = LocalizationPipeline(self)
        started = time.perf_counter()
        if hasattr(localizer, 'warmup'):
            localizer.warmup()
        warmup_ms = (time.perf_counter() - started) * 1e3
        self.io = NodeIo(self)
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name='geodistill_inference',
                                        daemon=True)
        self._worker.start()
        datum = ('from the first fix' if self._datum is None else
                 f'({self._datum.lat_deg:.7f}, {self._datum.lon_deg:.7f}, '
                 f'{self._datum.alt_m:.2f} m)')
        self._ready_line = (
            f'ready: {cfg.camera_model} camera on {self.io.image_topic}, model on '
            f'{getattr(localizer, "device", "?")} ({cfg.precision}, warm-up '
            f'{warmup_ms:.0f} ms), map {self.map_source.describe()}, datum {datum}, '
            f'outputs in {cfg.map_frame!r}')

    def _stop_input(self, timeout_s: float = 10.0) -> None:
        """Unsubscribe, drop a frame not yet started and wait for the one in flight."""
        if self.io is not None:
            self.io.deactivate()
        deadline = time.monotonic() + timeout_s
        with self._job_ready:
            if self._job is not None:
                self._job, self._busy = None, False
            while self._busy and time.monotonic() < deadline:
                self._job_ready.wait(timeout=max(deadline - time.monotonic(), 0.0))

    def _release(self) -> None:
        """Stop the worker; release outputs, model and map (injected ones are kept)."""
        with self._job_ready:
            self._stopping = True
            self._job_ready.notify_all()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=10.0)
        self._worker = None
        if self.io is not None:
            self.io.destroy()
        given_localizer, given_map_source = self._given
        if self.map_source is not None and self.map_source is not given_map_source:
            self.map_source.close()
        self.io = self.map_source = self.localizer = self.pipeline = self.fusion = None
        self.config = None

    # --- parameters -------------------------------------------------------------------------

    def _validate_parameters(self, params) -> SetParametersResult:
        values = dict(self._values)
        for param in params:
            if param.name in BUILTIN_PARAMETERS:
                continue
            reason = check_value(param.name, param.value)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
            values[param.name] = param.value
        if self.config is None:  # unconfigured: the whole set is checked at configure
            return SetParametersResult(successful=True)
        try:
            config_from_values(values)
        except ParameterError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params) -> None:
        for param in params:
            if param.name not in BUILTIN_PARAMETERS:
                self._values[param.name] = param.value
        if self.config is None:
            return
        self.config = config_from_values(self._values)
        if any(p.name.startswith('fusion.') for p in params):
            self.fusion = NodeFusion(self.config)  # new settings: a new belief
            self.get_logger().info(f'fusion parameters changed: filter restarted '
                                   f'({self.config.fusion_mode})')

    # --- warnings ---------------------------------------------------------------------------

    def warn_throttled(self, key: str, message: str) -> None:
        """One warning per ``key`` per warning_throttle_s (wall clock)."""
        now = time.monotonic()
        last = self._warned_at.get(key)
        if last is None or now - last >= self.config.warning_throttle_s:
            self._warned_at[key] = now
            self.get_logger().warning(message)

    # --- input callbacks (executor thread) --------------------------------------------------

    def on_fix(self, msg) -> None:
        self.stats.received('fix')
        fix = navsatfix_to_fix(msg)
        with self._fix_lock:
            resets = self._fixes.resets
            rejection = self._fixes.insert(fix)
            if self._fixes.resets != resets:
                self.stats.time_jump()
                self.get_logger().info('fix stamps jumped back (bag loop?): fix cache cleared')
        if rejection is not None:
            self.stats.fix_rejected(rejection.value)
            self.warn_throttled(
                f'fix_{rejection.value}',
                f'NavSatFix on {self.io.fix_topic} rejected ({rejection.value}): lat='
                f'{fix.lat_deg}, lon={fix.lon_deg}, status={fix.status}; check the GNSS '
                'receiver/driver (images need a valid fix within max_fix_age_s)')
            return
        if self._datum is None and self.config.datum_from_first_fix:
            from geodistill_core.geodesy import LocalEnu
            alt = fix.alt_m if fix.alt_m == fix.alt_m else 0.0
            self._datum = LocalEnu(fix.lat_deg, fix.lon_deg, alt)
            self.get_logger().info(f'map datum from the first fix: ({fix.lat_deg:.7f}, '
                                   f'{fix.lon_deg:.7f}, {alt:.2f} m)')
            self.fusion.reset('map_change')
        self.fusion.add_fix(fix, self._datum)

    def on_twist(self, msg) -> None:
        """geometry_msgs/TwistWithCovarianceStamped in base_frame (fusion.odometry twist)."""
        self.stats.received('twist')
        self._odometry_result(self.fusion.add_twist_msg(stamp_to_ns(msg.header.stamp), msg),
                              msg.header.frame_id)

    def on_odometry(self, msg) -> None:
        """nav_msgs/Odometry, twist in child_frame_id = base_frame (fusion.odometry)."""
        self.stats.received('odometry')
        self._odometry_result(self.fusion.add_odometry_msg(stamp_to_ns(msg.header.stamp),
                                                           msg), msg.child_frame_id)

    def _odometry_result(self, rejection: str | None, frame_id: str) -> None:
        if rejection is None:
            return
        advice = {'wrong_frame': f'the twist is in {frame_id!r}, not base_frame '
                                 f'{self.config.base_frame!r} (REP-105)',
                  'non_finite': 'it holds NaN/inf', 'negative_variance':
                  'its covariance has a negative variance',
                  'stamp_not_increasing': 'its stamp is not after the previous one'}
        self.warn_throttled(f'odometry_{rejection}', f'odometry sample rejected, not fused: '
                            f'{advice.get(rejection, rejection)}; check the odometry source')

    def on_reset(self, request, response):
        """~/reset (std_srvs/Trigger): the filter restarts around the next fix."""
        if not self.fusion.active:
            response.success, response.message = False, "fusion.mode is 'none': no filter"
            return response
        self.fusion.reset('service')
        self.get_logger().info('filter reset requested (~/reset): restarting at the next fix')
        response.success, response.message = True, 'filter reset: restarts at the next fix'
        return response

    def on_camera_info(self, msg) -> None:
        self.stats.received('camera_info')
        try:
            calibration = camera_info_to_pinhole(msg, self.config.camera_info_rectified)
        except CameraInfoError as err:
            self.stats.input_rejected('camera_info', err.reason)
            self._calibration_error = str(err)
            kept = ('the last good calibration stays in use' if self._calibration is not None
                    else 'no calibration yet: images are rejected')
            self.warn_throttled(f'camera_info_{err.reason}',
                                f'CameraInfo on {self.io.camera_info_topic} rejected '
                                f'({err.reason}): {err}; {kept}')
            return
        self._calibration_stamp_ns = stamp_to_ns(msg.header.stamp)
        self._calibration, self._calibration_error = calibration, ''

    def on_gnss_velocity(self, msg) -> None:
        """geometry_msgs/TwistWithCovarianceStamped or TwistStamped: the GNSS receiver's
        east/north velocity; its course over ground is the 'velocity' yaw prior."""
        self.stats.received('gnss_velocity')
        sample = velocity_heading_from_msg(msg, self.config.gnss_velocity_min_speed_mps,
                                           self.config.gnss_velocity_sigma_mps)
        if isinstance(sample, str) and sample != 'slow':
            self.stats.input_rejected('gnss_velocity', sample)
            self.warn_throttled(f'gnss_velocity_{sample}', f'gnss_velocity rejected '
                                f'({sample}): publish finite east/north velocities (m/s, '
                                'linear.x east, linear.y north) with a non-negative covariance')
        self._velocity_heading = next_velocity_heading(self._velocity_heading, sample)

    def on_heading(self, msg) -> None:
        self.stats.received('heading_prior')
        frame = msg.header.frame_id
        if frame not in ('', self.config.map_frame):
            self.stats.input_rejected('heading_prior', 'frame')
            self.warn_throttled('heading_frame', f'heading_prior in frame {frame!r} ignored: '
                                f'publish the yaw in {self.config.map_frame!r} (0 = east, '
                                'CCW)')
            return
        try:
            yaw_rad = yaw_from_quaternion(msg.quaternion)
        except QuaternionError as err:
            self.stats.input_rejected('heading_prior', err.reason)
            self.warn_throttled(f'heading_{err.reason}', f'heading_prior rejected '
                                f'({err.reason}): {err}; publish a unit quaternion of the '
                                f'base_frame yaw in {self.config.map_frame!r} (0 = east, CCW)')
            return
        self._heading = HeadingSample(stamp_to_ns(msg.header.stamp), yaw_rad)

    def on_image(self, msg) -> None:
        received = time.perf_counter()
        self.stats.received('image')
        with self._job_ready:
            if self._busy:
                if self.config is None or self.config.busy_policy == 'drop':
                    self.stats.dropped_busy()
                    return
                if self._job is not None:  # an older image still waiting: superseded
                    self.stats.dropped_busy()
            self._busy = True
            self._job = Frame(msg, received)
            self._job_ready.notify()

    # --- state the pipeline reads -----------------------------------------------------------

    def fix_lookup(self, stamp_ns: int, max_age_s: float, track_window_s: float):
        """(lookup at stamp, lookup at stamp - track_window_s), under the cache lock."""
        with self._fix_lock:
            now = self._fixes.at(stamp_ns, max_age_s)
            then = self._fixes.at(stamp_ns - int(track_window_s * 1e9), max_age_s)
        return now, then

    @property
    def busy(self) -> bool:
        """An image is being processed (new ones are dropped)."""
        with self._job_ready:
            return self._busy

    @property
    def datum(self):
        return self._datum

    @property
    def heading(self) -> HeadingSample | None:
        return self._heading

    @property
    def velocity_heading(self) -> VelocityHeading | None:
        return self._velocity_heading

    def clear_heading(self) -> None:
        self._heading = self._velocity_heading = None

    @property
    def calibration(self):
        return self._calibration, self._calibration_error

    def calibration_in_use(self) -> str:
        """The intrinsics images are localized with, for /diagnostics."""
        if self.config.camera_model != 'pinhole':
            return f'not used ({self.config.camera_model} camera)'
        return describe_calibration(self._calibration, self._calibration_stamp_ns,
                                    self._calibration_error)

    # --- inference worker ---------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._job_ready:
                while self._job is None and not self._stopping:
                    self._job_ready.wait()
                if self._stopping:
                    return
                frame, self._job = self._job, None
            try:
                self.pipeline.process(frame)
            except Rejected as rejected:
                self.stats.rejected(rejected.reason, rejected.detail)
                self.warn_throttled(rejected.reason, rejected.message)
            except Exception as err:  # keep the node alive; report loudly
                self.stats.rejected('internal_error', repr(err))
                self.get_logger().error(f'localization failed: {type(err).__name__}: {err}',
                                        throttle_duration_sec=self.config.warning_throttle_s)
            finally:
                with self._job_ready:
                    self._busy = self._job is not None  # an image waiting in the slot
                    self._job_ready.notify_all()

    def destroy_node(self) -> None:
        self._stop_input()
        self._release()
        given_map_source = self._given[1]
        if given_map_source is not None:
            given_map_source.close()
        super().destroy_node()
        # The state machine keeps the rcl node alive (and its logger name bound to this
        # node's /rosout publisher) until garbage collection: release it now.
        self._state_machine.destroy_when_not_in_use()


def main(args=None) -> int:
    """Console script ``localizer_node``: ``--ros-args --params-file config/localize.yaml``."""
    logger = rclpy.logging.get_logger(NODE_NAME)
    try:
        try:
            rclpy.init(args=args)  # parses --params-file: a bad file fails here
            node = LocalizerNode()
        except Exception as err:  # refuse to start with the reason, no traceback wall
            logger.fatal(f'cannot start: {start_up_error(err)}')
            return 1
        try:
            rclpy.spin(node)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
