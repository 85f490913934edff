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
