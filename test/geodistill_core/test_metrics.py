"""Metrics: hand-made trajectories, vehicle-frame sign pins, wrapped yaw, failures."""
import math

import numpy as np
import pytest
import torch

from geodistill_core.metrics import (
    lateral_longitudinal_m,
    localization_errors_m,
    orientation_errors_deg,
    summarize_localization,
    summarize_orientation,
)


def test_localization_errors_euclidean():
    pred = torch.tensor([[3.0, 4.0], [1.0, 1.0], [-2.0, 0.5]])
    true = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 4.5]])
    assert localization_errors_m(pred, true).tolist() == pytest.approx([5.0, 0.0, 5.0])
    # numpy and lists work too
    assert localization_errors_m(np.array([[1.0, 0.0]]), [[0.0, 0.0]]).tolist() == [1.0]


def test_heading_north_prediction_east_is_to_the_right():
    lat, lon = lateral_longitudinal_m([[101.0, 50.0]], [[100.0, 50.0]], [math.pi / 2])
    assert lat.item() == pytest.approx(-1.0)  # right of a north-facing vehicle: negative
    assert lon.item() == pytest.approx(0.0, abs=1e-12)


def test_heading_north_prediction_west_is_to_the_left():
    lat, lon = lateral_longitudinal_m([[99.0, 50.0]], [[100.0, 50.0]], [math.pi / 2])
    assert lat.item() == pytest.approx(1.0)  # counter-example: left is positive (base_link y)
    assert lon.item() == pytest.approx(0.0, abs=1e-12)


def test_heading_east_prediction_ahead_and_behind():
    result = lateral_longitudinal_m([[12.0, 3.0], [8.0, 3.0]], [[10.0, 3.0], [10.0, 3.0]],
                                    [0.0, 0.0])
    assert result.longitudinal_m.tolist() == pytest.approx([2.0, -2.0])
    assert result.lateral_m.tolist() == pytest.approx([0.0, 0.0], abs=1e-12)


def test_a_short_trajectory_in_the_vehicle_frame():
    """A vehicle drives east, turns north-west, then south; the estimator errs in ENU."""
    true = torch.tensor([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    yaw = torch.tensor([0.0, math.pi / 2, 3 * math.pi / 4, -math.pi / 2])
    err_en = torch.tensor([[0.0, 1.0], [0.0, 2.0], [-1.0, 1.0], [1.0, 0.0]])
    lat, lon = lateral_longitudinal_m(true + err_en, true, yaw)
    s2 = math.sqrt(2)
    # east-bound 1 m north = 1 m left; north-bound 2 m north = 2 m ahead;
    # north-west-bound 1 m NW = s2 ahead; south-bound 1 m east = 1 m left
    assert lat.tolist() == pytest.approx([1.0, 0.0, 0.0, 1.0], abs=1e-6)
    assert lon.tolist() == pytest.approx([0.0, 2.0, s2, 0.0], abs=1e-6)
    # the decomposition is a rotation: the norms agree with the Euclidean error
    assert torch.allclose(torch.hypot(lat, lon), localization_errors_m(true + err_en, true))


@pytest.mark.parametrize('pred_deg, true_deg, expected', [
    (179.0, -179.0, 2.0),
    (-179.0, 179.0, 2.0),
    (10.0, 350.0, 20.0),
    (0.0, 180.0, 180.0),
    (725.0, 0.0, 5.0),
    (-30.0, 30.0, 60.0),
])
def test_orientation_error_is_wrapped(pred_deg, true_deg, expected):
    err = orientation_errors_deg([math.radians(pred_deg)], [math.radians(true_deg)])
    assert err.item() == pytest.approx(expected, abs=1e-9)


def test_summary_values_by_hand():
    s = summarize_localization([0.5, 1.0, 2.0, 4.0, 10.0, 6.0])
    assert s['count'] == 6 and s['failures'] == 0
    assert s['mean'] == pytest.approx(23.5 / 6)
    assert s['median'] == pytest.approx(3.0)  # even count: mean of the two middle values
    assert s['recall_1m'] == pytest.approx(2 / 6)  # <= threshold counts
    assert s['recall_3m'] == pytest.approx(3 / 6)
    assert s['recall_5m'] == pytest.approx(4 / 6)


def test_failures_are_counted_not_dropped():
    s = summarize_localization(torch.tensor([0.5, float('nan'), 2.0, float('inf'), 7.0]))
    assert s['count'] == 5 and s['failures'] == 2
    assert s['mean'] == pytest.approx((0.5 + 2.0 + 7.0) / 3)
    assert s['median'] == pytest.approx(2.0)
    assert s['recall_1m'] == pytest.approx(1 / 5)  # the NaN and inf are misses
    assert s['recall_5m'] == pytest.approx(2 / 5)
    # a NaN prediction becomes a NaN error and a counted failure end to end
    err = localization_errors_m([[float('nan'), 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.3]])
    s = summarize_localization(err)
    assert s['failures'] == 1 and s['recall_1m'] == pytest.approx(0.5)
    all_failed = summarize_localization([float('nan')])
    assert all_failed['failures'] == 1 and math.isnan(all_failed['mean'])
    assert all_failed['recall_1m'] == 0.0


def test_signed_errors_are_refused_by_the_summary():
    with pytest.raises(ValueError, match='abs'):
        summarize_localization([-1.0, 2.0])


def test_custom_thresholds_name_their_keys():
    s = summarize_localization([0.2, 0.7], thresholds=(0.25, 10))
    assert s['recall_0.25m'] == 0.5 and s['recall_10m'] == 1.0


def test_orientation_summary_with_flips_and_failures():
    err = torch.tensor([0.5, 2.0, 4.0, 170.0, 95.0, float('nan')])
    s = summarize_orientation(err)
    assert s['count'] == 6 and s['failures'] == 1
    assert s['recall_1deg'] == pytest.approx(1 / 6)
    assert s['recall_3deg'] == pytest.approx(2 / 6)
    assert s['recall_5deg'] == pytest.approx(3 / 6)
    assert s['flip_rate'] == pytest.approx(2 / 6)
    assert s['median'] == pytest.approx(4.0)
    assert s['mean'] == pytest.approx((0.5 + 2 + 4 + 170 + 95) / 5)


def test_shape_errors():
    with pytest.raises(ValueError, match=r'\(3,\)'):
        localization_errors_m(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match='true_yaw_rad'):
        lateral_longitudinal_m(torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(3))
