"""Metrics and per-item rows of a SplitPredictions (method.md section 7, via metrics.py).

Per localizer: localisation error (metres) summary; lateral/longitudinal errors in the
TRUE vehicle frame (signed per item, absolute in the summary) when asked; orientation
error summary when an orientation estimator produced the yaw. The yaw prior's own error
(the test-time noise) is summarised once. Failures (NaN predictions) are counted, never
dropped: see metrics.py.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from geodistill_core.evaluation.predict import SplitPredictions
from geodistill_core.filtering.calibration_fit import consistency
from geodistill_core.metrics import (
    lateral_longitudinal_m,
    localization_errors_m,
    orientation_errors_deg,
    summarize_localization,
    summarize_orientation,
)

MAX_LISTED_FAILURES = 100


def model_errors(split: SplitPredictions, name: str, vehicle_frame: bool) -> dict[str, np.ndarray]:
    """Per-item errors (N,) of localizer `name`: error_m, and lateral_m / longitudinal_m
    (signed, vehicle frame of the true yaw; left / ahead positive), yaw_error_deg."""
    pred = split.models[name]
    out = {'error_m': localization_errors_m(pred.offset_en_m, split.true_offset_en_m).numpy()}
    if vehicle_frame:
        decomposed = lateral_longitudinal_m(pred.offset_en_m, split.true_offset_en_m,
                                            split.yaw_rad)
        out['lateral_m'] = decomposed.lateral_m.numpy()
        out['longitudinal_m'] = decomposed.longitudinal_m.numpy()
    if pred.uses_orientation:
        out['yaw_error_deg'] = orientation_errors_deg(pred.yaw_rad, split.yaw_rad).numpy()
    return out


def model_metrics(split: SplitPredictions, name: str, vehicle_frame: bool) -> dict[str, Any]:
    """{'localization_m', ['lateral_m', 'longitudinal_m'], ['orientation_deg'],
    ['consistency': NEES mean and the fraction inside the 95% ellipse of the reported
    (calibrated) covariance], 'failed_rows'} for localizer `name`."""
    errors = model_errors(split, name, vehicle_frame)
    out: dict[str, Any] = {'localization_m': summarize_localization(errors['error_m'])}
    if vehicle_frame:
        out['lateral_m'] = summarize_localization(np.abs(errors['lateral_m']))
        out['longitudinal_m'] = summarize_localization(np.abs(errors['longitudinal_m']))
    if 'yaw_error_deg' in errors:
        out['orientation_deg'] = summarize_orientation(errors['yaw_error_deg'])
    pred = split.models[name]
    if pred.covariance_en_m2 is not None:
        ok = np.isfinite(pred.offset_en_m).all(axis=1)
        out['consistency'] = consistency(pred.offset_en_m[ok] - split.true_offset_en_m[ok],
                                         pred.covariance_en_m2[ok]) if ok.any() else None
    failed = np.flatnonzero(~np.isfinite(errors['error_m']))
    out['failed_items'] = [int(i) for i in split.index[failed][:MAX_LISTED_FAILURES]]
    return out


def prior_metrics(split: SplitPredictions) -> dict[str, Any]:
    """Summary of the yaw prior's error (the test-time noise), degrees."""
    return summarize_orientation(orientation_errors_deg(split.yaw_prior_rad, split.yaw_rad))


def relative_change(after: dict[str, Any], before: dict[str, Any]) -> dict[str, float | None]:
    """(after - before) / before of the localisation mean and median (negative = better)."""
    out = {}
    for key in ('mean', 'median'):
        a, b = after['localization_m'][key], before['localization_m'][key]
        ok = all(isinstance(v, float) and math.isfinite(v) for v in (a, b)) and b != 0
        out[key] = (a - b) / b if ok else None
    return out


def timing_summary(split: SplitPredictions) -> dict[str, Any]:
    """Loop wall time, loader wait, and per localizer the amortised ms per item."""
    out: dict[str, Any] = {'wall_s': split.wall_s, 'data_wait_s': split.data_wait_s,
                           'items': len(split)}
    for name, pred in split.models.items():
        out[name] = {'ms_per_item_mean': float(np.mean(pred.time_ms)),
                     'ms_per_item_median': float(np.median(pred.time_ms)),
                     'localize_s': float(np.sum(pred.time_ms) / 1e3)}
    return out


def _fmt(value: float) -> str:
    return 'nan' if not math.isfinite(value) else repr(float(value))


def write_per_item_csv(path: str | Path, split: SplitPredictions,
                       vehicle_frame: bool) -> Path:
    """One row per item: truth, noise, and for each localizer its prediction and errors.
    Columns of the compare localizer are prefixed with its name ('compare_...')."""
    path = Path(path)
    deg = np.degrees
    columns: dict[str, list[str]] = {
        'index': [str(int(i)) for i in split.index],
        'item_id': list(split.item_id),
        'true_east_m': [_fmt(v) for v in split.true_offset_en_m[:, 0]],
        'true_north_m': [_fmt(v) for v in split.true_offset_en_m[:, 1]],
        'yaw_true_deg': [_fmt(v) for v in deg(split.yaw_rad)],
        'yaw_prior_deg': [_fmt(v) for v in deg(split.yaw_prior_rad)],
        'yaw_noise_deg': [_fmt(v) for v in deg(split.yaw_noise_rad)],
    }
    for name, pred in split.models.items():
        prefix = '' if name == 'evaluated' else f'{name}_'
        errors = model_errors(split, name, vehicle_frame)
        columns[f'{prefix}pred_east_m'] = [_fmt(v) for v in pred.offset_en_m[:, 0]]
        columns[f'{prefix}pred_north_m'] = [_fmt(v) for v in pred.offset_en_m[:, 1]]
        columns[f'{prefix}error_m'] = [_fmt(v) for v in errors['error_m']]
        columns[f'{prefix}failed'] = [str(int(not math.isfinite(v))) for v in errors['error_m']]
        for key in ('lateral_m', 'longitudinal_m', 'yaw_error_deg'):
            if key in errors:
                columns[f'{prefix}{key}'] = [_fmt(v) for v in errors[key]]
        if pred.uses_orientation:
            columns[f'{prefix}yaw_pred_deg'] = [_fmt(v) for v in deg(pred.yaw_rad)]
        columns[f'{prefix}confidence'] = [_fmt(v) for v in pred.confidence]
        columns[f'{prefix}time_ms'] = [_fmt(v) for v in pred.time_ms]
    with path.open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        writer.writerows(zip(*columns.values(), strict=True))
    return path
