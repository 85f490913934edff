"""The yaw prior handed to the localizer: heading topic, fix track, or configured default.

All yaws here are of base_frame in the map frame (0 = east, CCW, radians). With
``heading_source: auto`` the first available of these is used:

1. ``topic``: the latest ``heading_prior`` message within ``heading_max_age_s`` of the image;
2. ``velocity``: the course over ground of the latest ``gnss_velocity`` message (the GNSS
   receiver's Doppler velocity, east/north) within ``heading_max_age_s``, while its speed
   is at least ``gnss_velocity_min_speed_mps``; its std is the velocity's cross-track
   sigma over the speed (a vehicle drives forward; sideslip is not modelled);
3. ``track``: the direction of travel between the fixes at (stamp - track_window_s) and
   stamp, when the speed is at least ``track_min_speed_mps``;
4. ``fixed``: ``default_yaw_deg`` with ``default_yaw_range_deg`` (180 = unknown heading;
   0 for cameras whose yaw is known, e.g. north-aligned panoramas).
A measured heading (1-3) is searched within +-``yaw_prior_range_deg``; one with a stated
std (a GNSS course; the topic with ``heading_prior_sigma_deg`` > 0) within
+-``fusion.yaw_window_sigmas`` stds of it, at least ``fusion.yaw_min_range_deg`` and at most
``yaw_prior_range_deg``. A source forced by ``heading_source`` that is unavailable falls back
to ``fixed``.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

from geodistill_ros.node.config import NodeConfig
from geodistill_ros.node.messages import stamp_to_ns


@dataclass(frozen=True)
class HeadingSample:
    """A heading measurement: stamp (ns) and base_frame yaw in the map frame (rad)."""

    stamp_ns: int
    yaw_rad: float


@dataclass(frozen=True)
class VelocityHeading:
    """A course over ground: stamp (ns), base_frame yaw in map (rad) and its std (rad)."""

    stamp_ns: int
    yaw_rad: float
    std_rad: float


@dataclass(frozen=True)
class YawPrior:
    """yaw_rad of base_frame in map, the search half-range (deg), where it came from and,
    when the source states it, its std (rad)."""

    yaw_rad: float
    range_deg: float
    source: str
    std_rad: float | None = None


def velocity_heading(stamp_ns: int, east_mps: float, north_mps: float, cov_en_m2ps2,
                     min_speed_mps: float, default_sigma_mps: float
                     ) -> VelocityHeading | str:
    """Course over ground from an ENU velocity (m/s) and its 2 x 2 covariance (None or all
    zero: default_sigma_mps per axis); the reason there is none otherwise: 'non_finite',
    'negative_variance' or 'slow' (below min_speed_mps, the course is noise).

    std: the velocity's sigma across the direction of travel over the speed,
    sqrt(u^T C u) / speed with u the unit vector to the left of the velocity.
    """
    ve, vn = float(east_mps), float(north_mps)
    cov = None if cov_en_m2ps2 is None else [[float(v) for v in row] for row in cov_en_m2ps2]
    values = [ve, vn] + ([] if cov is None else [v for row in cov for v in row])
    if not all(math.isfinite(v) for v in values):
        return 'non_finite'
    if cov is None or not any(v != 0.0 for row in cov for v in row):
        cov = [[default_sigma_mps ** 2, 0.0], [0.0, default_sigma_mps ** 2]]
    if cov[0][0] < 0.0 or cov[1][1] < 0.0:
        return 'negative_variance'
    speed = math.hypot(ve, vn)
    if speed < max(min_speed_mps, 1e-6):
        return 'slow'
    ux, uy = -vn / speed, ve / speed  # across the direction of travel
    var = ux * ux * cov[0][0] + ux * uy * (cov[0][1] + cov[1][0]) + uy * uy * cov[1][1]
    return VelocityHeading(int(stamp_ns), math.atan2(vn, ve), math.sqrt(max(var, 0.0)) / speed)


def track_heading(xy_then_m, xy_now_m, dt_s: float, min_speed_mps: float) -> float | None:
    """Direction of travel (rad) between two map positions dt_s apart; None when too slow."""
    if not dt_s > 0.0:
        return None
    dx, dy = xy_now_m[0] - xy_then_m[0], xy_now_m[1] - xy_then_m[1]
    distance = math.hypot(dx, dy)
    if not math.isfinite(distance) or distance / dt_s < max(min_speed_mps, 1e-6):
        return None
    return math.atan2(dy, dx)


def next_velocity_heading(current: VelocityHeading | None, sample: VelocityHeading | str
                          ) -> VelocityHeading | None:
    """The course kept after a velocity_heading result: the new one; none when the vehicle
    is slow (the next heading source takes over); the last good one when it was rejected."""
    if sample == 'slow':
        return None
    return current if isinstance(sample, str) else sample


def velocity_heading_from_msg(msg, min_speed_mps: float, default_sigma_mps: float
                              ) -> VelocityHeading | str:
    """velocity_heading of a geometry_msgs/TwistWithCovarianceStamped or TwistStamped
    (linear.x east, linear.y north; the covariance's x/y block when it has one)."""
    twist = msg.twist.twist if hasattr(msg.twist, 'twist') else msg.twist
    cov = None
    if hasattr(msg.twist, 'covariance'):
        c = [float(v) for v in msg.twist.covariance]
        cov = [[c[0], c[1]], [c[6], c[7]]]
    return velocity_heading(stamp_to_ns(msg.header.stamp), twist.linear.x, twist.linear.y,
                            cov, min_speed_mps, default_sigma_mps)


def stated_std_range_deg(config: NodeConfig, std_rad: float) -> float:
    """Search half-range (deg) around a heading with a stated std: yaw_window_sigmas stds,
    clamped to [yaw_min_range_deg, yaw_prior_range_deg]."""
    tracker = config.yaw_tracker
    wide = tracker.window_sigmas * math.degrees(std_rad)
    return min(config.yaw_prior_range_deg, max(tracker.min_range_deg, wide))


def choose_yaw_prior(config: NodeConfig, stamp_ns: int, heading: HeadingSample | None,
                     track_yaw_rad: float | None,
                     velocity: VelocityHeading | None = None) -> YawPrior:
    """The prior for an image at ``stamp_ns`` (see the module docstring)."""
    source = config.heading_source
    max_age_ns = config.heading_max_age_s * 1e9
    if source in ('auto', 'topic') and heading is not None:
        if abs(stamp_ns - heading.stamp_ns) <= max_age_ns:
            if config.heading_prior_sigma_deg > 0.0:
                std = math.radians(config.heading_prior_sigma_deg)
                return YawPrior(heading.yaw_rad, stated_std_range_deg(config, std), 'topic',
                                std)
            return YawPrior(heading.yaw_rad, config.yaw_prior_range_deg, 'topic')
    if source in ('auto', 'velocity') and velocity is not None:
        if abs(stamp_ns - velocity.stamp_ns) <= max_age_ns:
            return YawPrior(velocity.yaw_rad, stated_std_range_deg(config, velocity.std_rad),
                            'velocity', velocity.std_rad)
    if source in ('auto', 'track') and track_yaw_rad is not None:
        return YawPrior(track_yaw_rad, config.yaw_prior_range_deg, 'track')
    return YawPrior(config.default_yaw_rad, config.default_yaw_range_deg, 'fixed')
