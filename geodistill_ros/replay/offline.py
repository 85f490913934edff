"""The replay without DDS: the node's own LocalizationPipeline, FixBuffer pairing and
Localizer in this process, every image processed at once (deterministic). The paced DDS
replay (replay.dds) processes the same frames, so their metrics agree."""
from __future__ import annotations

from dataclasses import replace
import logging
import math
import time
from types import SimpleNamespace

import numpy as np

from geodistill_core.geodesy import LocalEnu
from geodistill_ros.bags import player as bp
from geodistill_ros.node.camera_info import camera_info_to_pinhole
from geodistill_ros.node.config import config_from_values
from geodistill_ros.node.diagnostics import NodeStats
from geodistill_ros.node.fix_buffer import FixBuffer
from geodistill_ros.node.fusion_adapter import NodeFusion
from geodistill_ros.node.heading import (
    HeadingSample,
    next_velocity_heading,
    velocity_heading,
)
from geodistill_ros.node.messages import navsatfix_to_fix
from geodistill_ros.node.model_loading import load_localizer, resolve_device
from geodistill_ros.node.pipeline import Frame, LocalizationPipeline, Rejected
from geodistill_ros.replay.records import FrameOutput, ReplayConfig, RunOutcome
from geodistill_ros.satellite import make_source

LOG = logging.getLogger('geodistill_ros.replay.evaluate')


class _OfflineNode:
    """What LocalizationPipeline reads from a LocalizerNode, without rclpy; inputs are fed
    as LocalizerNode's callbacks handle them, and each image is processed at once."""

    def __init__(self, config, localizer, map_source, frame_hook=None):
        self.config, self.localizer, self.map_source = config, localizer, map_source
        self.stats, self._fixes, self.datum = NodeStats(), FixBuffer(), config.datum
        self._calibration, self.heading, self.outputs = (None, ''), None, {}
        self.velocity_heading = None
        self.single_outputs: dict = {}
        self.fusion = NodeFusion(config)
        self.frame_hook = frame_hook
        self.io = SimpleNamespace(image_topic='image', camera_info_topic='camera_info',
                                  publish=self._record)
        self.pipeline = LocalizationPipeline(self)

    def get_logger(self):
        return LOG

    def warn_throttled(self, key: str, message: str) -> None:
        LOG.debug('%s: %s', key, message)

    def fix_lookup(self, stamp_ns: int, max_age_s: float, track_window_s: float):
        return (self._fixes.at(stamp_ns, max_age_s),
                self._fixes.at(stamp_ns - int(track_window_s * 1e9), max_age_s))

    def clear_heading(self) -> None:
        self.heading = self.velocity_heading = None

    @property
    def calibration(self):
        return self._calibration

    def _record(self, stamp_ns, pose, single, z_m, fix, crop, result) -> None:
        for store, planar in ((self.outputs, pose), (self.single_outputs, single)):
            if planar is not None:
                store[stamp_ns] = FrameOutput(stamp_ns, (planar.x_m, planar.y_m),
                                              planar.yaw_rad, np.array(planar.cov_xy_m2),
                                              float(result['confidence']))
        if self.frame_hook is not None:
            self.frame_hook(stamp_ns, single, fix, crop, result)

    def handle(self, event: bp.BagEvent, heading_yaw: float | None,
               velocity: tuple[float, float, float] | None = None) -> None:
        if heading_yaw is not None:
            self.heading = HeadingSample(event.stamp_ns, heading_yaw)
        if velocity is not None:  # as LocalizerNode.on_gnss_velocity
            east, north, sigma = velocity
            cfg = self.config
            sample = velocity_heading(event.stamp_ns, east, north,
                                      [[sigma ** 2, 0.0], [0.0, sigma ** 2]],
                                      cfg.gnss_velocity_min_speed_mps,
                                      cfg.gnss_velocity_sigma_mps)
            self.velocity_heading = next_velocity_heading(self.velocity_heading, sample)
        if event.role == 'fix_input':
            fix = navsatfix_to_fix(event.msg)
            rejection = self._fixes.insert(fix)
            if rejection is not None:
                self.stats.fix_rejected(rejection.value)
            else:
                if self.datum is None and self.config.datum_from_first_fix:
                    alt = fix.alt_m if math.isfinite(fix.alt_m) else 0.0
                    self.datum = LocalEnu(fix.lat_deg, fix.lon_deg, alt)
                self.fusion.add_fix(fix, self.datum)
        elif event.role == 'odometry':
            if self.fusion.add_twist_msg(event.stamp_ns, event.msg) is not None:
                self.stats.input_rejected('odometry', 'rejected')
        elif event.role == 'camera_info':
            try:
                self._calibration = (camera_info_to_pinhole(
                    event.msg, self.config.camera_info_rectified), '')
            except ValueError as err:
                self._calibration = (None, str(err))
        elif event.role == 'image':
            started = time.perf_counter()
            try:
                self.pipeline.process(Frame(event.msg, started))
            except Rejected as rejected:
                self.stats.rejected(rejected.reason, rejected.detail)
            except Exception as err:  # as the node: count it, keep going
                self.stats.rejected('internal_error', repr(err))
                LOG.error('localization failed: %s: %s', type(err).__name__, err)
            if event.stamp_ns in self.outputs:
                self.outputs[event.stamp_ns] = replace(self.outputs[event.stamp_ns],
                                                       latency_s=time.perf_counter() - started)


def run_offline(bag: bp.DriveBag, values: dict, config: ReplayConfig,
                frame_hook=None) -> RunOutcome:
    """Every image of the bag through the pipeline; frame_hook(stamp_ns, single pose, fix,
    crop, result) sees each localized frame (train/calibrate.py collects its samples)."""
    node_config = config_from_values(values)
    device, note = resolve_device(node_config.device)
    if note:
        LOG.warning(note)
    localizer = load_localizer(node_config, device, LOG.warning)
    localizer.warmup()
    heading = bp.HeadingFeed(config.heading, config.heading_noise_deg, config.seed,
                             config.gnss_velocity_noise_mps)
    started, images = time.monotonic(), []
    with make_source(node_config.map_source_kind, **node_config.map_source_options) as source:
        node = _OfflineNode(node_config, localizer, source, frame_hook)
        for event in bp.play_events(bag, config.max_frames):
            images += [event.stamp_ns] if event.role == 'image' else []
            node.handle(event, heading.yaw_for(event), heading.velocity_for(event))
    stats = node.stats
    counts = {'images': len(images), 'outputs': len(node.outputs),
              'low_confidence': stats.totals['low_confidence'],
              'rejected': dict(stats.rejections_total), 'dropped_busy': 0, 'not_received': 0,
              'timeouts': 0, 'resent': 0}
    latency = stats.latency_percentiles_ms()
    return RunOutcome(images, node.outputs, counts,
                      {'p50': latency['p50'], 'p95': latency['p95'],
                       'fusion_p50': latency['fusion_p50'], 'fusion_p95': latency['fusion_p95']},
                      time.monotonic() - started, single_outputs=node.single_outputs,
                      fusion=node.fusion.diagnostics())
