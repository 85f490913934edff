"""A drive bag (``bags.kitti2bag``) in play order, and a player that sends it over DDS.

Play order: the bag's messages by stamp (log time = header stamp in these bags); among
messages with the same stamp, images come last, so an image's camera_info, fixes and
ground truth at that stamp precede it (what a live camera driver delivers). The offline
replay and the DDS player iterate the same ``play_events`` sequence, so both give the node
the same inputs in the same order.

``BagPlayer`` (rclpy, DDS): publishes every bag message as recorded (raw CDR bytes, original
stamps), drives ``/clock`` with each message's stamp, offers ``/tf_static`` latched
(TRANSIENT_LOCAL; skipped when tf2_msgs is not installed), publishes the heading prior
derived from the OXTS attitude (``HeadingFeed``), and records the node's pose,
fix_corrected, heatmap and /diagnostics. Pacing: ``rate=None`` waits for the node's output
(its heatmap, or a rejection counted in /diagnostics) for each image before sending the
next one; a rate (1.0 = real time) sends on the drive's schedule and the node drops frames
while busy, as live.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
import importlib
import json
import logging
import math
from pathlib import Path
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import (
    PoseWithCovarianceStamped,
    QuaternionStamped,
    TwistWithCovarianceStamped,
)
from nav_msgs.msg import OccupancyGrid
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import NavSatFix

from geodistill_core.geodesy import wrap_angle_rad
from geodistill_ros.bags.kitti2bag import SIDECAR_NAME, TOPICS
from geodistill_ros.bags.messages import TYPESTORE
from geodistill_ros.node.fix_buffer import GnssFix
from geodistill_ros.node.messages import (
    navsatfix_to_fix,
    quaternion_from_yaw,
    stamp_to_ns,
    yaw_from_quaternion,
)
from geodistill_ros.node.topics import HEATMAP_QOS, POSE_QOS

LOG = logging.getLogger(__name__)

ROLE_OF_TOPIC_KEY = {'image': 'image', 'image_compressed': 'image',
                     'camera_info': 'camera_info', 'fix': 'fix_truth',
                     'fix_noisy': 'fix_input', 'tf_static': 'tf_static',
                     'ground_truth_pose': 'truth_pose', 'twist': 'odometry'}
"""kitti2bag.TOPICS key -> role in a replay."""
OUTPUT_TOPICS = {'pose': '/geodistill/pose', 'pose_single': '/geodistill/pose_single',
                 'fix_corrected': '/geodistill/fix_corrected',
                 'heatmap': '/geodistill/heatmap', 'heading_prior': '/geodistill/heading_prior',
                 'gnss_velocity': '/geodistill/gnss_velocity'}
"""Where the replay remaps the node's relative output (and heading input) topics."""


@dataclass(frozen=True)
class DriveBag:
    """A converted drive: bag folder, its sidecar (geodistill_drive.json), topic -> type."""

    path: Path
    sidecar: dict
    types: dict[str, str]

    def topic(self, role: str) -> str | None:
        """The bag topic with ``role`` ('image', 'fix_input', ...), or None."""
        for key, topic in self.sidecar.get('topics', TOPICS).items():
            if ROLE_OF_TOPIC_KEY.get(key) == role and topic in self.types:
                return topic
        return None

    def role(self, topic: str) -> str:
        return next((r for r in ROLE_OF_TOPIC_KEY.values() if self.topic(r) == topic), 'other')

    @property
    def camera_model(self) -> str:
        """'pinhole' or 'panorama' (bags of older converters: pinhole)."""
        return self.sidecar.get('camera_model', 'pinhole')


def open_drive_bag(path: str | Path) -> DriveBag:
    """Read a drive bag's sidecar and connections; errors name the file and the fix."""
    path = Path(path)
    sidecar_path = path / SIDECAR_NAME
    if not sidecar_path.is_file():
        raise FileNotFoundError(f'{sidecar_path} is missing: replay needs a bag written by '
                                'geodistill-kitti2bag (it records the datum and camera mount)')
    sidecar = json.loads(sidecar_path.read_text())
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
    bag = DriveBag(path, sidecar, types)
    for role in ('image', 'camera_info', 'fix_input', 'truth_pose'):
        if bag.topic(role) is None:
            raise ValueError(f'{path} has no {role} topic (topics: {sorted(types)}); convert '
                             'the drive again with geodistill-kitti2bag')
    return bag


@dataclass(frozen=True, eq=False)
class BagEvent:
    """One bag message: header stamp (ns), topic, type, role, CDR bytes, decoded message."""

    stamp_ns: int
    topic: str
    msgtype: str
    role: str
    raw: bytes
    msg: object


def _event(bag: DriveBag, reader, conn, log_ns: int, raw) -> BagEvent:
    role = bag.role(conn.topic)
    msg = reader.deserialize(raw, conn.msgtype)
    header = getattr(msg, 'header', None)
    stamp = stamp_to_ns(header.stamp) if header is not None else int(log_ns)
    return BagEvent(stamp, conn.topic, conn.msgtype, role, bytes(raw), msg)


def play_events(bag: DriveBag, max_frames: int | None = None) -> Iterator[BagEvent]:
    """The bag in play order (module doc), ending with the ``max_frames``-th image."""
    images = 0
    for group in _same_time_groups(bag):
        for event in sorted(group, key=lambda e: e.role == 'image'):
            yield event
            if event.role == 'image':
                images += 1
                if max_frames is not None and images >= max_frames:
                    return


def _same_time_groups(bag: DriveBag) -> Iterator[list[BagEvent]]:
    """The bag's messages, grouped by equal log time, in log-time order."""
    with AnyReader([bag.path], default_typestore=TYPESTORE) as reader:
        group, group_ns = [], None
        for conn, log_ns, raw in reader.messages():
            if group and log_ns != group_ns:
                yield group
                group = []
            group_ns = log_ns
            group.append(_event(bag, reader, conn, log_ns, raw))
        if group:
            yield group


def read_role(bag: DriveBag, role: str) -> list[BagEvent]:
    """Every message of one role, in bag order (no images: keep it to small topics)."""
    topic = bag.topic(role)
    if topic is None:
        return []
    with AnyReader([bag.path], default_typestore=TYPESTORE) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        return [_event(bag, reader, c, t, raw) for c, t, raw in reader.messages(conns)]


@dataclass(frozen=True)
class TruthTrack:
    """Ground-truth base_link poses: stamps_ns (N,), xy_m (N, 2) map ENU, yaw_rad (N,)."""

    stamps_ns: np.ndarray
    xy_m: np.ndarray
    yaw_rad: np.ndarray

    def at(self, stamps_ns) -> tuple[np.ndarray, np.ndarray]:
        """Linear interpolation at stamps_ns (M,) -> xy (M, 2), yaw (M,) (ends held)."""
        t = (np.asarray(stamps_ns, np.int64) - self.stamps_ns[0]).astype(np.float64)
        ref = (self.stamps_ns - self.stamps_ns[0]).astype(np.float64)
        xy = np.stack([np.interp(t, ref, self.xy_m[:, i]) for i in range(2)], axis=1)
        yaw = wrap_angle_rad(np.interp(t, ref, np.unwrap(self.yaw_rad)))
        return xy, np.asarray(yaw, np.float64)


def read_truth(bag: DriveBag) -> TruthTrack:
    events = read_role(bag, 'truth_pose')
    if not events:
        raise ValueError(f'{bag.path}: no ground-truth poses')
    stamps = np.array([e.stamp_ns for e in events], np.int64)
    order = np.argsort(stamps, kind='stable')
    pos = [e.msg.pose.position for e in events]
    xy = np.array([[p.x, p.y] for p in pos], np.float64)
    yaw = np.array([yaw_from_quaternion(e.msg.pose.orientation) for e in events])
    return TruthTrack(stamps[order], xy[order], yaw[order])


def read_input_fixes(bag: DriveBag) -> list[GnssFix]:
    return [navsatfix_to_fix(e.msg) for e in read_role(bag, 'fix_input')]


HEADING_SOURCES = ('oxts', 'gnss_velocity', 'none')


class HeadingFeed:
    """The heading input of a replay, from the bag's ground-truth poses, with seeded noise.

    source 'oxts': every ground-truth pose gives a heading prior (an INS: yaw + N(0,
    noise_deg^2), the k-th pose the k-th draw of default_rng(seed)); 'gnss_velocity': a GNSS
    receiver's east/north velocity (the node's gnss_velocity input), the ground truth's
    velocity between consecutive poses + N(0, velocity_noise_mps^2) per axis, stated in its
    covariance; 'none': neither (the node falls back to the fix track).
    ``yaw_for(event)`` returns the yaw exactly as the node will read it from the
    QuaternionStamped (through the quaternion), or None; ``velocity_for(event)`` the
    (east, north, sigma) m/s of a velocity message, or None.
    """

    def __init__(self, source: str = 'oxts', noise_deg: float = 0.0, seed: int = 0,
                 velocity_noise_mps: float = 0.1):
        if source not in HEADING_SOURCES:
            raise ValueError(f'heading source must be one of {HEADING_SOURCES}, got '
                             f'{source!r}')
        if not (math.isfinite(noise_deg) and noise_deg >= 0.0):
            raise ValueError(f'heading noise must be finite and >= 0 deg, got {noise_deg}')
        if not (math.isfinite(velocity_noise_mps) and velocity_noise_mps > 0.0):
            raise ValueError(f'velocity noise must be finite and > 0 m/s, got '
                             f'{velocity_noise_mps}')
        self.source, self.noise_deg, self.seed = source, float(noise_deg), int(seed)
        self.velocity_noise_mps = float(velocity_noise_mps)
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, 7]))
        self._last_truth: tuple[int, float, float] | None = None

    def yaw_for(self, event: BagEvent) -> float | None:
        if self.source != 'oxts' or event.role != 'truth_pose':
            return None
        yaw = yaw_from_quaternion(event.msg.pose.orientation)
        yaw += math.radians(self.noise_deg) * float(self._rng.standard_normal())
        return yaw_from_quaternion(quaternion_from_yaw(float(wrap_angle_rad(yaw))))

    def velocity_for(self, event: BagEvent) -> tuple[float, float, float] | None:
        if self.source != 'gnss_velocity' or event.role != 'truth_pose':
            return None
        position = event.msg.pose.position
        last, self._last_truth = self._last_truth, (event.stamp_ns, position.x, position.y)
        if last is None or not event.stamp_ns > last[0]:
            return None
        dt = (event.stamp_ns - last[0]) * 1e-9
        noise = self.velocity_noise_mps * self._rng.standard_normal(2)
        return ((position.x - last[1]) / dt + float(noise[0]),
                (position.y - last[2]) / dt + float(noise[1]), self.velocity_noise_mps)

    def describe(self) -> dict:
        out = {'source': self.source, 'noise_deg': self.noise_deg, 'seed': self.seed}
        if self.source == 'gnss_velocity':
            out['velocity_noise_mps'] = self.velocity_noise_mps
        return out


def gnss_velocity_msg(stamp, east_mps: float, north_mps: float, sigma_mps: float):
    """geometry_msgs/TwistWithCovarianceStamped of an ENU velocity (frame 'gps')."""
    msg = TwistWithCovarianceStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = 'gps'
    msg.twist.twist.linear.x, msg.twist.twist.linear.y = float(east_mps), float(north_mps)
    cov = [0.0] * 36
    cov[0] = cov[7] = sigma_mps ** 2
    msg.twist.covariance = cov
    return msg


# --- DDS player ---------------------------------------------------------------------------

def _message_class(msgtype: str):
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def _diagnostics_values(msg) -> dict:
    for status in msg.status:
        if status.name.endswith(': localization'):
            return {kv.key: kv.value for kv in status.values}
    return {}


def _total(values: dict, prefix: str) -> int:
    return sum(int(v) for k, v in values.items() if k.startswith(prefix) and k.endswith('_total'))


@dataclass
class PlayLog:
    """What a DDS play recorded. poses/fixes: stamp_ns -> (message, wall receipt s)."""

    image_stamps: list = field(default_factory=list)
    sent_at: dict = field(default_factory=dict)
    poses: dict = field(default_factory=dict)
    poses_single: dict = field(default_factory=dict)
    fixes: dict = field(default_factory=dict)
    heatmaps: dict = field(default_factory=dict)
    outcomes: dict = field(default_factory=dict)  # stamp -> output|rejected|lost|timeout|...
    resent: int = 0
    diagnostics: dict = field(default_factory=dict)
    wall_s: float = 0.0
    skipped_topics: list = field(default_factory=list)


class BagPlayer:
    """Plays play_events to a running node in ``context`` (see the module doc)."""

    def __init__(self, bag: DriveBag, context, heading: HeadingFeed,
                 resend_after_s: float = 5.0, max_attempts: int = 3):
        self.bag, self.heading = bag, heading
        self.resend_after_s, self.max_attempts = resend_after_s, max_attempts
        self.node = rclpy.create_node('geodistill_bag_player', context=context)
        self.log = PlayLog()
        self._diag_at = -math.inf
        self._alive = None
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.pubs = {}
        for topic, msgtype in bag.types.items():
            try:
                cls = _message_class(msgtype)
            except (ImportError, AttributeError):
                LOG.warning('not publishing %s: %s is not installed here (the node does not '
                            'need it)', topic, msgtype)
                self.log.skipped_topics.append(topic)
                continue
            qos = latched if bag.role(topic) == 'tf_static' else reliable
            self.pubs[topic] = self.node.create_publisher(cls, topic, qos)
        self.clock_pub = self.node.create_publisher(Clock, '/clock', reliable)
        self.heading_pub = self.node.create_publisher(
            QuaternionStamped, OUTPUT_TOPICS['heading_prior'], reliable)
        self.velocity_pub = self.node.create_publisher(
            TwistWithCovarianceStamped, OUTPUT_TOPICS['gnss_velocity'], reliable)
        self.node.create_subscription(PoseWithCovarianceStamped, OUTPUT_TOPICS['pose'],
                                      self._keep(self.log.poses), POSE_QOS)
        self.node.create_subscription(PoseWithCovarianceStamped, OUTPUT_TOPICS['pose_single'],
                                      self._keep(self.log.poses_single), POSE_QOS)
        self.node.create_subscription(NavSatFix, OUTPUT_TOPICS['fix_corrected'],
                                      self._keep(self.log.fixes), POSE_QOS)
        self.node.create_subscription(OccupancyGrid, OUTPUT_TOPICS['heatmap'],
                                      self._keep(self.log.heatmaps), HEATMAP_QOS)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                      POSE_QOS)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def _keep(self, store: dict):
        def callback(msg):
            store[stamp_to_ns(msg.header.stamp)] = (msg, time.monotonic())
        return callback

    def _on_diagnostics(self, msg) -> None:
        values = _diagnostics_values(msg)
        if values:
            self.log.diagnostics, self._diag_at = values, time.monotonic()

    def spin(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            self.executor.spin_once(timeout_sec=max(min(deadline - time.monotonic(), 0.01), 0))
            if time.monotonic() >= deadline:
                return

    def _check_alive(self) -> None:
        error = self._alive() if self._alive is not None else None
        if error:
            raise RuntimeError(error)

    def wait_for_node(self, alive, timeout_s: float) -> None:
        """Spin until the node subscribes to the inputs and offers its outputs.

        alive: callable returning an error text when the node died (else None); it is
        checked while playing too (RuntimeError with that text).
        """
        self._alive = alive
        roles = ('image', 'fix_input') if self.bag.camera_model == 'panorama' else (
            'image', 'camera_info', 'fix_input')  # the node reads camera_info for pinholes only
        inputs = [self.bag.topic(r) for r in roles]
        needed = [self.pubs[t] for t in inputs] + [self.clock_pub]
        if self.heading.source == 'oxts':
            needed.append(self.heading_pub)
        elif self.heading.source == 'gnss_velocity':
            needed.append(self.velocity_pub)
        deadline = time.monotonic() + timeout_s
        while not (all(p.get_subscription_count() > 0 for p in needed)
                   and self.node.count_publishers(OUTPUT_TOPICS['heatmap']) > 0
                   and self.log.diagnostics):
            self._check_alive()
            if time.monotonic() > deadline:
                counts = [p.get_subscription_count() for p in needed]
                raise TimeoutError(f'the node did not come up within {timeout_s:.0f} s '
                                   f'(subscribers per input: {counts})')
            self.spin(0.05)
        self.spin(0.3)  # let the remaining endpoints match

    def _publish(self, event: BagEvent) -> None:
        clock = Clock()
        clock.clock.sec, clock.clock.nanosec = divmod(event.stamp_ns, 1_000_000_000)
        self.clock_pub.publish(clock)
        if event.topic in self.pubs:
            self.pubs[event.topic].publish(event.raw)
        yaw = self.heading.yaw_for(event)
        if yaw is not None:
            msg = QuaternionStamped()
            msg.header.stamp = clock.clock
            msg.header.frame_id = 'map'
            msg.quaternion = quaternion_from_yaw(yaw)
            self.heading_pub.publish(msg)
        velocity = self.heading.velocity_for(event)
        if velocity is not None:
            self.velocity_pub.publish(gnss_velocity_msg(clock.clock, *velocity))

    def play(self, events, rate: float | None = None, frame_timeout_s: float = 60.0,
             settle_s: float = 0.01) -> PlayLog:
        """Send the events; rate None: wait for each image's outcome (module doc)."""
        log, started = self.log, time.monotonic()
        self._known = {'rejected': 0, 'dropped': 0, 'images': 0}
        first_ns = None
        for event in events:
            first_ns = event.stamp_ns if first_ns is None else first_ns
            if rate is not None:
                self.spin(started + (event.stamp_ns - first_ns) * 1e-9 / rate
                          - time.monotonic())
                self._check_alive()
            elif event.role == 'image':
                self.spin(settle_s)  # the inputs before it reach the node first
            if event.role == 'image':
                log.image_stamps.append(event.stamp_ns)
            if event.role != 'image' or rate is not None:
                if event.role == 'image':
                    log.sent_at[event.stamp_ns] = time.monotonic()
                self._publish(event)
                continue
            log.outcomes[event.stamp_ns] = self._send_and_wait(event, frame_timeout_s)
        if rate is not None:
            self._drain(frame_timeout_s)
        log.wall_s = time.monotonic() - started
        self._fresh_diagnostics(2.0)
        return log

    def _send_and_wait(self, event: BagEvent, timeout_s: float) -> str:
        what = {'dropped': 'dropped by the busy node', 'lost': 'not received by the node'}
        for attempt in range(self.max_attempts):
            outcome = self._attempt(event, timeout_s)
            if outcome not in what:
                return outcome
            if attempt + 1 < self.max_attempts:
                self.log.resent += 1
                LOG.warning('image at %.3f s %s: sending it again', event.stamp_ns * 1e-9,
                            what[outcome])
        LOG.warning('image at %.3f s %s %d times: no output for it', event.stamp_ns * 1e-9,
                    what[outcome], self.max_attempts)
        return outcome

    def _attempt(self, event: BagEvent, timeout_s: float) -> str:
        known, stamp = self._known, event.stamp_ns
        sent = self.log.sent_at[stamp] = time.monotonic()
        self._publish(event)
        known['images'] += 1
        while True:
            self.executor.spin_once(timeout_sec=0.005)
            if stamp in self.log.heatmaps or stamp in self.log.poses:
                return 'output'
            self._check_alive()
            now, diag = time.monotonic(), self.log.diagnostics
            if self._diag_at > sent:
                rejected, dropped = _total(diag, 'rejected_'), int(diag['dropped_busy_total'])
                if rejected > known['rejected']:
                    known['rejected'] = rejected
                    return 'rejected'
                if dropped > known['dropped']:
                    known['dropped'] = dropped
                    return 'dropped'
                if (now - sent > self.resend_after_s
                        and int(diag['images_total']) < known['images']):
                    known['images'] -= 1
                    return 'lost'
            if now - sent > timeout_s:
                LOG.warning('no outcome for the image at %.3f s within %.0f s', stamp * 1e-9,
                            timeout_s)
                if self._diag_at > sent:
                    known['rejected'] = _total(diag, 'rejected_')
                    known['dropped'] = int(diag['dropped_busy_total'])
                return 'timeout'

    def _drain(self, timeout_s: float) -> None:
        """After a timed play: wait until the node has accounted for every image it got."""
        deadline, last = time.monotonic() + timeout_s, time.monotonic()
        while time.monotonic() < deadline:
            self.spin(0.05)
            d = self.log.diagnostics
            if self._diag_at > last and int(d['images_total']) <= (
                    len(self.log.heatmaps) + _total(d, 'rejected_')
                    + int(d['dropped_busy_total'])):
                return
        LOG.warning('the node still had frames in flight after %.0f s', timeout_s)

    def _fresh_diagnostics(self, timeout_s: float) -> None:
        since = time.monotonic()
        deadline = since + timeout_s
        while self._diag_at <= since and time.monotonic() < deadline:
            self.spin(0.02)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
