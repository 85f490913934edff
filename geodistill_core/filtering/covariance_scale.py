"""Online scale of the single-frame covariance from the filter's innovations (label-free).

A calibration fitted on validation drives gives one covariance scale for all deployments,
but how well a model's heatmap spread matches its error depends on the city (the pinhole
model's validation drives alone range from NEES 0.42 to 2.15 with one pooled scale). Each
deployment can measure it without ground truth: before a frame's heatmap is fused, the
filter's belief (mean m, covariance P, from fixes, odometry and earlier frames) predicts
the frame's estimate x with covariance k C + P, C being the frame's calibrated covariance.
``InnovationScale`` keeps the last ``window`` innovations nu = x - m and returns the k whose
mean normalised innovation squared, mean(nu^T (k C + P)^-1 nu), equals ``target_nis`` (2
for a consistent 2-D estimate), clamped to [min_scale, max_scale]; 1 until ``min_frames``
innovations are in (the calibration's own scale then stands alone).

Caveats, measured in the README: consecutive frames of one street make correlated errors,
which the belief has partly absorbed, so innovations can understate the error; outlier
frames dominate a mean. The scale multiplies what the node publishes as the single-frame
covariance (``pose_single``); the filter itself uses the heatmaps, not this covariance.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np


@dataclass(frozen=True)
class CovarianceScaleConfig:
    """enabled; window: innovations kept; min_frames: needed before adapting; target_nis:
    mean NIS aimed at; min_scale, max_scale: clamp of k."""

    enabled: bool = True
    window: int = 300
    min_frames: int = 30
    target_nis: float = 2.0
    min_scale: float = 0.05
    max_scale: float = 20.0

    def __post_init__(self):
        if self.window < 1 or not 1 <= self.min_frames <= self.window:
            raise ValueError(f'covariance scale needs 1 <= min_frames <= window, got '
                             f'{self.min_frames}, {self.window}')
        values = (self.target_nis, self.min_scale, self.max_scale)
        if not (all(math.isfinite(v) and v > 0 for v in values)
                and self.min_scale <= 1.0 <= self.max_scale):
            raise ValueError(f'covariance scale needs target_nis > 0 and 0 < min_scale <= 1 <= '
                             f'max_scale, got {values}')


def _mean_nis(scale: float, nu: np.ndarray, C: np.ndarray, P: np.ndarray) -> float:
    """mean over frames of nu^T (scale C + P)^-1 nu; nu (N, 2), C and P (N, 2, 2)."""
    S = scale * C + P
    a, b, d = S[:, 0, 0], 0.5 * (S[:, 0, 1] + S[:, 1, 0]), S[:, 1, 1]
    det = a * d - b * b
    x, y = nu[:, 0], nu[:, 1]
    return float(np.mean((d * x * x - 2 * b * x * y + a * y * y) / det))


class InnovationScale:
    """The scale of the module doc for one vehicle (not thread-safe: the caller locks)."""

    def __init__(self, config: CovarianceScaleConfig = CovarianceScaleConfig()):
        self.config = config
        # the last `window` frames in ring buffers (order does not matter for a mean)
        self._nu = np.zeros((config.window, 2))
        self._C = np.zeros((config.window, 2, 2))
        self._P = np.zeros((config.window, 2, 2))
        self._count = self._next = 0
        self._scale = 1.0

    @property
    def frames(self) -> int:
        return self._count

    def reset(self) -> None:
        self._count = self._next = 0
        self._scale = 1.0

    def add(self, estimate_xy_m, cov_xy_m2, belief_xy_m, belief_cov_xy_m2) -> bool:
        """One frame's estimate and covariance (before scaling) against the belief that
        predicts it; False (ignored) for non-finite or non-positive-definite input."""
        nu = np.asarray(estimate_xy_m, np.float64).reshape(2) - np.asarray(
            belief_xy_m, np.float64).reshape(2)
        C = np.asarray(cov_xy_m2, np.float64).reshape(2, 2)
        P = np.asarray(belief_cov_xy_m2, np.float64).reshape(2, 2)
        if not (np.isfinite(nu).all() and np.isfinite(C).all() and np.isfinite(P).all()):
            return False
        if np.linalg.eigvalsh(0.5 * (C + C.T))[0] <= 0 or np.linalg.eigvalsh(
                0.5 * (P + P.T))[0] < 0:
            return False
        k = self._next
        self._nu[k], self._C[k], self._P[k] = nu, C, P
        self._next = (k + 1) % self.config.window
        self._count = min(self._count + 1, self.config.window)
        if self.config.enabled and self._count >= self.config.min_frames:
            self._scale = self._solve()
        return True

    def scale(self) -> float:
        """The current k (1 while fewer than min_frames innovations are in)."""
        return self._scale if self.config.enabled else 1.0

    def _solve(self) -> float:
        """k with mean NIS = target (the mean NIS falls monotonically in k), by bisection
        on log k inside [min_scale, max_scale]."""
        cfg = self.config
        n = self._count
        nu, C, P = self._nu[:n], self._C[:n], self._P[:n]
        lo, hi = math.log(cfg.min_scale), math.log(cfg.max_scale)
        if _mean_nis(math.exp(lo), nu, C, P) <= cfg.target_nis:
            return cfg.min_scale
        if _mean_nis(math.exp(hi), nu, C, P) >= cfg.target_nis:
            return cfg.max_scale
        for _ in range(20):  # log k to 6 / 2^20: k to 6e-6 relative
            mid = 0.5 * (lo + hi)
            if _mean_nis(math.exp(mid), nu, C, P) > cfg.target_nis:
                lo = mid
            else:
                hi = mid
        return math.exp(0.5 * (lo + hi))


# --- the per-frame gate -------------------------------------------------------------------
CHI2_2D_99 = 9.2103  # chi-square, 2 degrees of freedom, 99% quantile
EXPECTED_NIS_2D = 2.0  # the mean of chi-square with 2 degrees of freedom


def gate_inflation(innovation_xy_m, cov_xy_m2, belief_cov_xy_m2,
                   gate_nis: float = CHI2_2D_99, target_nis: float = EXPECTED_NIS_2D) -> float:
    """Factor k >= 1 on one frame's covariance C: 1 while its innovation nu (estimate minus
    the belief that predicts it, covariance P) passes the gate nu^T (C + P)^-1 nu <=
    gate_nis; else the k with nu^T (k C + P)^-1 nu = target_nis.

    A frame that disagrees with everything else known (the belief from fixes, odometry and
    earlier frames) beyond the gate is likely a wrong peak, which its heatmap alone cannot
    tell: its published ellipse is widened to that disagreement, its estimate kept. The NIS
    falls monotonically in k, from nu^T P^-1 nu at k = 0 to 0, so with target_nis < gate_nis
    the k exists and is above 1 (bisection on log k). gate_nis 0 = off (k = 1); non-finite
    input gives 1 (nothing to judge by).
    """
    if gate_nis <= 0:
        return 1.0
    if not 0 < target_nis < gate_nis:
        raise ValueError(f'gate needs 0 < target_nis < gate_nis, got {target_nis}, {gate_nis}')
    nu = np.asarray(innovation_xy_m, np.float64).reshape(1, 2)
    C = np.asarray(cov_xy_m2, np.float64).reshape(1, 2, 2)
    P = np.asarray(belief_cov_xy_m2, np.float64).reshape(1, 2, 2)
    if not (np.isfinite(nu).all() and np.isfinite(C).all() and np.isfinite(P).all()):
        return 1.0
    if _mean_nis(1.0, nu, C, P) <= gate_nis:
        return 1.0
    lo, hi = 0.0, 1.0  # log k
    while _mean_nis(math.exp(hi), nu, C, P) > target_nis:
        lo, hi = hi, 2.0 * hi
        if hi > 64.0:  # k = e^64: no finite innovation needs more
            return math.exp(hi)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if _mean_nis(math.exp(mid), nu, C, P) > target_nis:
            lo = mid
        else:
            hi = mid
    return math.exp(hi)
