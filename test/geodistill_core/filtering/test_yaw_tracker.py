"""YawTracker: Kalman algebra, windows, turns, odometry, gating, drops, config checks."""
import math

import numpy as np
import pytest

from geodistill_core.filtering import YawTracker, YawTrackerConfig, YawWindow

DEG = math.pi / 180
MS = 1_000_000


def run_frames(tracker, truth_deg, stamps_ns, noise_deg=0.5, prior_range_deg=20.0, seed=0,
               odometry=None, reported_std_deg=None):
    """Feed search results (truth + noise, std noise_deg; reported std reported_std_deg,
    default noise_deg) frame by frame; returns the windows and update outcomes."""
    reported = noise_deg if reported_std_deg is None else reported_std_deg
    rng = np.random.default_rng(seed)
    windows, outcomes = [], []
    for k, (yaw, t) in enumerate(zip(truth_deg, stamps_ns, strict=True)):
        change = None if odometry is None or k == 0 else odometry(k)
        window = tracker.window(t, yaw * DEG, prior_range_deg, change)
        measured = (yaw + rng.normal(0.0, noise_deg)) * DEG
        windows.append(window)
        outcomes.append(tracker.update(t, window, measured, (reported * DEG) ** 2))
    return windows, outcomes


def test_untracked_window_is_the_prior_and_a_confident_result_starts_the_track():
    tracker = YawTracker()
    window = tracker.window(0, 0.3, 20.0)
    assert window == YawWindow(0.3, 20.0, False)
    assert tracker.update(0, window, 0.31, (1 * DEG) ** 2) == 'start'
    assert tracker.tracking
    yaw, var = tracker.estimate()
    assert yaw == pytest.approx(0.31) and var == pytest.approx((1 * DEG) ** 2)


def test_an_uncertain_result_does_not_start_a_track():
    tracker = YawTracker(YawTrackerConfig(max_start_std_deg=5.0))
    window = tracker.window(0, 0.0, 20.0)
    assert tracker.update(0, window, 0.1, (8 * DEG) ** 2) == 'too_uncertain'
    assert not tracker.tracking and tracker.estimate() is None


def test_two_results_an_instant_apart_average_as_the_gaussian_product():
    tracker = YawTracker()
    tracker.update(0, tracker.window(0, 0.0, 20.0), 1.0 * DEG, (2 * DEG) ** 2)
    window = tracker.window(1000, 0.0, 20.0)  # 1 us later: no process noise to speak of
    assert window.tracked and window.centre_rad == pytest.approx(1.0 * DEG, abs=1e-6)
    assert tracker.update(1000, window, 3.0 * DEG, (2 * DEG) ** 2) == 'fused'
    yaw, var = tracker.estimate()
    assert yaw == pytest.approx(2.0 * DEG, abs=1e-6)
    assert var == pytest.approx((2 * DEG) ** 2 / 2, rel=1e-4)


def test_the_window_narrows_to_its_floor_on_a_straight_road_and_follows_a_turn():
    """10 Hz frames: 2 s straight, 3 s turning at 15 deg/s, 2 s straight; every window holds
    the true yaw, none is refused, and the straight parts search the minimum range."""
    stamps = np.arange(70) * 100 * MS
    t = stamps * 1e-9
    truth = np.where(t < 2, 0.0, np.where(t < 5, 15.0 * (t - 2), 45.0)) + 30.0
    config = YawTrackerConfig(min_range_deg=3.0)
    tracker = YawTracker(config)
    windows, outcomes = run_frames(tracker, truth, stamps, noise_deg=0.5)
    assert outcomes[0] == 'start' and set(outcomes[1:]) == {'fused'}
    for window, yaw in zip(windows, truth, strict=True):
        assert abs(math.remainder(window.centre_rad - yaw * DEG, math.tau)) < (
            window.range_deg * DEG * 0.9)
    assert max(w.range_deg for w in windows[5:20]) < 4.5  # 4 sigma of about 1 deg
    assert max(w.range_deg for w in windows[1:]) < 20.0
    assert np.mean([w.range_deg for w in windows[1:]]) < 6.0
    # inside the turn the rate is learnt: the prediction leads the measurement
    yaw, _ = tracker.estimate()
    assert math.degrees(yaw) == pytest.approx(75.0, abs=1.0)


def test_with_odometry_the_window_reaches_its_floor_through_a_turn():
    """Odometry yaw rate (to 0.02 deg per frame): the turn is predicted; the search results
    (error 1 deg, reported std 3 deg: the installed pinhole search's typical, underconfident)
    only correct the drift."""
    stamps = np.arange(60) * 100 * MS
    t = stamps * 1e-9
    rate = np.where((t >= 2) & (t < 4), 20.0, 0.0)
    truth = 10.0 + np.cumsum(rate * 0.1) - rate * 0.1
    rng = np.random.default_rng(1)

    def odometry(k):
        return (truth[k] - truth[k - 1]) * DEG + rng.normal(0, 0.02) * DEG, (0.02 * DEG) ** 2
    config = YawTrackerConfig(min_range_deg=3.0)
    tracker = YawTracker(config)
    windows, outcomes = run_frames(tracker, truth, stamps, noise_deg=1.0, odometry=odometry,
                                   reported_std_deg=3.0)
    assert outcomes.count('fused') >= 55 and tracker.tracking
    assert all(w.range_deg == pytest.approx(config.min_range_deg) for w in windows[20:])
    errors = [abs(math.degrees(w.centre_rad) - y) for w, y in zip(windows[10:], truth[10:],
                                                                   strict=True)]
    assert max(errors) < 2.0  # inside the 3 deg window, turn included
    assert tracker.stats.counters['odometry'] == 59


def test_odometry_yaw_change_moves_the_prediction():
    tracker = YawTracker(YawTrackerConfig(odometry_rate_sigma_dps=0.0))
    tracker.update(0, tracker.window(0, 0.0, 20.0), 0.0, (0.5 * DEG) ** 2)
    # the vehicle turned 3 deg in 0.1 s, measured by odometry to 0.1 deg
    window = tracker.window(100 * MS, 0.0, 20.0, (3.0 * DEG, (0.1 * DEG) ** 2))
    assert math.degrees(window.centre_rad) == pytest.approx(3.0, abs=0.1)
    no_odometry = YawTracker()
    no_odometry.update(0, no_odometry.window(0, 0.0, 20.0), 0.0, (0.5 * DEG) ** 2)
    assert no_odometry.window(100 * MS, 0.0, 20.0).centre_rad == pytest.approx(0.0)


def test_an_outlier_is_refused_and_repeated_refusals_widen_the_window_around_the_track():
    config = YawTrackerConfig(max_rejections=3, gate_chi2=4.0, lost_std_deg=10.0)
    tracker = YawTracker(config)
    stamps = np.arange(20) * 100 * MS
    run_frames(tracker, np.full(20, 10.0), stamps, noise_deg=0.3)
    t = 20 * 100 * MS
    window = tracker.window(t, 10 * DEG, 20.0)
    # at the window's edge: the search was probably cut off -> refused, the belief coasts
    edge = window.centre_rad + 0.95 * window.range_deg * DEG
    assert tracker.update(t, window, edge, (0.3 * DEG) ** 2) == 'rejected_edge'
    assert tracker.estimate()[0] == pytest.approx(window.centre_rad)  # the prediction
    for k in (1, 2):  # inside the window but far beyond the gate (about 3 predicted sigmas)
        window = tracker.window(t + k * 100 * MS, 10 * DEG, 20.0)
        far = window.centre_rad + 0.8 * window.range_deg * DEG
        assert tracker.update(t + k * 100 * MS, window, far, (0.05 * DEG) ** 2) == (
            'rejected_gate')
    assert tracker.tracking and tracker.stats.counters['lost'] == 1
    assert tracker.stats.counters['rejected_edge'] == 1
    assert tracker.stats.counters['rejected_gate'] == 2
    # lost: the next window is the prior's range, centred on the prediction, not the prior
    window = tracker.window(t + 300 * MS, 25 * DEG, 20.0)
    assert window.tracked and window.range_deg == 20.0
    assert math.degrees(window.centre_rad) == pytest.approx(10.0, abs=2.0)  # rate drift
    # and the next good result (12 deg) is accepted: the track moves there
    assert tracker.update(t + 300 * MS, window, 12 * DEG, (0.5 * DEG) ** 2) == 'fused'
    assert math.degrees(tracker.estimate()[0]) == pytest.approx(12.0, abs=0.1)


def test_the_frames_prior_does_not_move_the_window_while_tracking():
    """A fix-track prior 60 deg off (GNSS noise) neither recentres nor drops the track."""
    tracker = YawTracker()
    run_frames(tracker, np.full(10, 10.0), np.arange(10) * 100 * MS, noise_deg=0.3)
    window = tracker.window(1000 * MS, 70 * DEG, 20.0)
    assert window.tracked and math.degrees(window.centre_rad) == pytest.approx(10.0, abs=1.0)


@pytest.mark.parametrize('case, expected', [('gap', 'gap'), ('back', 'time_jump')])
def test_gaps_and_time_jumps_drop_the_track(case, expected):
    tracker = YawTracker(YawTrackerConfig(max_gap_s=1.0))
    run_frames(tracker, np.zeros(5), np.arange(5) * 100 * MS)
    last = 4 * 100 * MS
    stamp = {'gap': last + 2_000 * MS, 'back': last - 300 * MS}[case]
    window = tracker.window(stamp, 0.0, 20.0)
    assert window == YawWindow(0.0, 20.0, False)
    assert not tracker.tracking and tracker.stats.last_drop == expected


def test_reset_and_disabled():
    tracker = YawTracker()
    run_frames(tracker, np.zeros(3), np.arange(3) * 100 * MS)
    tracker.reset('service')
    assert not tracker.tracking and tracker.stats.last_drop == 'service'
    off = YawTracker(YawTrackerConfig(enabled=False))
    window = off.window(0, 0.2, 20.0)
    assert not window.tracked and off.update(0, window, 0.2, 1e-4) == 'disabled'
    assert not off.tracking


def test_non_finite_results_are_refused_without_touching_the_track():
    tracker = YawTracker()
    run_frames(tracker, np.zeros(3), np.arange(3) * 100 * MS)
    state = tracker.estimate()
    window = tracker.window(300 * MS, 0.0, 20.0)
    assert tracker.update(300 * MS, window, math.nan, 1e-4) == 'rejected_gate'
    assert tracker.update(300 * MS, window, 0.0, -1.0) == 'rejected_gate'
    assert tracker.estimate() == state


@pytest.mark.parametrize('field, value', [('window_sigmas', 0.0), ('min_range_deg', -1.0),
                                          ('gate_chi2', math.nan), ('edge_fraction', 0.5),
                                          ('max_rejections', 0),
                                          ('odometry_rate_sigma_dps', -0.1)])
def test_config_refuses_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        YawTrackerConfig(**{field: value})


def test_a_lock_on_a_wrong_peak_is_dropped_by_the_priors_mean():
    """Search results 90 deg off (a street grid) keep a track going, but the fix-track
    priors (true heading + 30 deg noise) disagree on average: dropped within
    prior_check_s; on the true heading the same noisy priors never drop it."""
    rng = np.random.default_rng(4)
    stamps = np.arange(100) * 100 * MS
    priors = np.radians(rng.normal(0.0, 30.0, 100))
    for offset_deg, dropped in ((90.0, True), (0.0, False)):
        tracker = YawTracker(YawTrackerConfig(prior_check_s=5.0, max_prior_disagreement_deg=45))
        for t, prior in zip(stamps, priors, strict=True):
            window = tracker.window(t, prior, 20.0)
            tracker.update(t, window, math.radians(offset_deg + rng.normal(0, 0.5)),
                           (0.5 * DEG) ** 2)
            if tracker.stats.counters['drops']:
                break
        assert (tracker.stats.last_drop == 'prior_disagrees') == dropped
        if dropped:
            assert t <= 3_000 * MS  # the first check after 20 frames already says so


def test_prior_disagreement_is_the_mean_offset_of_the_track_from_the_priors():
    """A track locked 30 deg off (below the 45 deg drop) against priors with 10 deg of
    noise: the reported disagreement is about 30 deg once prior_check_min_frames priors are
    in, None before and after a reset."""
    rng = np.random.default_rng(5)
    tracker = YawTracker(YawTrackerConfig(prior_check_s=5.0, max_prior_disagreement_deg=45,
                                          prior_check_min_frames=20))
    assert tracker.prior_disagreement_deg() is None
    for k in range(60):
        t = k * 100 * MS
        window = tracker.window(t, math.radians(rng.normal(0.0, 10.0)), 20.0)
        tracker.update(t, window, math.radians(30.0 + rng.normal(0, 0.5)), (0.5 * DEG) ** 2)
        if k < 19:
            assert tracker.prior_disagreement_deg() is None
    assert tracker.tracking and tracker.stats.counters['drops'] == 0
    assert tracker.prior_disagreement_deg() == pytest.approx(30.0, abs=4.0)
    tracker.reset()
    assert tracker.prior_disagreement_deg() is None


def test_a_confident_track_searches_every_nth_frame():
    tracker = YawTracker(YawTrackerConfig(search_every=3, min_range_deg=3.0))
    assert tracker.search_due(tracker.window(0, 0.0, 20.0))  # untracked: always
    tracker.update(0, YawWindow(0.0, 20.0, False), 0.0, (0.5 * DEG) ** 2)
    due = []
    for k in range(1, 40):
        window = tracker.window(k * 100 * MS, 0.0, 20.0, (0.0, (0.01 * DEG) ** 2))
        searched = tracker.search_due(window)
        due.append((window.range_deg <= 3.0 + 1e-9, searched))
        if searched:
            tracker.update(k * 100 * MS, window, 0.0, (0.5 * DEG) ** 2)
    assert all(searched for confident, searched in due if not confident)
    confident_run = [searched for confident, searched in due if confident]
    assert len(confident_run) > 20
    assert sum(confident_run) == pytest.approx(len(confident_run) / 3, abs=1)
    assert tracker.stats.counters['unsearched'] == len(confident_run) - sum(confident_run)
