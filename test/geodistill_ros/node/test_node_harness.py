"""Shared helpers of the node tests (imported by test_node_*.py; holds no tests itself).

- ``write_geotiff``: a small textured GeoTIFF in UTM 32N around Karlsruhe (KITTI);
- ``ScriptedLocalizer``: the Localizer interface with outputs set by the test (known
  offset, yaw, covariance, confidence, optional delay), recording every call;
- ``NodeHarness``: a LocalizerNode and a tester node in one isolated rclpy context,
  publishing inputs and collecting outputs (pose, fix_corrected, heatmap, diagnostics,
  /rosout warnings).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import threading
import time

from affine import Affine
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped, QuaternionStamped
from nav_msgs.msg import OccupancyGrid
import numpy as np
import rasterio
from rcl_interfaces.msg import Log
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, NavSatFix, NavSatStatus
import torch

from geodistill_core.geodesy import LocalEnu, geodetic_to_utm
from geodistill_core.localizer import LocalizationResult
from geodistill_ros.node.localizer_node import LocalizerNode
from geodistill_ros.node.messages import (
    ns_to_stamp,
    quaternion_from_yaw,
    rgb_to_compressed_image_msg,
    rgb_to_image_msg,
)
from geodistill_ros.node.topics import FIX_QOS, HEATMAP_QOS, IMAGE_QOS, POSE_QOS

CENTRE_LAT_DEG, CENTRE_LON_DEG = 49.0151234, 8.4298765
"""Map centre, also the datum of the tests' map frame."""
STAMP_NS = 1317046945_000000000
"""KITTI-era stamps (2011), as bag replays have."""
IMAGE_HW = (24, 48)
K_PX = np.array([[40.0, 0.0, 23.5], [0.0, 40.0, 11.5], [0.0, 0.0, 1.0]])


def write_geotiff(path, half_extent_m: float = 60.0, res_m: float = 0.5, seed: int = 0):
    """Textured 3-band uint8 GeoTIFF, EPSG:32632, centred on CENTRE; returns path."""
    east, north, epsg = geodetic_to_utm(CENTRE_LAT_DEG, CENTRE_LON_DEG, 32632)
    n_px = int(round(2 * half_extent_m / res_m))
    rgb = np.random.default_rng(seed).integers(30, 225, size=(3, n_px, n_px), dtype=np.uint8)
    transform = Affine(res_m, 0.0, float(east) - half_extent_m, 0.0, -res_m,
                       float(north) + half_extent_m)
    with rasterio.open(path, 'w', driver='GTiff', width=n_px, height=n_px, count=3,
                       dtype='uint8', crs=f'EPSG:{epsg}', transform=transform) as dst:
        dst.write(rgb)
    return path


def en_to_latlon(east_m: float, north_m: float):
    lat, lon, _ = LocalEnu(CENTRE_LAT_DEG, CENTRE_LON_DEG).to_geodetic(east_m, north_m, 0.0)
    return float(lat), float(lon)


@dataclass
class ScriptedLocalizer:
    """Localizer stand-in: returns the configured camera pose in the crop frame.

    Same interface as geodistill_core.localizer.Localizer (localize -> a batch-of-one
    LocalizationResult of torch tensors). The heatmap is a Gaussian (sigma heatmap_sigma_m)
    at offset_en_m on a north-up grid of heatmap_cells^2 cells, normalised to sum 1;
    delay_s makes inference slow; estimates_yaw=False behaves like a model without an
    orientation estimator (its yaw is the prior's).
    """

    offset_en_m: tuple = (3.0, -2.0)
    yaw_rad: float = 0.4
    yaw_std_rad: float = 0.05
    covariance_en_m2: np.ndarray = field(default_factory=lambda: np.array([[0.8, 0.1],
                                                                           [0.1, 0.5]]))
    confidence: float = 0.9
    delay_s: float = 0.0
    camera_model: str = 'pinhole'
    device: str = 'cpu'
    camera_height_m: float = 1.65
    sat_size_px: int = 64
    ground_size_hw: tuple = IMAGE_HW
    heatmap_cells: int = 33
    heatmap_cell_m: float = 1.0
    heatmap_sigma_m: float = 1.5
    estimates_yaw: bool = True
    recommended_meters_per_px: float = 0.5
    calls: list = field(default_factory=list)
    warmed_up: bool = False

    @property
    def orientation_model(self):
        return object() if self.estimates_yaw else None

    def warmup(self) -> None:
        self.warmed_up = True

    def heatmap(self) -> np.ndarray:
        n, cell = self.heatmap_cells, self.heatmap_cell_m
        centre = (n - 1) / 2.0
        rows, cols = np.mgrid[0:n, 0:n]
        east, north = (cols - centre) * cell, (centre - rows) * cell
        d2 = (east - self.offset_en_m[0]) ** 2 + (north - self.offset_en_m[1]) ** 2
        prob = np.exp(-d2 / (2.0 * self.heatmap_sigma_m ** 2))
        return prob / prob.sum()

    def localize(self, ground_rgb, satellite_rgb, sat_meters_per_px, *, yaw_prior_rad, K=None,
                 camera_height_m=None, use_orientation=True):
        self.calls.append(dict(ground_shape=ground_rgb.shape, sat_shape=satellite_rgb.shape,
                               sat_meters_per_px=sat_meters_per_px, yaw_prior_rad=yaw_prior_rad,
                               K=None if K is None else np.array(K), t=time.monotonic()))
        if self.delay_s:
            time.sleep(self.delay_s)
        yaw = self.yaw_rad if self.estimates_yaw else yaw_prior_rad

        def batch(value):
            return torch.as_tensor(np.asarray(value, np.float32))[None]

        return LocalizationResult(
            yaw_rad=batch(yaw), yaw_std_rad=batch(self.yaw_std_rad),
            offset_en_m=batch(self.offset_en_m), covariance_en_m2=batch(self.covariance_en_m2),
            confidence=batch(self.confidence), heatmap_prob=batch(self.heatmap()),
            heatmap_cell_m=self.heatmap_cell_m,
            yaw_source='orientation_model' if self.estimates_yaw else 'prior')


def base_overrides(tif_path, **extra) -> list[Parameter]:
    """The harness node's parameters. fusion.mode 'none': ``pose`` is the single-frame
    estimate, which the geometry and policy tests pin (test_node_fusion.py runs the
    filter)."""
    values = {'datum.latitude_deg': CENTRE_LAT_DEG, 'datum.longitude_deg': CENTRE_LON_DEG,
              'map_source.kind': 'geotiff', 'map_source.path': str(tif_path),
              'crop_size_m': 32.0, 'crop_size_px': 64, 'device': 'cpu',
              'diagnostics_period_s': 0.2, 'warning_throttle_s': 0.0, 'fusion.mode': 'none'}
    values.update(extra)
    return [Parameter(name, value=value) for name, value in values.items()]


def camera_info_msg(K=K_PX, hw=IMAGE_HW) -> CameraInfo:
    msg = CameraInfo(height=hw[0], width=hw[1])
    msg.header.frame_id = 'camera'
    msg.k = np.asarray(K, np.float64).ravel().tolist()
    P = np.zeros((3, 4))
    P[:, :3] = K
    msg.p = P.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    return msg


def fix_msg(stamp_ns: int, lat: float, lon: float, alt: float = 110.0,
            status: int = NavSatStatus.STATUS_FIX, var_m2: float = 4.0) -> NavSatFix:
    msg = NavSatFix()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = 'gps'
    msg.status.status = status
    msg.latitude, msg.longitude, msg.altitude = lat, lon, alt
    msg.position_covariance = [var_m2, 0.0, 0.0, 0.0, var_m2, 0.0, 0.0, 0.0, 2 * var_m2]
    msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
    return msg


def test_image(stamp_ns: int, compressed: bool = False, hw=IMAGE_HW, seed: int = 1):
    rgb = np.random.default_rng(seed).integers(0, 256, size=hw + (3,), dtype=np.uint8)
    if compressed:
        return rgb_to_compressed_image_msg(rgb, stamp_ns, 'camera', 'png')
    return rgb_to_image_msg(rgb, stamp_ns, 'camera')


test_image.__test__ = False  # a helper, not a test


class NodeHarness:
    """A LocalizerNode plus a tester node in their own context (use ``with``)."""

    def __init__(self, overrides: list[Parameter], localizer=None, compressed=False,
                 discover: bool = True):
        """discover: wait until the node subscribes (false for a node not yet active)."""
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        try:
            self.node = LocalizerNode(localizer=localizer, context=self.context,
                                      parameter_overrides=overrides)
        except BaseException:
            rclpy.shutdown(context=self.context)
            raise
        self.tester = rclpy.create_node('tester', context=self.context)
        t = self.tester
        self.image_pub = (t.create_publisher(type(test_image(0, True)), 'image/compressed',
                                             IMAGE_QOS) if compressed else
                          t.create_publisher(type(test_image(0)), 'image', IMAGE_QOS))
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.info_pub = t.create_publisher(CameraInfo, 'camera_info', reliable)
        self.fix_pub = t.create_publisher(NavSatFix, 'fix', FIX_QOS)
        self.heading_pub = t.create_publisher(QuaternionStamped, 'heading_prior', FIX_QOS)
        self.lock = threading.Lock()
        self.poses, self.fixes, self.heatmaps, self.diagnostics, self.logs = [], [], [], [], []
        t.create_subscription(PoseWithCovarianceStamped, 'pose', self._keep(self.poses),
                              POSE_QOS)
        t.create_subscription(NavSatFix, 'fix_corrected', self._keep(self.fixes), POSE_QOS)
        t.create_subscription(OccupancyGrid, 'heatmap', self._keep(self.heatmaps), HEATMAP_QOS)
        t.create_subscription(DiagnosticArray, '/diagnostics', self._keep(self.diagnostics),
                              POSE_QOS)
        t.create_subscription(Log, '/rosout', self._keep(self.logs), QoSProfile(depth=100))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(t)
        if discover:
            self.wait_for_discovery()

    def wait_for_discovery(self) -> None:
        """Spin until the node subscribes to image and fix and publishes pose."""
        self.spin_until(lambda: self.image_pub.get_subscription_count() > 0
                        and self.fix_pub.get_subscription_count() > 0
                        and self.tester.count_publishers('pose') > 0, 10.0, 'discovery')

    def _keep(self, store):
        def callback(msg):
            with self.lock:
                store.append(msg)
        return callback

    def spin_until(self, predicate, timeout_s: float, what: str = 'condition') -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f'timed out after {timeout_s} s waiting for {what}')
            self.executor.spin_once(timeout_sec=0.02)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.02)

    def send_fix(self, stamp_ns: int, lat: float, lon: float, **kwargs) -> None:
        """Publish a fix and spin until the node has handled it."""
        before = self.node.stats.count('fix')
        self.fix_pub.publish(fix_msg(stamp_ns, lat, lon, **kwargs))
        self.spin_until(lambda: self.node.stats.count('fix') > before, 5.0,
                        'the fix to arrive')

    def send_camera_info(self, **kwargs) -> None:
        self.info_pub.publish(camera_info_msg(**kwargs))
        self.spin_until(lambda: self.node.calibration[0] is not None
                        or self.node.calibration[1], 5.0, 'camera_info')

    def send_image(self, msg, wait: bool = True, timeout_s: float = 5.0) -> None:
        """Publish an image; with ``wait``, spin until the node received and processed it."""
        before = self.node.stats.count('image')
        self.image_pub.publish(msg)
        if wait:
            self.spin_until(lambda: self.node.stats.count('image') > before
                            and not self.node.busy, timeout_s, 'the image to be processed')

    def last_diagnostics(self, min_count: int = 1) -> dict:
        """Key -> value of the newest /diagnostics status, after ``min_count`` arrived."""
        target = len(self.diagnostics) + min_count
        self.spin_until(lambda: len(self.diagnostics) >= target, 5.0, '/diagnostics')
        status = self.diagnostics[-1].status[0]
        values = {kv.key: kv.value for kv in status.values}
        values['_level'] = status.level
        values['_message'] = status.message
        return values

    def warnings(self) -> list[str]:
        with self.lock:
            return [log.msg for log in self.logs if log.level >= Log.WARN
                    and log.name.endswith('geodistill_localizer')]

    def wait_warning(self, words: str, timeout_s: float = 5.0) -> str:
        """The first node warning on /rosout containing ``words`` (spins until it arrives)."""
        self.spin_until(lambda: any(words in w for w in self.warnings()), timeout_s,
                        f'a warning containing {words!r}')
        return next(w for w in self.warnings() if words in w)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self.tester.destroy_node()
        rclpy.shutdown(context=self.context)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def yaw_of(pose_msg) -> float:
    q = pose_msg.pose.pose.orientation
    return float(np.arctan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y**2 + q.z**2)))


def quaternion_stamped(stamp_ns: int, yaw_rad: float, frame: str = 'map'):
    msg = QuaternionStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame
    msg.quaternion = quaternion_from_yaw(yaw_rad)
    return msg
