"""The replay's side-by-side block: windows where the published pose is worse than GNSS."""
import numpy as np

from geodistill_ros.replay.comparison import windows_against_gnss
from geodistill_ros.replay.trajectory_metrics import FrameRecord

T0 = 1_000_000_000_000


def records(errors_m, gnss_errors_m, hz=10.0):
    out = []
    for k, (e, g) in enumerate(zip(errors_m, gnss_errors_m, strict=True)):
        out.append(FrameRecord(T0 + int(k * 1e9 / hz), (0.0, 0.0), 0.0, (g, 0.0),
                               estimate_xy_m=(0.0, e), estimate_yaw_rad=0.0,
                               estimate_cov_xy_m2=np.eye(2)))
    return out


def test_a_window_worse_than_gnss_is_counted_and_its_ratio_reported():
    # 25 s at 10 Hz: windows [0, 10), [10, 20), [20, 25); the second one is bad
    errors = [0.5] * 100 + [8.0] * 100 + [0.5] * 50
    result = windows_against_gnss(records(errors, [4.0] * 250))
    assert result['count'] == 3 and result['worse_than_gnss'] == 1
    assert result['worst_ratio'] == 2.0


def test_no_output_frames_are_skipped_not_counted_as_good():
    recs = records([0.5] * 30, [4.0] * 30)
    recs[5] = FrameRecord(recs[5].stamp_ns, (0.0, 0.0), 0.0, (4.0, 0.0))  # no output
    result = windows_against_gnss(recs)
    assert result['count'] == 1 and result['worse_than_gnss'] == 0
    assert result['worst_ratio'] == 0.125


def test_side_by_side_carries_the_consistency_evidence():
    """A constant 1 m error with a unit covariance: NEES 1 on every frame. The block says
    how many independent frames that is worth and what a consistent estimator would show."""
    from geodistill_ros.replay.comparison import side_by_side
    from geodistill_ros.replay.trajectory_metrics import evaluate_trajectory
    rng = np.random.default_rng(0)
    drift = np.cumsum(rng.normal(0, 0.05, 200))      # a slowly varying error
    recs = records(list(1.0 + drift), [4.0] * 200)
    metrics = evaluate_trajectory(recs).to_dict()
    block = side_by_side(metrics, None, recs)['published']
    assert block['frames'] == 200 and block['nees_mean'] > 0
    assert 1 <= block['effective_samples'] < 40
    lo, hi = block['inside_95_interval']
    assert 0 <= lo <= block['inside_95'] <= hi <= 1
    lo, hi = block['nees_mean_interval']
    assert lo < 2 < hi
