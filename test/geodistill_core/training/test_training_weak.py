"""Weak objective: the triplet over levels, the GNSS window, mixed resolutions, inputs."""
import math

import pytest
import torch

from geodistill_core.training import (
    BatchScores,
    WeakConfig,
    batch_to_location_inputs,
    location_scores,
    weak_location_loss,
)
from geodistill_core.training.weak import centre_window


def reference_triplet(scores, alpha=10.0):
    """method.md: d_mn = min (2 - 2 cos); mean over m != n of log(1 + e^{a (d_mm - d_mn)})."""
    B = scores.shape[0]
    d = (2 - 2 * scores).flatten(2).min(dim=2).values
    total = 0.0
    for m in range(B):
        for n in range(B):
            if m != n:
                total += math.log1p(math.exp(alpha * (d[m, m] - d[m, n])))
    return total / (B * (B - 1))


def test_loss_is_the_triplet_averaged_over_levels():
    torch.manual_seed(0)
    levels = [torch.rand(3, 3, 4, 4) * 2 - 1, torch.rand(3, 3, 8, 8) * 2 - 1]
    out = weak_location_loss(BatchScores(levels, torch.ones(3, 2)), WeakConfig())
    expected = 0.5 * (reference_triplet(levels[0]) + reference_triplet(levels[1]))
    assert out['loss'].item() == pytest.approx(expected, rel=1e-5)
    assert out['gnss'].item() == 0.0


def test_gnss_term_is_zero_when_the_best_match_is_central_and_counts_the_gap_otherwise():
    B, H, W = 2, 9, 9
    scores = torch.zeros(B, B, H, W)
    scores[0, 0, 4, 4] = 0.9  # best of pair 0 at the centre
    scores[1, 1, 0, 0] = 0.8  # best of pair 1 far away (4 cells = 8 m)
    scores[1, 1, 4, 5] = 0.5  # best inside +-5 m
    cell_m = torch.full((B, 1), 2.0)
    out = weak_location_loss(BatchScores([scores], cell_m), WeakConfig(gnss_window_m=5.0,
                                                                       gnss_weight=2.0))
    gap = (2 - 2 * 0.5) - (2 - 2 * 0.8)
    assert out['gnss'].item() == pytest.approx(gap / 2, abs=1e-6)
    assert out['loss'].item() == pytest.approx(out['triplet'].item() + 2.0 * gap / 2, abs=1e-6)


def test_centre_window_keeps_the_central_cells_even_when_smaller_than_a_cell():
    window = centre_window((4, 5), torch.tensor([10.0]), 1.0)[0]
    assert window.sum() == 2 and window[1:3, 2].all()  # even rows: the two central cells
    window = centre_window((9, 9), torch.tensor([1.0]), 2.0)[0]
    assert window.sum() == 25


def test_inputs_map_reader_keys_and_never_need_the_position_label(toy_batch):
    del toy_batch['eval_true_offset_en_m']
    inputs = batch_to_location_inputs(toy_batch)
    assert inputs['ground_images'] is toy_batch['ground']
    assert inputs['sat_meters_per_px'].dtype == torch.float64
    torch.testing.assert_close(inputs['ground_yaw_rad'], torch.full((4,), math.pi / 2))
    assert inputs['ground_K'] is None
    prior = batch_to_location_inputs(toy_batch, 'yaw_prior_rad')
    assert prior['ground_yaw_rad'] is not None
    with pytest.raises(KeyError, match='satellite'):
        batch_to_location_inputs({'ground': toy_batch['ground']})


@pytest.mark.parametrize('all_pairs', [False, True])
def test_mixed_resolutions_are_scored_per_group_in_batch_order(toy_batch, toy_estimator,
                                                                all_pairs):
    torch.manual_seed(0)
    model = toy_estimator()
    inputs = batch_to_location_inputs(toy_batch)
    inputs['sat_meters_per_px'] = torch.tensor([0.5, 0.6, 0.5, 0.6], dtype=torch.float64)
    out = location_scores(model, inputs, all_pairs=all_pairs)
    assert len(model.calls) == 2  # one call per resolution
    assert [c['sat_meters_per_px'] for c in model.calls] == [0.5, 0.6]
    for n in range(4):  # every ground image scored alone at its own resolution
        one = {**inputs, 'ground_images': inputs['ground_images'][n:n + 1],
               'camera_height_m': inputs['camera_height_m'][n:n + 1],
               'ground_yaw_rad': inputs['ground_yaw_rad'][n:n + 1],
               'sat_meters_per_px': inputs['sat_meters_per_px'][n:n + 1]}
        if not all_pairs:
            one['satellite_images'] = inputs['satellite_images'][n:n + 1]
        ref = location_scores(model, one, all_pairs=all_pairs)
        for level in range(2):
            got = out.scores[level][:, n] if all_pairs else out.scores[level][n]
            want = ref.scores[level][:, 0] if all_pairs else ref.scores[level][0]
            torch.testing.assert_close(got, want)
        assert out.cell_m[n, 0].item() == pytest.approx(ref.cell_m[0, 0].item())
    assert out.cell_m[1, 1] == pytest.approx(0.6 * 32 / 16)


def test_gradients_of_the_weak_loss_reach_every_parameter(toy_batch, toy_estimator):
    from geodistill_core.training import WeakLossModule
    torch.manual_seed(0)
    model = toy_estimator()
    out = WeakLossModule(model, WeakConfig(gnss_window_m=5.0))(toy_batch)
    out['loss'].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
