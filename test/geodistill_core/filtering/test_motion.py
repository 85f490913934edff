"""Odometry integration: the yaw change and the displacement over an interval, analytic."""
import math

import numpy as np
import pytest

from geodistill_core.filtering import TwistSample, integrate_twist, integrate_yaw_rate

MS = 1_000_000


def samples(rate_rps, v_mps=0.0, var_rate=1e-4, every_ms=10, count=101):
    cov = np.diag([0.01, 0.01, var_rate])
    return [TwistSample(k * every_ms * MS, v_mps, 0.0, rate_rps, cov) for k in range(count)]


def test_yaw_change_of_a_constant_turn_and_its_variance():
    twists = samples(0.2, var_rate=1e-4)  # 100 samples 10 ms apart
    change, var = integrate_yaw_rate(twists, 100 * MS, 600 * MS)
    assert change == pytest.approx(0.2 * 0.5)
    assert var == pytest.approx(50 * 1e-4 * 0.01 ** 2)  # 50 independent 10 ms holds
    assert integrate_yaw_rate(twists, 300 * MS, 300 * MS) == (0.0, 0.0)


def test_yaw_change_splits_at_a_rate_step():
    twists = samples(0.0)
    twists[50] = TwistSample(500 * MS, 0.0, 0.0, 1.0, twists[50].cov)  # 1 rad/s for 10 ms
    change, _ = integrate_yaw_rate(twists, 495 * MS, 515 * MS)
    assert change == pytest.approx(0.01)


def test_uncovered_intervals_give_none():
    twists = samples(0.1, count=11)  # 0 .. 100 ms
    assert integrate_yaw_rate(twists, 50 * MS, 900 * MS, max_hold_s=0.5) is None  # held 800 ms
    assert integrate_yaw_rate(twists[5:], 10 * MS, 60 * MS) is None  # nothing before t0
    gappy = twists[:3] + [TwistSample(900 * MS, 0.0, 0.0, 0.1, twists[0].cov)]
    assert integrate_yaw_rate(gappy, 0, 950 * MS, max_hold_s=0.5) is None


def test_displacement_of_a_constant_turn_is_the_arc_chord():
    """v = 10 m/s, 0.5 rad/s for 1 s from heading 0: the chord of a 20 m radius arc."""
    twists = samples(0.5, v_mps=10.0, every_ms=1, count=1001)
    delta, cov = integrate_twist(twists, 0, 1000 * MS, 0.0, 0.0)
    radius, angle = 20.0, 0.5
    expected = np.array([radius * math.sin(angle), radius * (1 - math.cos(angle))])
    np.testing.assert_allclose(delta, expected, atol=1e-4)
    assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() >= 0
