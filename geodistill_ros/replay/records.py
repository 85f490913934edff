"""The replay's records: its configuration, one frame's output, one run's outcome, the
result (geodistill_ros.replay.evaluate)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geodistill_ros.replay.trajectory_metrics import FrameRecord


@dataclass(frozen=True)
class ReplayConfig:
    """One replay. checkpoint '' = the embedded default model. rate None = paced (wait
    for each image's outcome). params: extra node parameters (name -> value). isolated:
    a random ROS_DOMAIN_ID and localhost-only discovery for the node and the player.
    large_message_profile: Fast DDS shared-memory segments for raw images (see
    dds.FASTDDS_LARGE_MESSAGES_PROFILE; a profile of your own is kept)."""

    bag: Path
    map_path: Path
    out_dir: Path
    checkpoint: str = ''
    device: str = 'cpu'
    offline: bool = False
    rate: float | None = None
    max_frames: int | None = None
    heading: str = 'oxts'
    heading_noise_deg: float = 0.0
    gnss_velocity_noise_mps: float = 0.1
    seed: int = 0
    params: dict = field(default_factory=dict)
    frame_timeout_s: float = 60.0
    startup_timeout_s: float = 240.0
    isolated: bool = False
    large_message_profile: bool = True
    plots: bool = True


@dataclass(frozen=True)
class FrameOutput:
    """The node's pose for one image: map xy (m), yaw (rad), 2x2 covariance (m^2)."""

    stamp_ns: int
    xy_m: tuple[float, float]
    yaw_rad: float
    cov_xy_m2: np.ndarray
    confidence: float | None = None
    latency_s: float | None = None


@dataclass
class RunOutcome:
    """What one run produced, before scoring."""

    image_stamps: list[int]
    outputs: dict[int, FrameOutput]
    counts: dict
    node_latency_ms: dict
    wall_s: float
    notes: list = field(default_factory=list)
    single_outputs: dict[int, FrameOutput] = field(default_factory=dict)
    fusion: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReplayResult:
    report: dict
    records: list[FrameRecord]
    out_dir: Path
    report_path: Path
    pictures: dict
