"""SequenceFusion: robustness to outlier heatmaps, resets, odometry rejection, motion."""
import dataclasses
import math

import numpy as np
import pytest

from geodistill_core.filtering import (
    FusionConfig,
    HeatmapMeasurement,
    SequenceFusion,
    TwistSample,
)

T0 = 1_000_000_000_000
STEP = 1_000_000  # 1 ms: no motion worth a blur
CELL = 0.5


def heatmap_at(peak_xy, crop_centre_xy, sigma_m=0.7, size=96, floor=0.0) -> HeatmapMeasurement:
    """A north-up heatmap (row 0 north) with a Gaussian blob at map point peak_xy."""
    e = (np.arange(size) - (size - 1) / 2) * CELL
    east, north = np.meshgrid(e, -e)
    d2 = (east + crop_centre_xy[0] - peak_xy[0]) ** 2 + (north + crop_centre_xy[1]
                                                         - peak_xy[1]) ** 2
    p = np.exp(-0.5 * d2 / sigma_m ** 2)
    p = (1 - floor * size * size) * p / p.sum() + floor
    return HeatmapMeasurement(p, CELL, np.asarray(crop_centre_xy, float), 0.0, (0.0, 0.0),
                              floor)


def twist(k, v=0.0, cov=None):
    return TwistSample(T0 + k * 100_000_000, v, 0.0, 0.0,
                       np.diag([0.01, 0.01, 1e-4]) if cov is None else cov)


def as_if_moving(config=None) -> FusionConfig:
    """config under which the parked test car of these tests stands for a moving one: every
    frame at camera_weight, the process noise in full (the motion scalings have their own
    tests)."""
    return dataclasses.replace(config or FusionConfig(), camera_weight_distance_m=0.0,
                               process_noise_full_speed_mps=0.0)


def converged(config=None, steps=30, truth=(0.0, 0.0)):
    fusion = SequenceFusion(as_if_moving(config))
    for k in range(steps):
        fusion.add_fix(T0 + k * 100_000_000, truth, np.eye(2) * 4.0)
        fusion.add_twist(twist(k))
        out = fusion.step(T0 + k * 100_000_000, 0.0, heatmap_at(truth, truth))
    return fusion, out


def test_heatmap_blob_position_from_the_lookup_geometry():
    """The likelihood peaks where the heatmap says the camera is (crop frame -> map)."""
    m = heatmap_at((3.0, -4.0), (1.0, 1.0))
    xs, ys = np.meshgrid(np.linspace(-5, 10, 151), np.linspace(-10, 8, 181))

    def centroid(d):
        return (d * xs).sum() / d.sum(), (d * ys).sum() / d.sum()
    assert centroid(m.density_at(xs, ys)) == pytest.approx((3.0, -4.0), abs=0.02)
    # density: probability per cell / cell area, integrates to about 1
    assert (m.density_at(xs, ys) * 0.1 * 0.1).sum() == pytest.approx(1.0, abs=0.02)
    # a lever arm: base_link is lever behind the camera
    m2 = HeatmapMeasurement(m.prob, CELL, m.crop_centre_xy_m, 0.0, (1.5, 0.0), 0.0)
    assert centroid(m2.density_at(xs, ys)) == pytest.approx((1.5, -4.0), abs=0.02)
    # the crop rotated from the map by +90 deg (CCW): crop east = map north
    m3 = HeatmapMeasurement(m.prob, CELL, m.crop_centre_xy_m, math.pi / 2, (0.0, 0.0), 0.0)
    # blob at crop offset (east 2, north -5) -> map offset R(90)(2, -5) = (5, 2)
    assert centroid(m3.density_at(xs, ys)) == pytest.approx((6.0, 3.0), abs=0.02)


@pytest.mark.parametrize('camera_weight', [0.25, 1.0])
def test_one_outlier_heatmap_moves_a_converged_belief_by_less_than_half_a_metre(camera_weight):
    fusion, before = converged(FusionConfig(camera_weight=camera_weight))
    wrong = heatmap_at((8.0, 5.0), (0.0, 0.0), sigma_m=0.5)  # a confident, wrong frame
    fusion.add_fix(T0 + 30 * 100_000_000, (0.0, 0.0), np.eye(2) * 4.0)
    fusion.add_twist(twist(30))
    after = fusion.step(T0 + 30 * 100_000_000, 0.0, wrong)
    assert np.linalg.norm(after.mean_xy_m - before.mean_xy_m) < 0.5
    assert after.camera_outlier_prob > 0.5
    assert fusion.stats.counters['camera_outliers'] == 1


def test_the_floor_is_what_protects_the_belief():
    """Counter-example: without a floor the same wrong frame drags the belief away."""
    fusion, before = converged(FusionConfig(min_outlier_weight=0.0, camera_weight=1.0))
    wrong = heatmap_at((3.0, 2.0), (0.0, 0.0), sigma_m=0.3)
    fusion.add_fix(T0 + 30 * 100_000_000, (0.0, 0.0), np.eye(2) * 4.0)
    after = fusion.step(T0 + 30 * 100_000_000, 0.0, wrong)
    assert np.linalg.norm(after.mean_xy_m - before.mean_xy_m) > 1.0


def test_odometry_prediction_follows_the_motion():
    fusion = SequenceFusion(FusionConfig(gnss_bias_sigma_m=0.0))
    fusion.add_fix(T0, (0.0, 0.0), np.eye(2) * 0.25)
    for k in range(11):
        fusion.add_twist(twist(k, v=10.0))
    fusion.step(T0, math.pi / 2, None)  # heading north
    out = fusion.step(T0 + 1_000_000_000, math.pi / 2, None)
    assert out.motion == 'odometry'
    np.testing.assert_allclose(out.mean_xy_m, [0.0, 10.0], atol=0.05)


@pytest.mark.parametrize('sample, reason', [
    (TwistSample(T0, math.nan, 0.0, 0.0, np.eye(3)), 'non_finite'),
    (TwistSample(T0, 1.0, 0.0, 0.0, np.diag([-1.0, 1.0, 1.0])), 'negative_variance'),
])
def test_bad_odometry_is_rejected_and_counted(sample, reason):
    fusion = SequenceFusion()
    assert fusion.add_twist(sample) == reason
    assert fusion.stats.counters['odometry_rejected'] == 1


def test_odometry_going_backwards_is_rejected():
    fusion = SequenceFusion()
    assert fusion.add_twist(twist(5)) is None
    assert fusion.add_twist(twist(4)) == 'stamp_not_increasing'
    assert fusion.add_twist(twist(5)) == 'stamp_not_increasing'
    assert fusion.stats.counters['odometry_rejected'] == 2


def test_stamps_jumping_back_reset_the_filter():
    fusion, _ = converged()
    earlier = T0 - 60_000_000_000
    fusion.add_fix(earlier, (50.0, 0.0), np.eye(2) * 4.0)
    out = fusion.step(earlier, 0.0, None)
    assert out.reset == 'time_jump'
    assert np.linalg.norm(out.mean_xy_m - [50.0, 0.0]) < 1.0


def test_fixes_that_jump_and_stay_reset_the_filter_after_fix_jump_count():
    config = FusionConfig(fix_jump_count=5)
    fusion, _ = converged(config)
    resets = []
    for k in range(30, 40):
        stamp = T0 + k * 100_000_000
        fusion.add_fix(stamp, (200.0, 0.0), np.eye(2) * 4.0)  # a 200 m jump
        fusion.add_twist(twist(k))
        out = fusion.step(stamp, 0.0, None)
        resets.append(out.reset)
    assert fusion.stats.counters['fixes_gated'] == 5
    assert 'fix_jump' in resets
    assert np.linalg.norm(out.mean_xy_m - [200.0, 0.0]) < 2.0


def test_a_single_jumping_fix_is_gated_not_fused():
    fusion, before = converged()
    stamp = T0 + 30 * 100_000_000
    fusion.add_fix(stamp, (60.0, 0.0), np.eye(2) * 4.0)
    out = fusion.step(stamp, 0.0, None)
    assert out.fixes_gated == 1 and out.fixes_fused == 0
    assert np.linalg.norm(out.mean_xy_m - before.mean_xy_m) < 0.3


def test_reset_service_restarts_at_the_latest_fix():
    fusion, _ = converged()
    fusion.reset('service')
    stamp = T0 + 30 * 100_000_000
    fusion.add_fix(stamp, (10.0, 0.0), np.eye(2) * 4.0)
    out = fusion.step(stamp, 0.0, None)
    assert out.reset == 'service'
    assert fusion.stats.last_reset == 'service'
    assert np.linalg.norm(out.mean_xy_m - [10.0, 0.0]) < 1.0


def test_no_output_before_the_first_fix():
    assert SequenceFusion().step(T0, 0.0, None) is None


def test_gnss_mode_ignores_the_camera():
    fusion = SequenceFusion(FusionConfig(mode='gnss'))
    fusion.add_fix(T0, (0.0, 0.0), np.eye(2) * 4.0)
    out = fusion.step(T0, 0.0, heatmap_at((5.0, 0.0), (0.0, 0.0)))
    assert out.camera_outlier_prob is None
    assert np.linalg.norm(out.mean_xy_m) < 0.5


def test_the_same_frame_twice_is_fused_once():
    fusion = SequenceFusion()
    fusion.add_fix(T0, (0.0, 0.0), np.eye(2) * 25.0)
    once = fusion.step(T0, 0.0, heatmap_at((2.0, 0.0), (0.0, 0.0), sigma_m=1.0))
    again = fusion.step(T0, 0.0, heatmap_at((2.0, 0.0), (0.0, 0.0), sigma_m=1.0))
    np.testing.assert_allclose(again.cov_xy_m2, once.cov_xy_m2)
    np.testing.assert_allclose(again.mean_xy_m, once.mean_xy_m)


def test_camera_weight_tempers_each_frame():
    """A weight of 0.5 is a heatmap counted half: the posterior of one sharp frame on a
    flat prior has twice the variance."""
    def one_frame(weight):
        fusion = SequenceFusion(FusionConfig(camera_weight=weight, min_outlier_weight=0.0,
                                             gnss_bias_sigma_m=0.0))
        fusion.add_fix(T0, (0.0, 0.0), np.eye(2) * 1e4)  # an uninformative fix
        fusion.step(T0, 0.0, None)  # the start (the first frame after it counts fully)
        fusion.add_fix(T0 + STEP, (0.0, 0.0), np.eye(2) * 1e8)
        return fusion.step(T0 + STEP, 0.0, heatmap_at((1.0, 2.0), (0.0, 0.0), sigma_m=1.0))
    full, half = one_frame(1.0), one_frame(0.5)
    np.testing.assert_allclose(full.mean_xy_m, [1.0, 2.0], atol=0.05)
    np.testing.assert_allclose(np.diag(half.cov_xy_m2) - 0.5 ** 2 / 12,
                               2 * (np.diag(full.cov_xy_m2) - 0.5 ** 2 / 12), rtol=0.05)
    with pytest.raises(ValueError, match='camera_weight'):
        FusionConfig(camera_weight=0.0)


def test_a_late_fix_is_carried_forward_by_the_odometry():
    """A fix that arrives after the next frame (DDS gives no order across topics) is still
    fused, moved by the odometry over the gap; without odometry it is counted late."""
    fusion = SequenceFusion(FusionConfig(gnss_bias_sigma_m=0.0))
    for k in range(3):
        fusion.add_twist(twist(k, v=10.0))
    fusion.add_fix(T0, (0.0, 0.0), np.eye(2) * 100.0)
    fusion.step(T0, 0.0, None)
    fusion.add_fix(T0 + 2 * 100_000_000, (2.0, 0.0), np.eye(2) * 100.0)
    fusion.step(T0 + 2 * 100_000_000, 0.0, None)
    before = fusion.estimate().cov_xy_m2[0, 0]
    fusion.add_fix(T0 + 100_000_000, (1.0, 0.0), np.eye(2) * 100.0)  # the late one
    out = fusion.step(T0 + 2 * 100_000_000 + 1, 0.0, None)
    assert out.fixes_fused == 1 and fusion.stats.counters['fixes_late'] == 0
    assert fusion.estimate().cov_xy_m2[0, 0] < before
    blind = SequenceFusion(FusionConfig(gnss_bias_sigma_m=0.0))
    blind.add_fix(T0 + 2 * 100_000_000, (2.0, 0.0), np.eye(2) * 100.0)
    blind.step(T0 + 2 * 100_000_000, 0.0, None)
    blind.add_fix(T0 + 100_000_000, (1.0, 0.0), np.eye(2) * 100.0)
    blind.step(T0 + 2 * 100_000_000 + 1, 0.0, None)
    assert blind.stats.counters['fixes_late'] == 1


def _camera_locked_away(config, frames=150, wrong=(15.0, 0.0)):
    """Fixes at the truth (0, 0), every frame's confident heatmap at `wrong`: a camera
    locked on a wrong place (e.g. heatmaps at a wrong yaw)."""
    fusion = SequenceFusion(as_if_moving(config))
    outs = []
    for k in range(frames):
        stamp = T0 + k * 100_000_000
        fusion.add_fix(stamp, (0.0, 0.0), np.eye(2) * 4.0)
        fusion.add_twist(twist(k))
        outs.append(fusion.step(stamp, 0.0, heatmap_at(wrong, (0.0, 0.0), sigma_m=0.5)))
    return fusion, outs


def test_a_camera_locked_away_is_explained_by_the_gnss_bias_without_the_excursion_check():
    """Counter-example: with the check off, the belief follows the camera and the fixes are
    absorbed by an expected GNSS error far beyond its 3 m prior."""
    fusion, outs = _camera_locked_away(FusionConfig(bias_excursion_chi2=0.0))
    assert np.linalg.norm(outs[-1].mean_xy_m - [15.0, 0.0]) < 2.0
    assert np.hypot(*outs[-1].gnss_bias_xy_m) > 3 * 3.0
    assert fusion.stats.counters['resets'] == 1  # the start only


def test_a_gnss_bias_excursion_restarts_the_belief_on_the_fixes():
    chi2 = 16.0
    fusion, outs = _camera_locked_away(FusionConfig(bias_excursion_chi2=chi2))
    reasons = [o.reset for o in outs]
    assert 'bias_excursion' in reasons
    assert fusion.stats.counters['resets_bias_excursion'] >= 1
    assert fusion.stats.last_reset == 'bias_excursion'
    restart = outs[reasons.index('bias_excursion')]
    # the restarted belief sits on the fixes, its bias back at the prior, and this frame's
    # heatmap was not fused again
    assert np.linalg.norm(restart.mean_xy_m) < 3.0
    assert np.allclose(restart.gnss_bias_xy_m, 0.0)
    assert restart.camera_outlier_prob is None
    # no published belief explains the fixes by a bias beyond the threshold
    limit = math.sqrt(chi2) * 3.0
    assert all(np.hypot(*o.gnss_bias_xy_m) <= limit for o in outs)


def test_the_excursion_check_leaves_a_consistent_drive_alone():
    """A camera that agrees with the fixes up to a plausible 4 m GNSS bias never resets."""
    fusion = SequenceFusion(FusionConfig(bias_excursion_chi2=16.0))
    rng = np.random.default_rng(0)
    for k in range(200):
        stamp = T0 + k * 100_000_000
        fusion.add_fix(stamp, np.array([4.0, 0.0]) + rng.normal(0, 2.0, 2), np.eye(2) * 4.0)
        fusion.add_twist(twist(k))
        fusion.step(stamp, 0.0, heatmap_at((0.0, 0.0), (0.0, 0.0)))
    assert fusion.stats.counters['resets'] == 1


@pytest.mark.parametrize('value', [-1.0, math.nan, math.inf])
def test_bias_excursion_chi2_must_be_finite_and_not_negative(value):
    with pytest.raises(ValueError, match='bias_excursion_chi2'):
        FusionConfig(bias_excursion_chi2=value)


def _parked_or_moving(config, speed_mps, frames=300, view_offset=(0.0, 0.0)):
    """A car at speed_mps (east) for `frames` 10 Hz frames; fixes at the truth (2 m per
    axis stated), every heatmap at the truth + view_offset: a parked car sees the same
    place, so one view's error, every frame."""
    fusion = SequenceFusion(config)
    out = None
    for k in range(frames):
        stamp = T0 + k * 100_000_000
        truth = np.array([speed_mps * 0.1 * k, 0.0])
        fusion.add_fix(stamp, truth, np.eye(2) * 4.0)
        fusion.add_twist(twist(k, v=speed_mps))
        out = fusion.step(stamp, 0.0, heatmap_at(truth + view_offset, truth, sigma_m=1.0))
    return fusion, out, truth


def _nees(out, truth):
    e = out.mean_xy_m - truth
    return float(e @ np.linalg.solve(out.cov_xy_m2, e))


def test_camera_weight_follows_the_motion_since_the_last_fused_frame():
    cfg = FusionConfig(camera_weight=0.25, camera_weight_distance_m=0.8)
    # 10 Hz: 8 m/s is 0.8 m per frame (full weight), 2 m/s a quarter of it, parked nothing
    for speed, expected in ((8.0, 0.25), (16.0, 0.25), (2.0, 0.0625), (0.0, 0.0)):
        fusion, _, _ = _parked_or_moving(cfg, speed, frames=5)
        fusion.add_twist(twist(5, v=speed))
        fusion.step(T0 + 5 * 100_000_000, 0.0, None)   # predicts, fuses no heatmap
        assert fusion.camera_weight_now() == pytest.approx(expected, rel=1e-6)
    # without odometry or a fix track the motion is unknown: the full weight
    fusion = SequenceFusion(cfg)
    fusion.add_fix(T0, (0.0, 0.0), np.eye(2) * 4.0)
    fusion.step(T0, 0.0, heatmap_at((0.0, 0.0), (0.0, 0.0)))
    fusion.step(T0 + 100_000_000, 0.0, None)
    assert fusion.camera_weight_now() == 0.25
    # 0 = per frame whatever the motion
    fusion, _, _ = _parked_or_moving(as_if_moving(cfg), 0.0, frames=5)
    assert fusion.camera_weight_now() == 0.25


def test_a_parked_car_counts_its_one_view_once():
    """30 s parked before a view 3 m off (the same error every frame): per frame the
    belief collapses onto the view and is overconfident; scaled by motion it keeps the
    fixes' say and stays consistent."""
    offset = (3.0, 0.0)
    _, moving, _ = _parked_or_moving(FusionConfig(), 8.0, frames=50)
    _, parked, truth = _parked_or_moving(FusionConfig(), 0.0, view_offset=offset)
    _, counted, _ = _parked_or_moving(as_if_moving(), 0.0, view_offset=offset)
    assert _nees(counted, truth) > 9.21            # beyond the 99% ellipse: overconfident
    assert _nees(parked, truth) < 9.21
    assert np.trace(counted.cov_xy_m2) < 0.5 * np.trace(parked.cov_xy_m2)
    # a moving car's frames are new views: they do add up
    assert np.trace(moving.cov_xy_m2) < 0.5 * np.trace(parked.cov_xy_m2)


@pytest.mark.parametrize('value', [-0.1, math.nan, math.inf])
def test_camera_weight_distance_must_be_finite_and_not_negative(value):
    with pytest.raises(ValueError, match='camera_weight_distance_m'):
        FusionConfig(camera_weight_distance_m=value)


def _widening_over_10_s(speed_mps, full_speed_mps):
    """Per-axis growth of the belief's variance over 10 s of exact odometry and nothing
    else (m^2), and the final mean."""
    cfg = FusionConfig(process_noise_m2_per_s=0.05, heading_sigma_deg=0.0,
                       process_noise_full_speed_mps=full_speed_mps, gnss_bias_sigma_m=0.0)
    fusion = SequenceFusion(cfg)
    fusion.add_fix(T0, (0.0, 0.0), np.eye(2) * 1.0)
    exact = np.diag([1e-8, 1e-8, 1e-8])   # an odometry that adds (almost) nothing itself
    fusion.add_twist(TwistSample(T0, speed_mps, 0.0, 0.0, exact))
    start = fusion.step(T0, 0.0, None)
    for k in range(1, 101):
        fusion.add_twist(TwistSample(T0 + k * 100_000_000, speed_mps, 0.0, 0.0, exact))
        out = fusion.step(T0 + k * 100_000_000, 0.0, None)
    return np.diag(out.cov_xy_m2 - start.cov_xy_m2), out.mean_xy_m


@pytest.mark.parametrize('speed_mps, share', [(8.0, 1.0), (1.0, 1.0), (0.5, 0.5), (0.0, 0.0)])
def test_process_noise_follows_the_speed(speed_mps, share):
    """The belief widens by the process noise times its share at that speed (in full from
    1 m/s): a standing car does not wander. (The grid's prediction widens by 0.45 m^2 of
    the 0.5 m^2 diffused: sub-cell spread; hence against the unscaled run.)"""
    full, _ = _widening_over_10_s(speed_mps, 0.0)
    growth, mean = _widening_over_10_s(speed_mps, 1.0)
    assert full == pytest.approx([0.45, 0.45], abs=0.06)
    np.testing.assert_allclose(growth, share * full, atol=0.03)
    assert mean[0] == pytest.approx(speed_mps * 10.0, abs=0.3)


@pytest.mark.parametrize('value', [-1.0, math.nan])
def test_process_noise_full_speed_must_be_finite_and_not_negative(value):
    with pytest.raises(ValueError, match='process_noise_full_speed_mps'):
        FusionConfig(process_noise_full_speed_mps=value)


def _weights(speeds_mps, config=None):
    """The weight each frame's heatmap got, for a car driving east at speeds_mps[k]
    (10 Hz; a negative speed: reversing), fixes on the truth."""
    fusion, x, weights = SequenceFusion(config or FusionConfig()), 0.0, []
    for k, v in enumerate(speeds_mps):
        stamp = T0 + k * 100_000_000
        fusion.add_fix(stamp, (x, 0.0), np.eye(2) * 4.0)
        fusion.add_twist(twist(k, v=v))
        out = fusion.step(stamp, 0.0, heatmap_at((x, 0.0), (x, 0.0), sigma_m=1.0))
        weights.append(out.camera_weight)
        x += v * 0.1
    return np.array(weights[1:]), fusion


def test_the_camera_budget_counts_net_motion_not_odometry_jitter():
    # a standing car whose odometry jitters by +-0.05 m/s: a path of 0.5 mm per frame but
    # no net motion; 30 s of it earn almost nothing (per path length: 0.47 frames' worth)
    jitter, fusion = _weights([0.05 * (-1) ** k for k in range(300)])
    assert jitter.sum() < 0.01
    assert fusion.stats.counters['camera_outliers'] == 0   # unweighted frames are skipped
    # a car at 4 m/s (0.4 m per frame, half the distance): each frame half the weight, so
    # the same 0.25 per 0.8 m as at full speed
    half, _ = _weights([4.0] * 101)
    np.testing.assert_allclose(half, 0.125, atol=1e-6)
    full, _ = _weights([9.5] * 101)
    np.testing.assert_allclose(full, 0.25)


def test_a_frame_just_short_of_the_distance_leaves_the_next_one_its_weight():
    """At 0.79 m (a little under 0.8) a frame gets 0.247; the next one, 0.95 m further,
    is a new view and gets 0.25, not the 0.003 left of one budget."""
    weights, _ = _weights([9.5] * 5 + [7.9] + [9.5] * 5)
    assert weights[5] == pytest.approx(0.25 * 0.79 / 0.8)
    np.testing.assert_allclose(np.delete(weights, 5), 0.25)
