"""Rotation search on mock score curves: known yaw, variance, coarse to fine, batching, errors."""
import math

import pytest
import torch

from geodistill_core.rotation_search import (
    RotationSearchConfig,
    coarse_offsets_rad,
    search_yaw,
)

DEG = math.pi / 180


def quadratic_scorer(true_yaw_rad, curvature_per_rad2, calls=None):
    """score = -curvature / 2 * (yaw - true)^2 (a parabola: the peak fit is exact)."""
    true = torch.as_tensor(true_yaw_rad, dtype=torch.float64)

    def scorer(yaw_rad):
        if calls is not None:
            calls.append(tuple(yaw_rad.shape))
        return -0.5 * curvature_per_rad2 * (yaw_rad.double() - true[:, None]) ** 2
    return scorer


def test_recovers_a_known_yaw_off_the_grid():
    true = torch.tensor([0.3, -2.0, 3.1])
    prior = true + torch.tensor([7.3, -4.1, 9.6]) * DEG
    config = RotationSearchConfig(range_deg=10, coarse_step_deg=2, fine_step_deg=0.25)
    found = search_yaw(quadratic_scorer(true, 50.0), prior, config)
    assert torch.allclose(found.yaw_rad, true.double(), atol=1e-6)
    # counter-example: the prior itself is degrees away
    assert ((prior - true).abs() > 4 * DEG).all()


def test_variance_matches_the_gaussian_posterior_and_shrinks_with_a_sharper_curve():
    """score = -a/2 (yaw - y0)^2 at temperature T: posterior N(y0, T / a)."""
    config = RotationSearchConfig(range_deg=10, coarse_step_deg=2, fine_step_deg=0.02,
                                  temperature=1.0)
    true = torch.tensor([1.0])
    variances = []
    for sigma_deg in (0.5, 0.2):
        a = 1.0 / (sigma_deg * DEG) ** 2
        found = search_yaw(quadratic_scorer(true, a), true + 0.1, config)
        variances.append(float(found.yaw_var_rad2[0]))
        assert variances[-1] == pytest.approx((sigma_deg * DEG) ** 2, rel=0.03)
        assert float(found.posterior.sum()) == pytest.approx(1.0)
    assert variances[1] < variances[0] / 5


def test_the_outlier_floor_adds_the_uniform_spread():
    """posterior (1 - w) p + w uniform: variance (1 - w) var_p + w E_uniform[(x - est)^2]."""
    true = torch.tensor([0.0])
    base = RotationSearchConfig(range_deg=10, coarse_step_deg=2, fine_step_deg=0.02,
                                temperature=1.0)
    scorer = quadratic_scorer(true, 1.0 / (0.3 * DEG) ** 2)
    sharp = search_yaw(scorer, true, base)
    floored = search_yaw(scorer, true, RotationSearchConfig(**{**base.to_dict(),
                                                               'outlier_weight': 0.1}))
    assert float(floored.posterior.sum()) == pytest.approx(1.0)
    uniform = (10 * DEG) ** 2 / 3  # about an estimate at the range's centre
    expected = 0.9 * float(sharp.yaw_var_rad2[0]) + 0.1 * uniform
    # (candidates sit off their cells' centres next to the fine window: about 2%)
    assert float(floored.yaw_var_rad2[0]) == pytest.approx(expected, rel=0.03)
    assert float(floored.yaw_var_rad2[0]) > 5 * float(sharp.yaw_var_rad2[0])


def test_a_flat_curve_gives_the_uniform_variance_of_the_range():
    config = RotationSearchConfig(range_deg=10, coarse_step_deg=2, fine_step_deg=0.5)
    found = search_yaw(lambda yaw: torch.zeros_like(yaw), torch.tensor([0.5]), config)
    # uniform over [-R, R] about a point inside: at least R^2 / 3
    assert float(found.yaw_var_rad2[0]) >= (10 * DEG) ** 2 / 3 * 0.99


@pytest.mark.parametrize('range_deg, coarse, fine', [(10, 2, 0.25), (45, 3, 0.5), (45, 5, 1)])
def test_coarse_to_fine_equals_brute_force_on_the_fine_grid(range_deg, coarse, fine):
    """Unimodal curves (wider than the coarse step): same estimate as scoring every fine
    candidate, with far fewer candidates scored."""
    gen = torch.Generator().manual_seed(3)
    prior = torch.rand(16, generator=gen) * 6 - 3
    true = prior + (torch.rand(16, generator=gen) * 2 - 1) * (range_deg - 1) * DEG
    curve = lambda yaw: -(1 - torch.cos(yaw.double() - true[:, None])) / (2 * coarse * DEG) ** 2  # noqa: E731
    calls = []
    c2f = search_yaw(lambda y: (calls.append(y.shape[1]), curve(y))[1], prior,
                     RotationSearchConfig(range_deg=range_deg, coarse_step_deg=coarse,
                                          fine_step_deg=fine))
    brute = search_yaw(curve, prior, RotationSearchConfig(
        range_deg=range_deg, coarse_step_deg=fine, fine_step_deg=fine))
    assert torch.allclose(c2f.yaw_rad, brute.yaw_rad, atol=1e-9)
    assert sum(calls) < brute.candidates_rad.shape[1] / 2
    assert torch.allclose(c2f.yaw_rad, true.double(), atol=0.05 * fine * DEG)


def test_batched_frames_equal_one_at_a_time():
    true = torch.tensor([0.2, 1.5, -0.7, 2.9])
    prior = true + torch.tensor([3.0, -8.0, 0.4, 9.0]) * DEG
    config = RotationSearchConfig(range_deg=10, coarse_step_deg=2, fine_step_deg=0.25,
                                  temperature=0.5)
    batched = search_yaw(quadratic_scorer(true, 300.0), prior, config)
    for b in range(4):
        alone = search_yaw(quadratic_scorer(true[b:b + 1], 300.0), prior[b:b + 1], config)
        for name in ('yaw_rad', 'yaw_var_rad2', 'candidates_rad', 'scores', 'posterior'):
            assert torch.allclose(getattr(batched, name)[b], getattr(alone, name)[0]), name


def test_candidates_stay_inside_the_range_and_cover_it():
    config = RotationSearchConfig(range_deg=45, coarse_step_deg=3, fine_step_deg=0.5)
    offsets = coarse_offsets_rad(config)
    assert offsets[0] == pytest.approx(-45 * DEG) and offsets[-1] == pytest.approx(45 * DEG)
    assert (offsets.diff() <= 3 * DEG + 1e-12).all()
    true = torch.tensor([44.9 * DEG])  # peak at the edge: fine window pushed inside
    found = search_yaw(quadratic_scorer(true, 100.0), torch.zeros(1), config)
    assert (found.candidates_rad.abs() <= 45 * DEG + 1e-9).all()
    assert float(found.yaw_rad[0]) == pytest.approx(44.9 * DEG, abs=0.5 * DEG)


@pytest.mark.parametrize('kwargs, message', [
    ({'range_deg': 0}, r'range_deg must be in \(0, 180\]'),
    ({'range_deg': -5}, r'range_deg must be in \(0, 180\]'),
    ({'range_deg': 200}, r'range_deg must be in \(0, 180\]'),
    ({'fine_step_deg': 3}, r'0 < fine_step_deg <= coarse_step_deg'),
    ({'coarse_step_deg': 0}, r'0 < fine_step_deg <= coarse_step_deg'),
    ({'temperature': float('nan')}, r'finite numbers'),
    ({'temperature': 0}, r'temperature must be > 0'),
    ({'chunk': 0}, r'chunk must be >= 1'),
    ({'outlier_weight': 1.0}, r'outlier_weight must be in \[0, 1\)'),
])
def test_bad_configs_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RotationSearchConfig(**kwargs)


def test_bad_priors_and_scorers_are_clear_errors():
    config = RotationSearchConfig()
    scorer = quadratic_scorer(torch.zeros(1), 1.0)
    with pytest.raises(ValueError, match='yaw_prior_rad must be finite'):
        search_yaw(scorer, torch.tensor([float('nan')]), config)
    with pytest.raises(ValueError, match=r'yaw_prior_rad must be \(B,\)'):
        search_yaw(scorer, torch.zeros(1, 1), config)
    with pytest.raises(ValueError, match='scorer returned'):
        search_yaw(lambda yaw: yaw[:, :1], torch.zeros(1), config)
