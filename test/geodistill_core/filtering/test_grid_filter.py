"""GridFilter: analytic Gaussian cases, prediction, the per-cell GNSS error, the window."""
import math

import numpy as np
import pytest

from geodistill_core.filtering import GnssErrorModel, GridFilter
from geodistill_core.filtering.grid_filter import gaussian_kernel

WHITE = GnssErrorModel(sigma_m=0.0)  # fixes are white: the plain Gaussian product


def gaussian_lik(grid: GridFilter, mean, cov) -> np.ndarray:
    x, y = grid.cell_centres_xy_m()
    d = np.stack([x - mean[0], y - mean[1]], axis=-1)
    return np.exp(-0.5 * np.einsum('...i,ij,...j->...', d, np.linalg.inv(cov), d))


def test_gaussian_prior_times_gaussian_likelihood_is_the_product():
    grid = GridFilter(size=200, cell_m=0.25, gnss_error=WHITE)
    prior_mean, prior_cov = np.array([1.0, -2.0]), np.array([[9.0, 2.0], [2.0, 4.0]])
    lik_mean, lik_cov = np.array([3.0, 0.5]), np.array([[4.0, -1.0], [-1.0, 6.0]])
    grid.reset(prior_mean, prior_cov)
    grid.update_likelihood(gaussian_lik(grid, lik_mean, lik_cov))
    info = np.linalg.inv(prior_cov) + np.linalg.inv(lik_cov)
    cov = np.linalg.inv(info)
    mean = cov @ (np.linalg.solve(prior_cov, prior_mean) + np.linalg.solve(lik_cov, lik_mean))
    est = grid.estimate()
    np.testing.assert_allclose(est.mean_xy_m, mean, atol=0.02)
    # grid error: the cell's own variance cell^2 / 12 on the diagonal
    np.testing.assert_allclose(est.cov_xy_m2, cov + np.eye(2) * 0.25 ** 2 / 12, atol=0.05)


def test_white_gnss_update_equals_the_gaussian_product():
    grid = GridFilter(size=160, cell_m=0.25, gnss_error=WHITE)
    grid.reset((0.0, 0.0), np.eye(2) * 16.0)
    grid.update_gnss((2.0, 1.0), np.diag([4.0, 9.0]))
    est = grid.estimate()
    # per axis: mean = prior_var / (prior_var + r) * z, var = prior_var r / (prior_var + r)
    np.testing.assert_allclose(est.mean_xy_m, [16 / 20 * 2.0, 16 / 25 * 1.0], atol=0.02)
    np.testing.assert_allclose(np.diag(est.cov_xy_m2),
                               [64 / 20 + 0.25 ** 2 / 12, 144 / 25 + 0.25 ** 2 / 12], atol=0.05)


def test_prediction_moves_by_the_displacement_and_widens_by_the_process_noise():
    grid = GridFilter(size=160, cell_m=0.25, gnss_error=WHITE)
    grid.reset((0.0, 0.0), np.diag([1.0, 2.0]))
    before = grid.estimate()
    q = np.array([[0.5, 0.2], [0.2, 0.3]])
    grid.predict((3.3, -1.7), q, dt_s=0.1)
    after = grid.estimate()
    np.testing.assert_allclose(after.mean_xy_m - before.mean_xy_m, [3.3, -1.7], atol=1e-6)
    np.testing.assert_allclose(after.cov_xy_m2 - before.cov_xy_m2, q, atol=0.02)


def test_small_process_noise_accumulates_instead_of_being_lost():
    """Many steps each below the grid's resolution add up to the total process noise."""
    grid = GridFilter(size=128, cell_m=0.5, gnss_error=WHITE)
    grid.reset((0.0, 0.0), np.eye(2))
    for _ in range(100):
        grid.predict((0.8, 0.0), np.eye(2) * 0.002, dt_s=0.1)
    est = grid.estimate()
    np.testing.assert_allclose(est.mean_xy_m, [80.0, 0.0], atol=1e-6)
    expected = 1.0 + 0.2 + 0.5 ** 2 / 12
    np.testing.assert_allclose(np.diag(est.cov_xy_m2), [expected] * 2, atol=0.03)


def test_a_constant_gnss_bias_is_not_averaged_away():
    """With the correlated error modelled, 300 fixes carrying the same 3 m offset leave the
    position uncertain by about that error's sigma, not sigma / sqrt(300)."""
    grid = GridFilter(size=128, cell_m=0.5, gnss_error=GnssErrorModel(3.0, 1e6))
    grid.reset((0.0, 0.0))
    rng = np.random.default_rng(0)
    for _ in range(300):
        grid.predict((0.0, 0.0), np.zeros((2, 2)), dt_s=0.1)
        grid.update_gnss(np.array([3.0, 0.0]) + rng.normal(0, 2.0, 2), np.eye(2) * 4.0)
    est = grid.estimate()
    assert 2.5 < math.sqrt(est.cov_xy_m2[0, 0]) < 3.5
    # the white-noise filter is confidently wrong on the same data
    white = GridFilter(size=128, cell_m=0.5, gnss_error=WHITE)
    white.reset((0.0, 0.0))
    rng = np.random.default_rng(0)
    for _ in range(300):
        white.update_gnss(np.array([3.0, 0.0]) + rng.normal(0, 2.0, 2), np.eye(2) * 4.0)
    assert math.sqrt(white.estimate().cov_xy_m2[0, 0]) < 0.3


def test_a_position_measurement_makes_the_bias_observable():
    """Camera-like position evidence at the truth + biased fixes: the filter sits on the
    truth and estimates the fixes' bias."""
    grid = GridFilter(size=128, cell_m=0.5, gnss_error=GnssErrorModel(3.0, 1e6))
    grid.reset((0.0, 0.0))
    truth, bias = np.array([1.0, -1.0]), np.array([2.5, 1.5])
    for _ in range(50):
        grid.update_gnss(truth + bias, np.eye(2) * 1.0)
        grid.update_likelihood(gaussian_lik(grid, truth, np.eye(2) * 1.0))
    est = grid.estimate()
    np.testing.assert_allclose(est.mean_xy_m, truth, atol=0.1)
    np.testing.assert_allclose(est.bias_xy_m, bias, atol=0.15)


def test_recentre_follows_the_belief_and_keeps_it():
    grid = GridFilter(size=64, cell_m=0.5)
    grid.reset((0.0, 0.0), np.eye(2))
    grid.update_likelihood(gaussian_lik(grid, (9.0, -6.0), np.eye(2) * 0.5))
    mean = grid.estimate().mean_xy_m
    assert grid.recentre()
    np.testing.assert_allclose(grid.estimate().mean_xy_m, mean, atol=1e-6)
    assert np.abs(grid.centre_xy_m - mean).max() <= 0.5
    assert not grid.recentre()


def test_kernel_is_normalised_and_has_the_requested_covariance():
    cov = np.array([[4.0, 1.5], [1.5, 2.0]])
    k = gaussian_kernel(cov, 12)
    assert k.sum() == pytest.approx(1.0)
    r = np.arange(-12, 13)
    dx, dy = np.meshgrid(r, r)
    np.testing.assert_allclose([(k * dx * dx).sum(), (k * dx * dy).sum(), (k * dy * dy).sum()],
                               [4.0, 1.5, 2.0], atol=1e-3)


@pytest.mark.parametrize('bad', [(np.nan, 0.0), (np.inf, 1.0)])
def test_predict_refuses_non_finite_motion(bad):
    grid = GridFilter(size=32, cell_m=0.5)
    grid.reset((0.0, 0.0))
    with pytest.raises(ValueError, match='finite'):
        grid.predict(bad, np.eye(2), 0.1)


def test_likelihood_zero_everywhere_is_refused():
    grid = GridFilter(size=32, cell_m=0.5)
    grid.reset((0.0, 0.0))
    with pytest.raises(ValueError, match='zero wherever'):
        grid.update_likelihood(np.zeros((32, 32)))
