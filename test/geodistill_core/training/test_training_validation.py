"""Validation figures against hand-computed sums (the prediction is patched in)."""
import math

import pytest
import torch

from geodistill_core.training import POSITION_LABEL_KEY, validation


def test_error_sums_and_recalls_match_a_hand_computed_batch(monkeypatch):
    # truth at the origin; the vehicle faces north (yaw pi/2): forward = +north, left = -east
    pred = torch.tensor([[0.5, 0.0], [0.0, 3.0], [4.0, 3.0], [0.0, 0.0]])
    monkeypatch.setattr(validation, 'predicted_offsets_en_m', lambda *a, **k: pred)
    batch = {POSITION_LABEL_KEY: torch.zeros(4, 2),
             'yaw_rad': torch.full((4,), math.pi / 2)}
    out = validation.validation_errors(None, batch)
    assert out['mean_error_m'] == pytest.approx((0.5 + 3.0 + 5.0 + 0.0, 4))
    assert out['r1_m'] == (2.0, 4)        # 0.5 m and 0 m
    assert out['r5_m'] == (4.0, 4)        # 5.0 m is inside
    # lateral = east error (sign aside): 0.5, 0, 4, 0 -> three within 1 m
    assert out['lateral_r1_m'] == (3.0, 4)
    # longitudinal = north error: 0, 3, 3, 0 -> two within 1 m
    assert out['longitudinal_r1_m'] == (2.0, 4)


def test_without_the_true_yaw_only_the_position_figures_are_reported(monkeypatch):
    monkeypatch.setattr(validation, 'predicted_offsets_en_m',
                        lambda *a, **k: torch.tensor([[1.0, 0.0]]))
    out = validation.validation_errors(None, {POSITION_LABEL_KEY: torch.zeros(1, 2)})
    assert set(out) == {'mean_error_m', 'r1_m', 'r5_m'}


def test_a_batch_without_labels_is_refused():
    with pytest.raises(KeyError, match=POSITION_LABEL_KEY):
        validation.validation_errors(None, {})
