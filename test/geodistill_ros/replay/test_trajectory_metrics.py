"""Trajectory metrics pinned on hand-made trajectories and synthetic (in)consistent estimators."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from geodistill_ros.replay.trajectory_metrics import (
    NEES_THRESHOLDS_2DOF,
    SIGMA_PROBABILITIES,
    FrameRecord,
    consistency_block,
    effective_sample_size,
    evaluate_trajectory,
    nees_2d,
    stack_records,
    wilson_interval,
)

NORTH, EAST = math.pi / 2, 0.0
COV = np.eye(2)


def frame(k, truth, yaw, est=None, gnss=None, est_yaw=None, cov=COV, latency=None):
    return FrameRecord(stamp_ns=1_317_042_145_964_389_445 + k * 100_000_000,
                       truth_xy_m=truth, truth_yaw_rad=yaw,
                       gnss_xy_m=truth if gnss is None else gnss, estimate_xy_m=est,
                       estimate_yaw_rad=est_yaw, estimate_cov_xy_m2=None if est is None else cov,
                       confidence=None if est is None else 0.5, latency_s=latency)


def test_lateral_longitudinal_signs_heading_north():
    # heading north: +1 m east is to the RIGHT (lateral -1); +2 m north is ahead
    report = evaluate_trajectory([frame(0, (0.0, 0.0), NORTH, est=(1.0, 0.0)),
                                  frame(1, (0.0, 10.0), NORTH, est=(0.0, 12.0))])
    assert report.lateral['mean_signed'] == pytest.approx(-0.5)  # (-1 + 0) / 2
    assert report.longitudinal['mean_signed'] == pytest.approx(1.0)  # (0 + 2) / 2
    assert report.lateral['mean'] == pytest.approx(0.5)  # abs
    assert report.lateral['rmse'] == pytest.approx(math.sqrt(0.5))
    assert report.longitudinal['recall_1m'] == 0.5


def test_lateral_longitudinal_counter_example_heading_east():
    # the same +1 m east error while heading east is purely longitudinal (ahead)
    report = evaluate_trajectory([frame(0, (5.0, 5.0), EAST, est=(6.0, 5.0))])
    assert report.longitudinal['mean_signed'] == pytest.approx(1.0)
    assert report.lateral['mean_signed'] == pytest.approx(0.0, abs=1e-12)
    report = evaluate_trajectory([frame(0, (5.0, 5.0), EAST, est=(5.0, 6.0))])
    assert report.lateral['mean_signed'] == pytest.approx(1.0)  # north = left of east


def test_position_recalls_coverage_and_rates():
    errors = [0.5, 2.0, 4.0, 10.0]
    frames = [frame(k, (float(k), 0.0), EAST, est=(float(k), e), gnss=(float(k), 3.5))
              for k, e in enumerate(errors)]
    frames += [frame(4 + k, (0.0, 0.0), EAST) for k in range(4)]  # no output
    report = evaluate_trajectory(frames[::-1])  # any order
    assert (report.frames, report.outputs, report.coverage) == (8, 4, 0.5)
    pos = report.position
    assert (pos['count'], pos['failures']) == (4, 0)
    assert pos['mean'] == pytest.approx(4.125) and pos['median'] == pytest.approx(3.0)
    assert (pos['recall_1m'], pos['recall_3m'], pos['recall_5m']) == (0.25, 0.5, 0.75)
    everyone = report.position_all_frames  # missing outputs are misses
    assert everyone['count'] == 8 and everyone['failures'] == 4
    assert everyone['recall_5m'] == 3 / 8
    assert report.gnss_on_output_frames['position']['mean'] == pytest.approx(3.5)
    assert report.gnss['position']['count'] == 8
    assert report.gnss['position']['recall_3m'] == 4 / 8  # the 4 frames without output: 0 m
    assert report.duration_s == pytest.approx(0.7)
    assert report.input_rate_hz == pytest.approx(10.0)
    assert report.output_rate_hz == pytest.approx(5.0)
    assert report.yaw is None and report.latency is None


def test_yaw_errors_wrap_and_keep_sign():
    deg = math.radians
    report = evaluate_trajectory([
        frame(0, (0.0, 0.0), deg(179.0), est=(0.0, 0.0), est_yaw=deg(-179.0)),  # +2 deg
        frame(1, (0.0, 0.0), deg(10.0), est=(0.0, 0.0), est_yaw=deg(6.0)),  # -4 deg
        frame(2, (0.0, 0.0), 0.0, est=(0.0, 0.0))])  # no yaw estimate
    assert report.yaw['count'] == 2
    assert report.yaw['mean'] == pytest.approx(3.0)
    assert report.yaw['mean_signed_deg'] == pytest.approx(-1.0)
    assert report.yaw['recall_3deg'] == 0.5


def test_latency_confidence_and_json():
    report = evaluate_trajectory([
        frame(k, (0.0, 0.0), EAST, est=(0.0, 0.0), latency=0.01 * (k + 1)) for k in range(20)]
        + [frame(20, (0.0, 0.0), EAST)])
    assert report.latency['count'] == 20
    assert report.latency['mean_s'] == pytest.approx(0.105)
    assert report.latency['max_s'] == pytest.approx(0.2)
    assert report.latency['p95_s'] == pytest.approx(np.percentile(np.arange(1, 21) * 0.01, 95))
    assert report.confidence['mean'] == pytest.approx(0.5)
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)  # NaN became null
    assert json.loads(text)['coverage'] == pytest.approx(20 / 21)
    single = evaluate_trajectory([frame(0, (0.0, 0.0), EAST)]).to_dict()
    assert single['position']['mean'] is None and single['input_rate_hz'] is None
    json.dumps(single, allow_nan=False)


def test_thresholds_are_the_chi_square_quantiles():
    assert SIGMA_PROBABILITIES[0] == pytest.approx(0.6826894921)
    assert SIGMA_PROBABILITIES[1] == pytest.approx(0.9544997361)
    for p, t in zip(SIGMA_PROBABILITIES, NEES_THRESHOLDS_2DOF, strict=True):
        assert 1.0 - math.exp(-t / 2.0) == pytest.approx(p, abs=1e-12)  # chi2(2) CDF
    assert NEES_THRESHOLDS_2DOF == pytest.approx((2.2957, 6.1801), abs=1e-4)


def test_nees_against_hand_values():
    cov = np.array([[[4.0, 0.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]]])
    err = np.array([[2.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    nees = nees_2d(err, cov)
    assert nees[0] == pytest.approx(2.0)  # 4/4 + 1/1
    assert nees[1] == pytest.approx(err[1] @ np.linalg.inv(cov[1]) @ err[1])  # 2/3
    assert math.isnan(nees[2])  # singular: invalid
    block = consistency_block(err, cov)
    assert block['invalid_covariance'] == 1 and block['count'] == 2


def chi2_cdf_even_dof(x: float, dof: int) -> float:
    """Exact chi-square CDF for an even dof: 1 - Poisson(x / 2) tail sum."""
    half, terms, log_term = x / 2.0, 0.0, -x / 2.0
    for k in range(dof // 2):
        if k:
            log_term += math.log(half) - math.log(k)
        terms += math.exp(log_term)
    return 1.0 - terms


def test_nees_interval_matches_the_exact_chi_square():
    n = 50
    lo, hi = consistency_block(np.zeros((n, 2)), np.tile(np.eye(2), (n, 1, 1)))[
        'nees_mean_interval_95']
    assert chi2_cdf_even_dof(lo * n, 2 * n) == pytest.approx(0.025, abs=0.002)
    assert chi2_cdf_even_dof(hi * n, 2 * n) == pytest.approx(0.975, abs=0.002)


def synthetic_run(scale_stated: float, n=4000, seed=0):
    """Errors drawn from random anisotropic covariances S_k; the estimator states
    scale_stated * S_k (1: consistent, < 1: overconfident)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        angle = rng.uniform(0, math.pi)
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        cov = rot @ np.diag(rng.uniform(0.2, 3.0, 2) ** 2) @ rot.T
        truth = rng.uniform(-100, 100, 2)
        est = truth + rng.multivariate_normal(np.zeros(2), cov)
        frames.append(frame(k, tuple(truth), rng.uniform(-math.pi, math.pi), est=tuple(est),
                            cov=scale_stated * cov))
    return evaluate_trajectory(frames).consistency


def test_consistent_estimator_passes():
    c = synthetic_run(1.0)
    assert c['nees_mean'] == pytest.approx(2.0, abs=0.12)
    assert c['inside_1sigma'] == pytest.approx(SIGMA_PROBABILITIES[0], abs=0.025)
    assert c['inside_2sigma'] == pytest.approx(SIGMA_PROBABILITIES[1], abs=0.012)
    assert c['consistent'] is True


def test_overconfident_and_underconfident_estimators_fail():
    over = synthetic_run(0.25)  # states half the true standard deviation
    assert over['nees_mean'] == pytest.approx(8.0, rel=0.08)
    assert over['inside_1sigma'] < 0.35 and over['inside_2sigma'] < 0.6
    assert over['consistent'] is False
    under = synthetic_run(4.0)
    assert under['nees_mean'] == pytest.approx(0.5, rel=0.08)
    assert under['inside_2sigma'] > 0.99 and under['consistent'] is False


def ar1(n, phi, rng, dims=1):
    """Stationary AR(1) series with unit variance: x_k = phi x_k-1 + sqrt(1 - phi^2) w_k."""
    x = np.empty((n, dims))
    x[0] = rng.standard_normal(dims)
    for k in range(1, n):
        x[k] = phi * x[k - 1] + math.sqrt(1 - phi * phi) * rng.standard_normal(dims)
    return x


def test_effective_sample_size_of_independent_and_ar1_series():
    rng = np.random.default_rng(3)
    assert effective_sample_size(rng.standard_normal(4000)) == pytest.approx(4000, rel=0.15)
    # AR(1): N (1 - phi) / (1 + phi); phi 0.9 -> N / 19
    series = ar1(40000, 0.9, rng)[:, 0]
    assert effective_sample_size(series) == pytest.approx(40000 / 19, rel=0.2)
    assert effective_sample_size(np.full(50, 3.0)) == 50.0   # no variance: no evidence
    assert effective_sample_size(np.array([1.0, 2.0])) == 2.0
    assert effective_sample_size(np.arange(100.0)) < 10     # a trend: nearly one sample


def test_wilson_interval_hand_values():
    lo, hi = wilson_interval(0.5, 100)
    assert (lo, hi) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    lo, hi = wilson_interval(1.0, 10)   # all inside, 10 samples: lower bound 0.72
    assert hi == 1.0 and lo == pytest.approx(10 / (10 + 1.959964 ** 2))


def test_correlated_consistent_track_is_judged_on_its_effective_samples():
    """A filtered track: errors drawn from the stated covariance but slowly varying (AR(1),
    phi 0.97, 300 frames). Counting every frame as independent rejects this consistent
    estimator most of the time; the effective-sample intervals reject it about as often as
    their 5% level says."""
    flagged_eff = flagged_iid = 0
    runs = 40
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        err = ar1(300, 0.97, rng, dims=2)
        block = consistency_block(err, np.tile(np.eye(2), (300, 1, 1)))
        assert block['effective_samples'] < 60
        flagged_eff += not block['consistent']
        n = 300
        lo, hi = (n * (1 - 1 / (9 * n) + z / (3 * math.sqrt(n))) ** 3 / n
                  for z in (-1.959964, 1.959964))   # Wilson-Hilferty with 2N dof
        flagged_iid += not lo <= block['nees_mean'] <= hi
    assert flagged_iid >= 0.5 * runs
    assert flagged_eff <= 0.2 * runs


def test_coverage_interval_flags_a_clearly_overconfident_track():
    c = synthetic_run(0.25)
    lo, hi = c['inside_2sigma_interval_95']
    assert hi < SIGMA_PROBABILITIES[1] and c['coverage_consistent'] is False
    assert synthetic_run(1.0)['coverage_consistent'] is True


def test_stack_records_fills_missing_with_nan():
    arrays = stack_records([frame(1, (1.0, 2.0), EAST), frame(0, (0.0, 0.0), EAST, est=(0, 1))])
    assert arrays.has_output.tolist() == [True, False]  # sorted by stamp
    assert np.isnan(arrays.estimate_xy_m[1]).all() and np.isnan(arrays.estimate_cov_xy_m2[1]).all()
    with pytest.raises(ValueError, match='no frames'):
        stack_records([])
