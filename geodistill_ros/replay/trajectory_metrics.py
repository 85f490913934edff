"""Trajectory evaluation of a localizer run against ground truth (pure: no rclpy).

Each frame (one input image) holds the truth (base_link x, y in ``map``, ENU metres, yaw
radians 0 = east CCW), the GNSS input position, and the localizer's output for that frame
or nothing (dropped or rejected). ``evaluate_trajectory`` turns them into a
``TrajectoryReport`` (``to_dict()`` is JSON-ready: NaN becomes null):

- position: Euclidean error over the frames with an output (``position``) and over all
  frames with a missing output counted as a miss (``position_all_frames``): count,
  failures, mean, median, recall_1m/3m/5m (``geodistill_core.metrics``).
- lateral / longitudinal: the error in the TRUE vehicle frame (``metrics.
  lateral_longitudinal_m``): longitudinal > 0 = estimate ahead, lateral > 0 = estimate to
  the left. ``mean_signed`` and ``rmse`` keep the sign; the summary is of the absolute value.
- yaw: wrapped absolute error (deg) summary and the signed mean (estimate - truth, CCW +).
- gnss: the same position / lateral / longitudinal numbers for the GNSS input, over all
  frames and over the frames with an output (the fair comparison).
- coverage = outputs / frames; rates from the stamps: input_rate_hz = (N - 1) / duration,
  output_rate_hz = coverage * input_rate_hz (outputs per second of drive time).
- latency (when given): mean, median, p95, max seconds.
- consistency of the stated 2x2 covariance: NEES_k = e_k^T S_k^-1 e_k (chi-square, 2 dof,
  mean 2 for a consistent estimator); the fraction inside the regions that hold the
  1-sigma and 2-sigma probabilities of a 1-D Gaussian (68.27 %, 95.45 %), i.e.
  NEES <= -2 ln(1 - p) = 2.2957 and 6.1801; and approximate 95 % intervals for what a
  consistent estimator would show: the mean NEES (N_eff * mean ~ chi-square with 2 N_eff
  dof, Wilson-Hilferty) and each fraction inside (Wilson score), with ``consistent`` = the
  mean lies inside its interval and ``coverage_consistent`` = the 2-sigma mass lies inside
  the observed fraction's interval. N_eff (``effective_samples``) is the number of
  independent frames the NEES series is worth: consecutive frames of a filtered track
  share their error (a slowly varying bias), so 300 frames may carry the evidence of 10,
  and an interval computed as if every frame were independent would call a consistent
  filter inconsistent by chance. Frames whose covariance is not finite and positive
  definite are counted in ``invalid_covariance`` and left out.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
import math

import numpy as np

from geodistill_core.geodesy import wrap_angle_rad
from geodistill_core.metrics import (
    DEFAULT_THRESHOLDS_DEG,
    DEFAULT_THRESHOLDS_M,
    lateral_longitudinal_m,
    localization_errors_m,
    orientation_errors_deg,
    summarize_localization,
    summarize_orientation,
)

SIGMA_PROBABILITIES = (math.erf(1.0 / math.sqrt(2.0)), math.erf(2.0 / math.sqrt(2.0)))
"""Mass of a 1-D Gaussian within 1 and 2 sigma: 0.682689..., 0.954499..."""
NEES_THRESHOLDS_2DOF = tuple(-2.0 * math.log(1.0 - p) for p in SIGMA_PROBABILITIES)
"""Chi-square (2 dof) quantiles of those masses: 2.29575..., 6.18007..."""
Z_95 = 1.959964
"""Normal score of a two-sided 95% interval."""


@dataclass(frozen=True)
class FrameRecord:
    """One input frame. Missing output: leave the estimate_* fields None."""

    stamp_ns: int
    truth_xy_m: tuple[float, float]
    truth_yaw_rad: float
    gnss_xy_m: tuple[float, float]
    estimate_xy_m: tuple[float, float] | None = None
    estimate_yaw_rad: float | None = None
    estimate_cov_xy_m2: np.ndarray | None = None  # (2, 2) m^2
    confidence: float | None = None
    latency_s: float | None = None


@dataclass(frozen=True)
class TrajectoryArrays:
    """Records stacked per field; N frames, NaN where a frame has no value.

    stamps_ns (N,) int64; truth_xy_m, gnss_xy_m, estimate_xy_m (N, 2); truth_yaw_rad,
    estimate_yaw_rad, confidence, latency_s (N,); estimate_cov_xy_m2 (N, 2, 2);
    has_output (N,) bool.
    """

    stamps_ns: np.ndarray
    truth_xy_m: np.ndarray
    truth_yaw_rad: np.ndarray
    gnss_xy_m: np.ndarray
    estimate_xy_m: np.ndarray
    estimate_yaw_rad: np.ndarray
    estimate_cov_xy_m2: np.ndarray
    confidence: np.ndarray
    latency_s: np.ndarray
    has_output: np.ndarray


def _value(v, shape=()) -> np.ndarray:
    return np.full(shape, np.nan) if v is None else np.asarray(v, np.float64).reshape(shape)


def stack_records(records: Sequence[FrameRecord]) -> TrajectoryArrays:
    """FrameRecords (any order) -> TrajectoryArrays sorted by stamp."""
    if not records:
        raise ValueError('no frames to evaluate')
    records = sorted(records, key=lambda r: int(r.stamp_ns))
    return TrajectoryArrays(
        stamps_ns=np.array([int(r.stamp_ns) for r in records], np.int64),
        truth_xy_m=np.stack([_value(r.truth_xy_m, (2,)) for r in records]),
        truth_yaw_rad=np.array([float(r.truth_yaw_rad) for r in records]),
        gnss_xy_m=np.stack([_value(r.gnss_xy_m, (2,)) for r in records]),
        estimate_xy_m=np.stack([_value(r.estimate_xy_m, (2,)) for r in records]),
        estimate_yaw_rad=np.array([_value(r.estimate_yaw_rad) for r in records]),
        estimate_cov_xy_m2=np.stack([_value(r.estimate_cov_xy_m2, (2, 2)) for r in records]),
        confidence=np.array([_value(r.confidence) for r in records]),
        latency_s=np.array([_value(r.latency_s) for r in records]),
        has_output=np.array([r.estimate_xy_m is not None for r in records]))


def _signed_summary(signed: np.ndarray, thresholds) -> dict:
    finite = signed[np.isfinite(signed)]
    out = summarize_localization(np.abs(signed), thresholds)
    out['mean_signed'] = float(finite.mean()) if finite.size else math.nan
    out['rmse'] = float(np.sqrt(np.mean(finite ** 2))) if finite.size else math.nan
    return out


def position_block(pred_xy_m: np.ndarray, truth_xy_m: np.ndarray, truth_yaw_rad: np.ndarray,
                   thresholds=DEFAULT_THRESHOLDS_M) -> dict:
    """Position, lateral and longitudinal error summaries of pred (N, 2) against truth."""
    err = localization_errors_m(pred_xy_m, truth_xy_m).numpy()
    lat_lon = lateral_longitudinal_m(pred_xy_m, truth_xy_m, truth_yaw_rad)
    return {'position': summarize_localization(err, thresholds),
            'lateral': _signed_summary(lat_lon.lateral_m.numpy(), thresholds),
            'longitudinal': _signed_summary(lat_lon.longitudinal_m.numpy(), thresholds)}


def _wilson_hilferty(dof: float, z: float) -> float:
    """Approximate chi-square quantile with ``dof`` degrees of freedom at normal score z."""
    a = 2.0 / (9.0 * dof)
    return dof * (1.0 - a + z * math.sqrt(a)) ** 3


def nees_2d(error_xy_m: np.ndarray, cov_xy_m2: np.ndarray) -> np.ndarray:
    """e^T S^-1 e per frame for errors (N, 2) and covariances (N, 2, 2); NaN if S invalid."""
    out = np.full(error_xy_m.shape[0], np.nan)
    for k, (e, cov) in enumerate(zip(error_xy_m, cov_xy_m2, strict=True)):
        if not (np.isfinite(cov).all() and np.isfinite(e).all()):
            continue
        sym = 0.5 * (cov + cov.T)
        try:
            chol = np.linalg.cholesky(sym)
        except np.linalg.LinAlgError:
            continue
        w = np.linalg.solve(chol, e)
        out[k] = float(w @ w)
    return out


def effective_sample_size(series: np.ndarray) -> float:
    """Independent samples a time series (N,) is worth: N / (1 + 2 sum_k rho_k).

    rho_k: the sample autocorrelation at lag k (FFT), summed by Geyer's initial positive
    sequence (pairs rho_2m + rho_2m+1 while positive and non-increasing), which stays
    stable where the tail of rho is noise. i.i.d. values give about N; an AR(1) series with
    coefficient phi gives N (1 - phi) / (1 + phi). A constant series (no variance) gives N.
    Result in [1, N].
    """
    x = np.asarray(series, dtype=np.float64)
    n = x.size
    if n < 3:
        return float(n)
    x = x - x.mean()
    var = float(x @ x) / n
    if var <= 0.0:
        return float(n)
    size = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(x, size)
    rho = np.fft.irfft(spec * np.conj(spec), size)[:n] / (n * var)
    tau, previous = -1.0, math.inf
    for m in range((n - 1) // 2):
        pair = float(rho[2 * m] + rho[2 * m + 1])
        if pair <= 0.0:
            break
        pair = min(pair, previous)
        tau += 2.0 * pair
        previous = pair
    return float(min(n, max(1.0, n / max(tau, 1e-12))))


def wilson_interval(fraction: float, n: float, z: float = Z_95) -> list[float]:
    """Wilson score interval of a proportion observed over n (possibly effective) trials."""
    centre = (fraction + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(fraction * (1 - fraction) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return [0.0 if fraction <= 0.0 else lo, 1.0 if fraction >= 1.0 else hi]   # round-off


def consistency_block(error_xy_m: np.ndarray, cov_xy_m2: np.ndarray) -> dict:
    """Covariance consistency numbers (module doc) of errors (N, 2), covariances (N, 2, 2)
    of consecutive frames (time order)."""
    nees = nees_2d(error_xy_m, cov_xy_m2)
    valid = nees[np.isfinite(nees)]
    n = int(valid.size)
    out = {'count': n, 'invalid_covariance': int(nees.size - n),
           'expected_inside_1sigma': SIGMA_PROBABILITIES[0],
           'expected_inside_2sigma': SIGMA_PROBABILITIES[1],
           'nees_threshold_1sigma': NEES_THRESHOLDS_2DOF[0],
           'nees_threshold_2sigma': NEES_THRESHOLDS_2DOF[1], 'nees_expected_mean': 2.0}
    if n == 0:
        return out | {'inside_1sigma': math.nan, 'inside_2sigma': math.nan,
                      'nees_mean': math.nan, 'nees_median': math.nan,
                      'effective_samples': math.nan,
                      'nees_mean_interval_95': [math.nan, math.nan],
                      'inside_1sigma_interval_95': [math.nan, math.nan],
                      'inside_2sigma_interval_95': [math.nan, math.nan],
                      'consistent': None, 'coverage_consistent': None}
    n_eff = effective_sample_size(valid)
    lo, hi = (_wilson_hilferty(2 * n_eff, z) / n_eff for z in (-Z_95, Z_95))
    mean = float(valid.mean())
    inside = [float((valid <= t).mean()) for t in NEES_THRESHOLDS_2DOF]
    cover_lo, cover_hi = wilson_interval(inside[1], n_eff)
    return out | {'inside_1sigma': inside[0], 'inside_2sigma': inside[1],
                  'nees_mean': mean, 'nees_median': float(np.median(valid)),
                  'effective_samples': n_eff, 'nees_mean_interval_95': [lo, hi],
                  'inside_1sigma_interval_95': wilson_interval(inside[0], n_eff),
                  'inside_2sigma_interval_95': [cover_lo, cover_hi],
                  'consistent': bool(lo <= mean <= hi),
                  'coverage_consistent': bool(cover_lo <= SIGMA_PROBABILITIES[1] <= cover_hi)}


def _stats(values: np.ndarray, suffix: str = '') -> dict | None:
    """count, mean, median, p95, max (keys + suffix) of the finite values; None if none."""
    v = values[np.isfinite(values)]
    if not v.size:
        return None
    return {'count': int(v.size), f'mean{suffix}': float(v.mean()),
            f'median{suffix}': float(np.median(v)),
            f'p95{suffix}': float(np.percentile(v, 95)), f'max{suffix}': float(v.max())}


@dataclass(frozen=True)
class TrajectoryReport:
    frames: int
    outputs: int
    coverage: float
    duration_s: float
    input_rate_hz: float
    output_rate_hz: float
    position: dict
    position_all_frames: dict
    lateral: dict
    longitudinal: dict
    yaw: dict | None
    gnss: dict
    gnss_on_output_frames: dict
    consistency: dict
    latency: dict | None
    confidence: dict | None

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (non-finite floats become None)."""
        return _json_ready(asdict(self))


def _json_ready(value):
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def evaluate_trajectory(records: Sequence[FrameRecord] | TrajectoryArrays,
                        thresholds_m=DEFAULT_THRESHOLDS_M,
                        thresholds_deg=DEFAULT_THRESHOLDS_DEG) -> TrajectoryReport:
    """Evaluate a run (module doc). records: FrameRecords or their TrajectoryArrays."""
    a = records if isinstance(records, TrajectoryArrays) else stack_records(records)
    n, out = int(a.stamps_ns.size), a.has_output
    outputs = int(out.sum())
    duration_s = float(a.stamps_ns.max() - a.stamps_ns.min()) * 1e-9
    input_rate = (n - 1) / duration_s if duration_s > 0 else math.nan
    est = position_block(a.estimate_xy_m[out], a.truth_xy_m[out], a.truth_yaw_rad[out],
                         thresholds_m)
    all_frames = summarize_localization(
        localization_errors_m(a.estimate_xy_m, a.truth_xy_m).numpy(), thresholds_m)
    gnss_all = position_block(a.gnss_xy_m, a.truth_xy_m, a.truth_yaw_rad, thresholds_m)
    gnss_out = position_block(a.gnss_xy_m[out], a.truth_xy_m[out], a.truth_yaw_rad[out],
                              thresholds_m)
    yaw_ok = out & np.isfinite(a.estimate_yaw_rad)
    yaw = None
    if yaw_ok.any():
        yaw = summarize_orientation(orientation_errors_deg(
            a.estimate_yaw_rad[yaw_ok], a.truth_yaw_rad[yaw_ok]).numpy(), thresholds_deg)
        signed = wrap_angle_rad(a.estimate_yaw_rad[yaw_ok] - a.truth_yaw_rad[yaw_ok])
        yaw['mean_signed_deg'] = float(np.degrees(signed).mean())
    confidence = _stats(a.confidence[out])
    return TrajectoryReport(
        frames=n, outputs=outputs, coverage=outputs / n, duration_s=duration_s,
        input_rate_hz=input_rate, output_rate_hz=outputs / n * input_rate,
        position=est['position'], position_all_frames=all_frames, lateral=est['lateral'],
        longitudinal=est['longitudinal'], yaw=yaw, gnss=gnss_all,
        gnss_on_output_frames=gnss_out,
        consistency=consistency_block(a.estimate_xy_m[out] - a.truth_xy_m[out],
                                      a.estimate_cov_xy_m2[out]),
        latency=_stats(a.latency_s, '_s'), confidence=confidence)
