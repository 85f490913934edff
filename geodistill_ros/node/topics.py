"""The localizer node's topics: subscriptions, publishers with explicit QoS, diagnostics.

Publishers are lifecycle publishers: they send only while the node is active.

QoS (docs ros.md): sensor inputs best effort (``qos_profile_sensor_data``; images depth 1:
only the newest matters), pose and corrected fix reliable depth 10, heatmap reliable +
transient local depth 1 (late RViz subscribers get the last one), /diagnostics reliable
depth 10. The diagnostics timer runs on the steady clock so it reports even while a bag
replay with use_sim_time is paused.
"""
from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import (
    PoseWithCovarianceStamped,
    QuaternionStamped,
    TwistStamped,
    TwistWithCovarianceStamped,
)
from nav_msgs.msg import OccupancyGrid, Odometry
import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, NavSatFix
from std_srvs.srv import Trigger

from geodistill_ros.node.diagnostics import diagnostic_status
from geodistill_ros.node.messages import (
    heatmap_to_occupancy_grid,
    navsatfix_msg,
    ns_to_stamp,
    pose_with_covariance_msg,
    quaternion_from_yaw,
)
from geodistill_ros.node.params import ParameterError


def _sensor_qos(depth: int) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=qos_profile_sensor_data.reliability,
                      durability=qos_profile_sensor_data.durability)


IMAGE_QOS = _sensor_qos(1)
CAMERA_INFO_QOS = _sensor_qos(1)
FIX_QOS = _sensor_qos(10)
ODOMETRY_QOS = _sensor_qos(50)
POSE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
HEATMAP_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
DIAGNOSTICS_QOS = POSE_QOS


class NodeIo:
    """The node's publishers, subscriptions, reset service and diagnostics timer; publishes.

    Follows the node's lifecycle: built on configure (lifecycle publishers, inactive until
    the node activates them, and ~/reset), ``activate`` creates the subscriptions and the
    diagnostics timer, ``deactivate`` destroys them, ``destroy`` releases the rest.
    """

    def __init__(self, node):
        self.node = node
        cfg = node.config
        self.image_topic = node.resolve_topic_name(
            'image' if cfg.image_transport == 'raw' else 'image/compressed')
        self.camera_info_topic = node.resolve_topic_name('camera_info')
        self.fix_topic = node.resolve_topic_name('fix')
        publish = node.create_lifecycle_publisher
        self.pose_pub = publish(PoseWithCovarianceStamped, 'pose', POSE_QOS)
        self.pose_single_pub = publish(PoseWithCovarianceStamped, 'pose_single', POSE_QOS)
        self.fix_pub = publish(NavSatFix, 'fix_corrected', POSE_QOS)
        self.heatmap_pub = publish(OccupancyGrid, 'heatmap', HEATMAP_QOS)
        self.diagnostics_pub = publish(DiagnosticArray, '/diagnostics', DIAGNOSTICS_QOS)
        self._publishers = [self.pose_pub, self.pose_single_pub, self.fix_pub,
                            self.heatmap_pub, self.diagnostics_pub]
        self.tf_pub = None
        if cfg.publish_tf:
            try:
                from tf2_msgs.msg import TFMessage
            except ImportError as err:
                raise ParameterError('publish_tf is true but tf2_msgs is not installed: '
                                     'install ros-$ROS_DISTRO-tf2-msgs or set publish_tf: '
                                     'false') from err
            self._tf_message = TFMessage
            self.tf_pub = publish(TFMessage, '/tf', POSE_QOS)
            self._publishers.append(self.tf_pub)
        self.reset_service = node.create_service(Trigger, '~/reset', node.on_reset)
        self._subscriptions = []
        self.diagnostics_timer = None

    def activate(self) -> None:
        """Subscribe to the inputs and start the diagnostics timer."""
        node, cfg = self.node, self.node.config
        subscribe = node.create_subscription
        if cfg.image_transport == 'raw':
            subs = [subscribe(Image, 'image', node.on_image, IMAGE_QOS)]
        else:
            subs = [subscribe(CompressedImage, 'image/compressed', node.on_image, IMAGE_QOS)]
        if cfg.camera_model == 'pinhole':
            subs.append(subscribe(CameraInfo, 'camera_info', node.on_camera_info,
                                  CAMERA_INFO_QOS))
        subs.append(subscribe(NavSatFix, 'fix', node.on_fix, FIX_QOS))
        subs.append(subscribe(QuaternionStamped, 'heading_prior', node.on_heading, FIX_QOS))
        if cfg.gnss_velocity_input == 'twist_with_covariance':
            subs.append(subscribe(TwistWithCovarianceStamped, 'gnss_velocity',
                                  node.on_gnss_velocity, FIX_QOS))
        elif cfg.gnss_velocity_input == 'twist':
            subs.append(subscribe(TwistStamped, 'gnss_velocity', node.on_gnss_velocity,
                                  FIX_QOS))
        if cfg.fusion_mode != 'none' and cfg.odometry_input == 'twist':
            subs.append(subscribe(TwistWithCovarianceStamped, 'twist', node.on_twist,
                                  ODOMETRY_QOS))
        elif cfg.fusion_mode != 'none' and cfg.odometry_input == 'odometry':
            subs.append(subscribe(Odometry, 'odom', node.on_odometry, ODOMETRY_QOS))
        self._subscriptions = subs
        self.diagnostics_timer = node.create_timer(
            cfg.diagnostics_period_s, self.publish_diagnostics,
            clock=Clock(clock_type=ClockType.STEADY_TIME))

    def deactivate(self) -> None:
        """Unsubscribe from every input and stop the diagnostics timer."""
        for sub in self._subscriptions:
            self.node.destroy_subscription(sub)
        self._subscriptions = []
        if self.diagnostics_timer is not None:
            self.node.destroy_timer(self.diagnostics_timer)
            self.diagnostics_timer = None

    def destroy(self) -> None:
        """Release everything: subscriptions, timer, publishers and the reset service."""
        self.deactivate()
        for pub in self._publishers:
            self.node.destroy_lifecycle_publisher(pub)
        self._publishers = []
        self.node.destroy_service(self.reset_service)

    def publish(self, stamp_ns: int, pose, single, z_m: float, fix, crop, result) -> None:
        """One frame's outputs: ``pose`` (the filter's posterior, or the single-frame pose
        with fusion.mode 'none'; None = none) with fix_corrected and TF from it,
        ``pose_single`` (None = none), and the heatmap."""
        cfg = self.node.config
        stamp = ns_to_stamp(stamp_ns)
        if pose is not None:
            self.pose_pub.publish(pose_with_covariance_msg(
                stamp, cfg.map_frame, pose.x_m, pose.y_m, z_m, pose.yaw_rad, pose.cov_xy_m2,
                pose.var_yaw_rad2))
            if cfg.publish_fix_corrected:
                self.fix_pub.publish(self._corrected_fix(stamp, pose, z_m, fix, crop))
            if self.tf_pub is not None:
                self._publish_tf(stamp, pose, z_m)
        if single is not None:
            self.pose_single_pub.publish(pose_with_covariance_msg(
                stamp, cfg.map_frame, single.x_m, single.y_m, z_m, single.yaw_rad,
                single.cov_xy_m2, single.var_yaw_rad2))
        if cfg.publish_heatmap:
            self.heatmap_pub.publish(heatmap_to_occupancy_grid(
                np.asarray(result['heatmap_prob']), float(result['heatmap_cell_m']),
                crop.centre_x_map_m, crop.centre_y_map_m, cfg.map_frame, stamp,
                yaw_rad=crop.map_from_crop_yaw_rad))

    def _corrected_fix(self, stamp, base, z_m: float, fix, crop) -> NavSatFix:
        """base_frame position as WGS 84; covariance rotated to the local ENU at the fix."""
        lat, lon, alt = self.node.datum.to_geodetic(base.x_m, base.y_m, z_m)
        angle = -crop.map_from_crop_yaw_rad
        c, s = math.cos(angle), math.sin(angle)
        R = np.array([[c, -s], [s, c]])
        cov_en = R @ base.cov_xy_m2 @ R.T
        var_up = (float(fix.covariance_enu_m2[2, 2]) if fix.has_covariance else 1e3)
        return navsatfix_msg(stamp, self.node.config.base_frame, float(lat), float(lon),
                             float(alt) if math.isfinite(fix.alt_m) else math.nan,
                             0.5 * (cov_en + cov_en.T), var_up_m2=max(var_up, 0.0))

    def _publish_tf(self, stamp, base, z_m: float) -> None:
        from geometry_msgs.msg import TransformStamped
        cfg = self.node.config
        transform = TransformStamped()
        transform.header.stamp = stamp
        transform.header.frame_id = cfg.map_frame
        transform.child_frame_id = cfg.base_frame
        t = transform.transform.translation
        t.x, t.y, t.z = base.x_m, base.y_m, z_m
        transform.transform.rotation = quaternion_from_yaw(base.yaw_rad)
        self.tf_pub.publish(self._tf_message(transforms=[transform]))

    def publish_diagnostics(self) -> None:
        node = self.node
        stats = node.stats
        window = stats.window()
        device = str(getattr(node.localizer, 'device', 'unknown'))
        extra = {'device': device, 'precision': node.config.precision,
                 'confidence': stats.last_confidence, 'fix_age_s': stats.last_fix_age_s,
                 'map_source': node.map_source.describe(),
                 'last_map_error': stats.last_map_error or 'none',
                 'last_rejection': stats.last_rejection or 'none',
                 'camera_info_in_use': node.calibration_in_use(),
                 **stats.yaw_report(), **node.fusion.diagnostics()}
        if device.startswith('cuda'):
            import torch
            extra['gpu_memory_allocated_mib'] = torch.cuda.memory_allocated(device) / 2**20
            extra['gpu_memory_reserved_mib'] = torch.cuda.memory_reserved(device) / 2**20
        status = diagnostic_status(window, f'{node.get_name()}: localization', device, extra)
        msg = DiagnosticArray()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.status = [status]
        self.diagnostics_pub.publish(msg)
