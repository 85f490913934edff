"""Localisation and orientation metrics (method.md section 7).

Positions are (N, 2) east/north metres in one map frame (ENU); yaw is radians, 0 = east,
counter-clockwise. Inputs may be torch tensors, numpy arrays or lists; per-sample errors
come back as float64 tensors, summaries as plain dicts of Python numbers (JSON-ready).

Failures are never dropped: a NaN or infinite error (a sample the estimator could not
localise) counts in `count`, is reported in `failures`, and is a miss for every recall;
mean and median are taken over the finite errors only (NaN when there are none).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from geodistill_core.geodesy import wrap_angle_rad

DEFAULT_THRESHOLDS_M = (1.0, 3.0, 5.0)
DEFAULT_THRESHOLDS_DEG = (1.0, 3.0, 5.0)
FLIP_DEG = 90.0


def _as64(x, name: str, trailing: tuple[int, ...] = ()) -> torch.Tensor:
    t = x.detach() if torch.is_tensor(x) else torch.as_tensor(x, dtype=torch.float64)
    t = t.to(torch.float64)  # lists and numpy arrays are read in float64 directly
    if t.dim() != 1 + len(trailing) or tuple(t.shape[1:]) != trailing:
        want = '(N' + ''.join(f', {d}' for d in trailing) + ')'
        raise ValueError(f'{name} must be {want}, got {tuple(t.shape)}')
    return t


def _pair(pred, true, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    p = _as64(pred, f'pred_{name}', (2,))
    t = _as64(true, f'true_{name}', (2,)).to(p.device)
    if p.shape != t.shape:
        raise ValueError(f'pred {tuple(p.shape)} and true {tuple(t.shape)} differ in shape')
    return p, t


def localization_errors_m(pred_en_m, true_en_m) -> torch.Tensor:
    """Euclidean position error (N,) metres of pred_en_m (N, 2) against true_en_m (N, 2)."""
    p, t = _pair(pred_en_m, true_en_m, 'en_m')
    return torch.linalg.vector_norm(p - t, dim=1)


class LateralLongitudinal(NamedTuple):
    """Signed error of the prediction in the true vehicle frame (ROS base_link), metres.

    longitudinal_m: (N,) along the true heading, positive = prediction ahead (base_link x).
    lateral_m: (N,) across it, positive = prediction to the LEFT (base_link y).
    """

    lateral_m: torch.Tensor
    longitudinal_m: torch.Tensor


def lateral_longitudinal_m(pred_en_m, true_en_m, true_yaw_rad) -> LateralLongitudinal:
    """Decompose pred - true (N, 2) ENU in the vehicle frame of yaw true_yaw_rad (N,).

    longitudinal = d . (cos yaw, sin yaw); lateral = d . (-sin yaw, cos yaw) (left +).
    Signs are kept: take abs() before summarize_localization.
    """
    p, t = _pair(pred_en_m, true_en_m, 'en_m')
    yaw = _as64(true_yaw_rad, 'true_yaw_rad').to(p.device)
    if yaw.shape[0] != p.shape[0]:
        raise ValueError(f'true_yaw_rad {tuple(yaw.shape)} does not match {tuple(p.shape)}')
    d = p - t
    c, s = torch.cos(yaw), torch.sin(yaw)
    return LateralLongitudinal(lateral_m=-s * d[:, 0] + c * d[:, 1],
                               longitudinal_m=c * d[:, 0] + s * d[:, 1])


def orientation_errors_deg(pred_yaw_rad, true_yaw_rad) -> torch.Tensor:
    """Wrapped absolute yaw difference (N,) in degrees, in [0, 180]."""
    p = _as64(pred_yaw_rad, 'pred_yaw_rad')
    t = _as64(true_yaw_rad, 'true_yaw_rad').to(p.device)
    if p.shape != t.shape:
        raise ValueError(f'pred {tuple(p.shape)} and true {tuple(t.shape)} differ in shape')
    return torch.rad2deg(wrap_angle_rad(p - t).abs())


def _median(x: torch.Tensor) -> float:
    """Median with the mean of the two middle values for even counts (as numpy)."""
    if not x.numel():
        return math.nan
    v = x.sort().values
    k = v.numel() // 2
    return float(v[k]) if v.numel() % 2 else float((v[k - 1] + v[k]) / 2)


def _summary(errors, thresholds, unit: str) -> tuple[dict, torch.Tensor, int]:
    e = _as64(errors, 'errors')
    finite = torch.isfinite(e)
    good = e[finite]
    if bool((good < 0).any()):
        raise ValueError('errors must be non-negative (take abs() of signed errors), '
                         f'min is {float(good.min())}')
    n = int(e.numel())
    out = {
        'count': n,
        'failures': n - int(good.numel()),
        'mean': float(good.mean()) if good.numel() else math.nan,
        'median': _median(good),
    }
    for thr in thresholds:
        hits = int((good <= thr).sum())
        out[f'recall_{thr:g}{unit}'] = hits / n if n else math.nan
    return out, good, n


def summarize_localization(errors_m, thresholds=DEFAULT_THRESHOLDS_M) -> dict:
    """errors_m (N,) non-negative metres -> dict.

    Keys: count, failures (NaN/inf errors), mean, median (over finite errors), and
    recall_<t>m for each threshold t (fraction of ALL N samples with error <= t).
    """
    out, _, _ = _summary(errors_m, thresholds, 'm')
    return out


def summarize_orientation(err_deg, thresholds=DEFAULT_THRESHOLDS_DEG) -> dict:
    """err_deg (N,) absolute yaw errors in degrees -> dict.

    Keys as summarize_localization with recall_<t>deg, plus flip_rate: fraction of all
    N samples whose (finite) error exceeds 90 degrees.
    """
    out, good, n = _summary(err_deg, thresholds, 'deg')
    out['flip_rate'] = int((good > FLIP_DEG).sum()) / n if n else math.nan
    return out
