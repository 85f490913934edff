"""HeatmapCalibration: the mixture by hand, checkpoint round trip, and both fits recovering
a known temperature and outlier weight from frames generated with them."""
import json
import math

import numpy as np
import pytest
import torch

from geodistill_core.filtering import HeatmapCalibration, calibration_from_record
from geodistill_core.filtering.calibration_fit import (
    CalibrationSample,
    consistency,
    coverage_scale,
    fit_from_gnss,
    fit_with_truth,
)
from geodistill_core.heatmap import heatmap_to_pose

CELLS, CELL_M = 41, 0.5


def test_temperature_and_floor_by_hand():
    lp = torch.log(torch.tensor([[[0.5, 0.3], [0.2, 0.0]]]))  # one masked cell (-inf)
    cal = HeatmapCalibration(temperature=2.0, outlier_weight=0.3)
    q = cal.log_prob(lp).exp()[0]
    sharp = np.sqrt([0.5, 0.3, 0.2])  # p^(1/T), renormalised
    sharp /= sharp.sum()
    expected = 0.7 * sharp + 0.3 / 3  # the floor spreads over the 3 valid cells
    np.testing.assert_allclose(q.flatten()[:3].numpy(), expected, rtol=1e-5)
    assert q[1, 1] == 0.0
    assert float(q.sum()) == pytest.approx(1.0, abs=1e-6)


def test_identity_changes_nothing_and_bad_values_are_refused():
    lp = torch.log_softmax(torch.randn(2, 5, 5).flatten(1), 1).reshape(2, 5, 5)
    assert torch.equal(HeatmapCalibration().log_prob(lp), lp)
    with pytest.raises(ValueError, match='temperature'):
        HeatmapCalibration(temperature=0.0)
    with pytest.raises(ValueError, match='outlier_weight'):
        HeatmapCalibration(outlier_weight=1.0)
    with pytest.raises(ValueError, match='unknown keys'):
        HeatmapCalibration.from_dict({'temperature': 2.0, 'tau': 1.0})


def test_round_trip_through_a_checkpoint_record():
    cal = HeatmapCalibration(1.7, 0.05, 'truth', 'val drives', 900, {'nll': -3.2})
    record = json.loads(json.dumps({'calibration': cal.to_dict()}))
    assert calibration_from_record(record) == cal
    assert calibration_from_record({}) == HeatmapCalibration()


def test_calibration_widens_the_pose_covariance_and_keeps_the_peak():
    scores = torch.zeros(1, 21, 21)
    scores[0, 12, 8] = 0.3
    scores[0, 11, 8] = scores[0, 13, 8] = 0.2
    plain = heatmap_to_pose(scores, 0.5)
    wide = heatmap_to_pose(scores, 0.5, calibration=HeatmapCalibration(3.0, 0.1))
    torch.testing.assert_close(wide.offset_en_m, plain.offset_en_m)
    assert torch.trace(wide.covariance_en_m2[0]) > 1.3 * torch.trace(plain.covariance_en_m2[0])
    assert float(wide.prob.sum()) == pytest.approx(1.0, abs=1e-5)


def synthetic_frames(n, true_t, outlier_weight, fix_sigma_m, seed=0):
    """Heatmaps N(peak, 1 m^2) at base tau; the truth N(peak, true_t m^2) (so the right
    temperature is true_t) or, with prob outlier_weight, uniform over the heatmap."""
    rng = np.random.default_rng(seed)
    e = (np.arange(CELLS) - (CELLS - 1) / 2) * CELL_M
    east, north = np.meshgrid(e, -e)
    half = e[-1]
    samples = []
    for _ in range(n):
        peak = rng.uniform(-4, 4, 2)
        lp = -0.5 * ((east - peak[0]) ** 2 + (north - peak[1]) ** 2)
        lp = lp - np.log(np.exp(lp).sum())
        if rng.random() < outlier_weight:
            truth = rng.uniform(-half, half, 2)
        else:
            truth = peak + rng.normal(0, math.sqrt(true_t), 2)
        fix = truth + rng.normal(0, fix_sigma_m, 2)
        samples.append(CalibrationSample(lp.astype(np.float32), CELL_M, peak, truth, fix,
                                         np.eye(2) * fix_sigma_m ** 2))
    return samples


def test_fit_with_truth_recovers_temperature_and_outlier_weight():
    cal = fit_with_truth(synthetic_frames(600, true_t=4.0, outlier_weight=0.2,
                                          fix_sigma_m=3.0))
    assert cal.method == 'truth' and cal.frames == 600
    assert 3.2 < cal.temperature < 5.0
    assert 0.13 < cal.outlier_weight < 0.3
    assert cal.stats['mean_log_likelihood'] > cal.stats['identity_mean_log_likelihood']
    # the covariance scale puts 95% of these truths inside the 95% ellipse
    assert cal.stats['single_frame']['inside_95'] == pytest.approx(0.95, abs=0.01)
    assert cal.covariance_scale != 1.0


def test_truth_fit_reports_each_drive_when_one_pooled_scale_fits_neither():
    """Two drives whose truths scatter 1 and 3 m^2 around the same kind of heatmap: the
    pooled fit is right on average, the per-drive report shows one overconfident and one
    underconfident drive; without drive names there is no per-drive report."""
    from dataclasses import replace
    tight = [replace(s, drive='a') for s in synthetic_frames(300, 1.0, 0.0, 3.0, seed=2)]
    wide = [replace(s, drive='b') for s in synthetic_frames(300, 9.0, 0.0, 3.0, seed=3)]
    cal = fit_with_truth(tight + wide)
    per = cal.stats['single_frame_per_drive']
    assert list(per) == ['a', 'b'] and per['a']['frames'] == per['b']['frames'] == 300
    assert per['a']['nees_mean'] < cal.stats['single_frame']['nees_mean'] < per['b']['nees_mean']
    assert per['a']['inside_95'] > 0.95 > per['b']['inside_95']
    unnamed = fit_with_truth(synthetic_frames(100, 4.0, 0.0, 3.0))
    assert 'single_frame_per_drive' not in unnamed.stats


def test_fit_from_gnss_finds_the_temperature_without_the_truth():
    samples = synthetic_frames(600, true_t=4.0, outlier_weight=0.0, fix_sigma_m=2.0, seed=1)
    blind = [CalibrationSample(s.log_prob, s.cell_m, s.peak_en_m, None, s.fix_en_m,
                               s.fix_cov_en_m2) for s in samples]
    cal = fit_from_gnss(blind)
    assert cal.method == 'gnss'
    assert 2.5 < cal.temperature < 6.0
    assert cal.stats['mean_nis'] == pytest.approx(2.0, abs=0.25)
    # and the label-free calibration is consistent against the truth it never saw
    with_truth = fit_from_gnss(samples)
    assert 1.4 < with_truth.stats['single_frame_check_with_truth']['nees_mean'] < 2.8


def test_consistency_of_a_known_gaussian():
    rng = np.random.default_rng(3)
    cov = np.array([[4.0, 1.0], [1.0, 2.0]])
    errors = rng.multivariate_normal([0, 0], cov, 4000)
    c = consistency(errors, np.repeat(cov[None], 4000, 0))
    assert c['nees_mean'] == pytest.approx(2.0, abs=0.1)
    assert c['inside_95'] == pytest.approx(0.95, abs=0.015)


def test_fits_refuse_what_they_cannot_use():
    samples = synthetic_frames(5, 1.0, 0.0, 1.0)
    no_truth = [CalibrationSample(s.log_prob, s.cell_m, s.peak_en_m) for s in samples]
    with pytest.raises(ValueError, match='truth'):
        fit_with_truth(no_truth)
    with pytest.raises(ValueError, match='fix'):
        fit_from_gnss(no_truth)
    with pytest.raises(ValueError, match='no frames'):
        fit_with_truth([])


def test_covariance_scale_multiplies_the_published_covariance_only():
    scores = torch.zeros(1, 21, 21)
    scores[0, 12, 8] = 0.3
    scores[0, 11, 8] = scores[0, 13, 8] = 0.2
    base = HeatmapCalibration(3.0, 0.1)
    scaled = HeatmapCalibration(3.0, 0.1, covariance_scale=0.4)
    a = heatmap_to_pose(scores, 0.5, calibration=base)
    b = heatmap_to_pose(scores, 0.5, calibration=scaled)
    torch.testing.assert_close(b.covariance_en_m2, 0.4 * a.covariance_en_m2)
    torch.testing.assert_close(b.offset_en_m, a.offset_en_m)
    torch.testing.assert_close(b.prob, a.prob)  # the likelihood the filter fuses is untouched
    lp = torch.log_softmax(scores.flatten(1) / 0.06, 1).reshape(1, 21, 21)
    torch.testing.assert_close(scaled.log_prob(lp), base.log_prob(lp))
    assert HeatmapCalibration.from_dict({'temperature': 2.0}).covariance_scale == 1.0
    with pytest.raises(ValueError, match='covariance_scale'):
        HeatmapCalibration(covariance_scale=0.0)


def test_coverage_scale_undoes_a_known_overstatement():
    rng = np.random.default_rng(4)
    cov = np.array([[4.0, 1.0], [1.0, 2.0]])
    errors = rng.multivariate_normal([0, 0], cov, 4000)
    stated = np.repeat(4.0 * cov[None], 4000, 0)  # four times too wide
    scale = coverage_scale(errors, stated)
    assert scale == pytest.approx(0.25, rel=0.08)
    assert consistency(errors, scale * stated)['inside_95'] == pytest.approx(0.95, abs=0.002)
    assert coverage_scale(np.zeros((3, 2)), np.repeat(np.eye(2)[None], 3, 0)) == 0.05
