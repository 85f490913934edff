"""InnovationScale: recovers a known covariance misscale from innovations, waits for its
frames, clamps, ignores bad input; config checks."""
import numpy as np
import pytest

from geodistill_core.filtering import CovarianceScaleConfig, InnovationScale
from geodistill_core.filtering.covariance_scale import CHI2_2D_99, gate_inflation


def feed(scale_state, true_scale, n, seed=0, belief_sigma_m=0.5):
    """Frames whose stated covariance C is off by true_scale (true error ~ N(0, true_scale
    C)) against a belief with its own error N(0, P)."""
    rng = np.random.default_rng(seed)
    P = np.eye(2) * belief_sigma_m ** 2
    for _ in range(n):
        a, b = rng.uniform(1.0, 9.0, 2)
        angle = rng.uniform(0, np.pi)
        R = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        C = R @ np.diag([a, b]) @ R.T
        truth = rng.normal(0, 10, 2)
        estimate = truth + rng.multivariate_normal(np.zeros(2), true_scale * C)
        belief = truth + rng.multivariate_normal(np.zeros(2), P)
        assert scale_state.add(estimate, C, belief, P)


@pytest.mark.parametrize('true_scale', [0.3, 1.0, 2.5])
def test_the_scale_of_a_misscaled_covariance_is_recovered(true_scale):
    scale = InnovationScale(CovarianceScaleConfig(window=300, min_frames=30))
    feed(scale, true_scale, 300)
    assert scale.scale() == pytest.approx(true_scale, rel=0.2)


def test_one_until_min_frames_and_when_disabled():
    scale = InnovationScale(CovarianceScaleConfig(min_frames=30))
    feed(scale, 0.3, 29)
    assert scale.scale() == 1.0 and scale.frames == 29
    feed(scale, 0.3, 1, seed=1)
    assert scale.scale() < 0.6
    off = InnovationScale(CovarianceScaleConfig(enabled=False))
    feed(off, 0.3, 100)
    assert off.scale() == 1.0
    scale.reset()
    assert scale.scale() == 1.0 and scale.frames == 0


def test_the_scale_is_clamped():
    scale = InnovationScale(CovarianceScaleConfig(min_frames=10, max_scale=5.0))
    feed(scale, 50.0, 50)
    assert scale.scale() == 5.0


def test_bad_frames_are_ignored():
    scale = InnovationScale()
    P = np.eye(2)
    assert not scale.add([np.nan, 0.0], np.eye(2), [0, 0], P)
    assert not scale.add([1.0, 0.0], np.zeros((2, 2)), [0, 0], P)
    assert not scale.add([1.0, 0.0], np.eye(2), [0, 0], -P)
    assert scale.frames == 0


@pytest.mark.parametrize('kwargs', [{'window': 0}, {'min_frames': 400},
                                    {'target_nis': 0.0}, {'min_scale': 2.0},
                                    {'max_scale': 0.5}])
def test_config_refuses_bad_values(kwargs):
    with pytest.raises(ValueError, match='covariance scale'):
        CovarianceScaleConfig(**kwargs)


# --- the per-frame gate -------------------------------------------------------------------
@pytest.mark.parametrize('c, p, dist_m', [(1.0, 0.25, 4.0), (4.0, 1.0, 12.0), (0.5, 0.0, 3.0)])
def test_a_gated_frame_is_widened_to_its_innovation(c, p, dist_m):
    """Isotropic C = c I and P = p I: NIS(k) = d^2 / (k c + p), so the gated frame's k is
    (d^2 / 2 - p) / c."""
    nu = dist_m * np.array([0.6, -0.8])
    assert dist_m ** 2 / (c + p) > CHI2_2D_99  # the cases are gated
    k = gate_inflation(nu, c * np.eye(2), p * np.eye(2))
    assert k == pytest.approx((dist_m ** 2 / 2 - p) / c, rel=1e-6)


def test_a_frame_within_the_gate_is_untouched():
    C, P = np.diag([4.0, 1.0]), np.diag([0.5, 0.5])
    nu = np.array([2.0, 1.0])  # NIS = 4 / 4.5 + 1 / 1.5 = 1.56
    assert gate_inflation(nu, C, P) == 1.0
    # just past the gate: widened just enough to sit at the target
    nu = np.array([6.4, 0.0])  # NIS = 40.96 / 4.5 = 9.10 < 9.21 -> untouched
    assert gate_inflation(nu, C, P) == 1.0
    nu = np.array([6.5, 0.0])  # 9.39 > 9.21
    k = gate_inflation(nu, C, P)
    assert k == pytest.approx((6.5 ** 2 / 2 - 0.5) / 4.0, rel=1e-6)


def test_an_anisotropic_gated_frame_reaches_the_target_nis():
    C = np.array([[4.0, 1.5], [1.5, 1.0]])
    P = np.array([[0.3, -0.1], [-0.1, 0.6]])
    nu = np.array([-3.0, 7.0])
    k = gate_inflation(nu, C, P)
    S = k * C + P
    assert k > 1 and nu @ np.linalg.solve(S, nu) == pytest.approx(2.0, rel=1e-6)
    # a custom target and gate
    k5 = gate_inflation(nu, C, P, gate_nis=20.0, target_nis=5.0)
    assert nu @ np.linalg.solve(k5 * C + P, nu) == pytest.approx(5.0, rel=1e-6)
    assert gate_inflation(nu, C, P, gate_nis=1e6) == 1.0


def test_gate_off_bad_input_and_bad_settings():
    C, P, nu = np.eye(2), np.eye(2), np.array([30.0, 0.0])
    assert gate_inflation(nu, C, P, gate_nis=0.0) == 1.0
    assert gate_inflation(np.array([np.nan, 0.0]), C, P) == 1.0
    assert gate_inflation(nu, C, np.full((2, 2), np.inf)) == 1.0
    with pytest.raises(ValueError, match='target_nis < gate_nis'):
        gate_inflation(nu, C, P, gate_nis=2.0, target_nis=3.0)
