"""The yaw prior handed to the localizer: heading topic, fix track, or configured default.

All yaws here are of base_frame in the map frame (0 = east, CCW, radians). With
``heading_source: auto`` the first available of these is used:

1. ``topic``: the latest ``heading_prior`` message within ``heading_max_age_s`` of the image;
2. ``track``: the direction of travel between the fixes at (stamp - track_window_s) and
   stamp, when the speed is at least ``track_min_speed_mps`` (a vehicle drives forward);
3. ``fixed``: ``default_yaw_deg`` with ``default_yaw_range_deg`` (180 = unknown heading;
   0 for cameras whose yaw is known, e.g. north-aligned panoramas).
A measured heading (1, 2) is searched within +-``yaw_prior_range_deg``. A source forced by
``heading_source`` that is unavailable falls back to ``fixed``.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

from geodistill_ros.node.config import NodeConfig


@dataclass(frozen=True)
class HeadingSample:
    """A heading measurement: stamp (ns) and base_frame yaw in the map frame (rad)."""

    stamp_ns: int
    yaw_rad: float


@dataclass(frozen=True)
class YawPrior:
    """yaw_rad of base_frame in map, the search half-range (deg) and where it came from."""

    yaw_rad: float
    range_deg: float
    source: str


def track_heading(xy_then_m, xy_now_m, dt_s: float, min_speed_mps: float) -> float | None:
    """Direction of travel (rad) between two map positions dt_s apart; None when too slow."""
    if not dt_s > 0.0:
        return None
    dx, dy = xy_now_m[0] - xy_then_m[0], xy_now_m[1] - xy_then_m[1]
    distance = math.hypot(dx, dy)
    if not math.isfinite(distance) or distance / dt_s < max(min_speed_mps, 1e-6):
        return None
    return math.atan2(dy, dx)


def choose_yaw_prior(config: NodeConfig, stamp_ns: int, heading: HeadingSample | None,
                     track_yaw_rad: float | None) -> YawPrior:
    """The prior for an image at ``stamp_ns`` (see the module docstring)."""
    source = config.heading_source
    if source in ('auto', 'topic') and heading is not None:
        if abs(stamp_ns - heading.stamp_ns) <= config.heading_max_age_s * 1e9:
            return YawPrior(heading.yaw_rad, config.yaw_prior_range_deg, 'topic')
    if source in ('auto', 'track') and track_yaw_rad is not None:
        return YawPrior(track_yaw_rad, config.yaw_prior_range_deg, 'track')
    return YawPrior(config.default_yaw_rad, config.default_yaw_range_deg, 'fixed')
