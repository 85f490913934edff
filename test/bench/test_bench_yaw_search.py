"""bench/bench_yaw_search.py: the replayed search and the posterior fit it reports with.

The benchmark itself renders drives and runs minutes (model cards); these tests pin its
pure parts on score curves whose answer is known, and its argument checks.
"""
import math

from bench_module import load_bench
import numpy as np
import pytest

from geodistill_core.rotation_search import RotationSearchConfig

bench = load_bench('bench_yaw_search')


def dense_curves(peaks_deg, width_deg=2.0, range_deg=10.0, step_deg=0.25):
    """(N, 2, M) dense curves (offset rad, score) with a Gaussian bump at each peak."""
    grid = np.arange(-range_deg, range_deg + 1e-9, step_deg)
    out = []
    for peak in peaks_deg:
        scores = 0.5 * np.exp(-0.5 * ((grid - peak) / width_deg) ** 2)
        out.append(np.stack([np.radians(grid), scores]))
    return np.stack(out)


def test_replayed_coarse_to_fine_search_finds_peaks_between_grid_points():
    peaks = [-7.3, -0.6, 0.0, 2.9, 8.1]
    config = RotationSearchConfig(range_deg=10.0, coarse_step_deg=2.0, fine_step_deg=0.25,
                                  temperature=0.01)
    offset, var = bench.replay(dense_curves(peaks), config)
    np.testing.assert_allclose(np.degrees(offset), peaks, atol=0.05)
    assert (var > 0).all()


def test_the_fitted_temperature_makes_the_true_yaw_likely_and_spreads_with_noisy_truth():
    """Truth at the peaks: a small temperature (sharp posterior) fits best; truth scattered
    a few degrees around them: a larger one."""
    rng = np.random.default_rng(0)
    peaks = rng.uniform(-6, 6, 60)
    config = RotationSearchConfig(range_deg=10.0, coarse_step_deg=0.25, fine_step_deg=0.25)
    dense = dense_curves(peaks)
    sharp, _ = bench.fit_posterior(dense, np.radians(peaks), config)
    noisy_truth = np.clip(peaks + rng.normal(0, 2.0, peaks.shape), -10, 10)
    broad, _ = bench.fit_posterior(dense, np.radians(noisy_truth), config)
    assert broad > 3 * sharp


def test_yaw_stats_nees_is_one_for_errors_at_their_standard_deviation():
    err = np.array([1.0, -2.0, 0.5])
    stats = bench.yaw_stats(err, np.radians(np.abs(err)) ** 2)
    assert stats['nees_mean'] == pytest.approx(1.0)
    assert stats['median_deg'] == 1.0 and stats['within_1_deg'] == pytest.approx(2 / 3)
    assert stats['std_deg_median'] == pytest.approx(1.0)
    assert math.isclose(bench.wrap_deg(359.0), -1.0)


def test_a_validation_stride_below_one_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(['--camera', 'pinhole', '--validation-stride', '0'])
    assert '--validation-stride must be >= 1' in capsys.readouterr().err
