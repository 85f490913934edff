"""Motion between two stamps for the filter's prediction (no ROS, numpy float64).

Two sources, both returning the displacement of base_link in the map frame (metres) and
its covariance (metres^2):

- ``integrate_twist``: body-frame velocities (REP-103 base_link: x forward, y left, yaw
  rate CCW), each sample held until the next (zero-order hold), rotated into the map by
  the heading at the start of the interval plus the integrated yaw rate. Covariance: each
  sample's velocity covariance times its duration squared (samples independent), plus the
  heading uncertainty swinging the whole displacement sideways (var_yaw |d|^2 along the
  perpendicular).
- ``integrate_yaw_rate``: the yaw change over an interval from the same samples (the yaw
  tracker's odometry input).
- ``track_velocity``: a constant velocity fitted by least squares to the recent fixes
  (when no odometry is configured); its covariance follows from the fixes' covariance.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np


@dataclass(frozen=True)
class TwistSample:
    """stamp_ns; v_forward_mps, v_left_mps, yaw_rate_rps in base_link; cov (3, 3) of
    (v_forward, v_left, yaw_rate)."""

    stamp_ns: int
    v_forward_mps: float
    v_left_mps: float
    yaw_rate_rps: float
    cov: np.ndarray

    def problem(self) -> str | None:
        """Why this sample cannot be fused, or None."""
        values = [self.v_forward_mps, self.v_left_mps, self.yaw_rate_rps]
        cov = np.asarray(self.cov, np.float64)
        if not (all(math.isfinite(v) for v in values) and cov.shape == (3, 3)
                and np.isfinite(cov).all()):
            return 'non_finite'
        if (np.diag(cov) < 0).any():
            return 'negative_variance'
        return None


def _rot(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s], [s, c]])


def _held_segments(samples: list[TwistSample], t0_ns: int, t1_ns: int, max_hold_s: float
                   ) -> list[tuple[TwistSample, float]] | None:
    """[t0, t1] cut at the sample stamps: (sample held, duration s) in time order (zero-order
    hold); None when not covered (no sample at or before t0 within max_hold_s, or a sample
    held longer than max_hold_s)."""
    hold_ns = int(max_hold_s * 1e9)
    stamps = [s.stamp_ns for s in samples]
    k = int(np.searchsorted(stamps, t0_ns, side='right')) - 1
    if k < 0 or t0_ns - stamps[k] > hold_ns:
        return None
    segments, t = [], t0_ns
    while t < t1_ns:
        sample = samples[k]
        next_stamp = samples[k + 1].stamp_ns if k + 1 < len(samples) else None
        end = t1_ns if next_stamp is None else min(t1_ns, next_stamp)
        if end - sample.stamp_ns > hold_ns:  # held too long: a gap in the odometry
            return None
        segments.append((sample, (end - t) * 1e-9))
        t = end
        if next_stamp is not None and end == next_stamp:
            k += 1
    return segments


def integrate_twist(samples: list[TwistSample], t0_ns: int, t1_ns: int, yaw0_rad: float,
                    var_yaw_rad2: float, max_hold_s: float = 0.5
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """Displacement (2,) and covariance (2, 2) over [t0, t1] from time-sorted samples.

    A sample holds for at most max_hold_s; None when [t0, t1] is not covered (no sample
    at or before t0 within max_hold_s, or a gap longer than max_hold_s).
    """
    if t1_ns <= t0_ns:
        return np.zeros(2), np.zeros((2, 2))
    segments = _held_segments(samples, t0_ns, t1_ns, max_hold_s)
    if segments is None:
        return None
    delta_body_map = np.zeros(2)
    cov = np.zeros((2, 2))
    yaw = yaw0_rad
    for sample, dt in segments:
        R = _rot(yaw + 0.5 * sample.yaw_rate_rps * dt)
        delta_body_map += R @ np.array([sample.v_forward_mps, sample.v_left_mps]) * dt
        cov += (dt * dt) * (R @ np.asarray(sample.cov, np.float64)[:2, :2] @ R.T)
        yaw += sample.yaw_rate_rps * dt
    perpendicular = np.array([-delta_body_map[1], delta_body_map[0]])
    cov += var_yaw_rad2 * np.outer(perpendicular, perpendicular)
    return delta_body_map, 0.5 * (cov + cov.T)


def integrate_yaw_rate(samples: list[TwistSample], t0_ns: int, t1_ns: int,
                       max_hold_s: float = 0.5) -> tuple[float, float] | None:
    """Yaw change (rad, CCW) over [t0, t1] and its variance (rad^2) from the samples' yaw
    rates (zero-order hold, samples independent: each rate variance times its duration
    squared); None when [t0, t1] is not covered (as integrate_twist)."""
    if t1_ns <= t0_ns:
        return 0.0, 0.0
    segments = _held_segments(samples, t0_ns, t1_ns, max_hold_s)
    if segments is None:
        return None
    change = sum(sample.yaw_rate_rps * dt for sample, dt in segments)
    var = sum(float(np.asarray(sample.cov, np.float64)[2, 2]) * dt * dt
              for sample, dt in segments)
    return float(change), float(var)


def track_velocity(stamps_ns: np.ndarray, xy_m: np.ndarray, R_xy_m2: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """Least-squares velocity (2,) m/s and its covariance (2, 2) from fixes (N, 2) at
    stamps (N,) with a common covariance R (2, 2); None with fewer than 3 fixes or no
    time spread."""
    stamps = np.asarray(stamps_ns, np.int64)
    if stamps.size < 3:
        return None
    t = (stamps - stamps[-1]) * 1e-9
    spread = float(((t - t.mean()) ** 2).sum())
    if spread <= 1e-6:
        return None
    xy = np.asarray(xy_m, np.float64)
    velocity = ((t - t.mean())[:, None] * (xy - xy.mean(axis=0))).sum(axis=0) / spread
    return velocity, np.asarray(R_xy_m2, np.float64) / spread
