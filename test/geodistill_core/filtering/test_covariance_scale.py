"""InnovationScale: recovers a known covariance misscale from innovations, waits for its
frames, clamps, ignores bad input; config checks."""
import numpy as np
import pytest

from geodistill_core.filtering import CovarianceScaleConfig, InnovationScale


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
