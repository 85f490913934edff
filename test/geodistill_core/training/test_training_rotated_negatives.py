"""Rotated negatives of the weak objective: the matching pair at its known yaw against the
same pair with its BEV template turned (weak.rotated_negative_loss)."""
from dataclasses import replace
import math

import pytest
import torch
import torch.nn.functional as F

from geodistill_core.training import WeakConfig, WeakLossModule, batch_to_location_inputs
from geodistill_core.training.models import build_model
from geodistill_core.training.presets import preset
from geodistill_core.training.weak import rotated_negative_loss

PINHOLE_K = torch.tensor([[30.0, 0.0, 31.5], [0.0, 30.0, 15.5], [0.0, 0.0, 1.0]])


def tiny_model(camera_model):
    config = preset('tiny', 'location').model
    torch.manual_seed(0)
    return build_model(replace(config, camera_model=camera_model, learned_confidence=True))


def pinhole_inputs(B=3, mpp=(0.5, 0.5, 0.5)):
    g = torch.Generator().manual_seed(1)
    return {'ground_images': torch.rand(B, 3, 32, 64, generator=g),
            'satellite_images': torch.rand(B, 3, 64, 64, generator=g),
            'sat_meters_per_px': torch.tensor(mpp, dtype=torch.float64),
            'camera_height_m': torch.full((B,), 1.65),
            'ground_yaw_rad': torch.tensor([0.3, 1.2, -2.0][:B]),
            'ground_K': PINHOLE_K.expand(B, 3, 3).clone()}


def paired_distance(model, inputs, yaw_rad, index):
    """Best-match distance per level of the matching pairs `index` at yaw_rad, through the
    model's own forward (an independent path: features extracted per call)."""
    pick = torch.as_tensor(index)
    out = model(inputs['ground_images'][pick], inputs['satellite_images'][pick],
                sat_meters_per_px=float(inputs['sat_meters_per_px'][pick[0]]),
                camera_height_m=inputs['camera_height_m'][pick], ground_yaw_rad=yaw_rad[pick],
                ground_K=inputs['ground_K'][pick])
    return [2 - 2 * s.flatten(1).amax(1) for s in out.scores]


def reference_loss(model, inputs, offsets_deg, alpha, groups):
    per_level = None
    for index in groups:
        d0 = paired_distance(model, inputs, inputs['ground_yaw_rad'], index)
        terms = [[] for _ in d0]
        for delta in offsets_deg:
            turned = inputs['ground_yaw_rad'] + math.radians(delta)
            for level, d in enumerate(paired_distance(model, inputs, turned, index)):
                terms[level].append(F.softplus(alpha * (d0[level] - d)))
        terms = [torch.cat(t) for t in terms]
        per_level = terms if per_level is None else [
            torch.cat(p) for p in zip(per_level, terms, strict=True)]
    return torch.stack([t.mean() for t in per_level]).mean()


@pytest.mark.parametrize('mpp, groups', [((0.5, 0.5, 0.5), [[0, 1, 2]]),
                                         ((0.5, 0.6, 0.5), [[0, 2], [1]])])
def test_loss_equals_softplus_of_the_distance_gap_through_the_models_own_forward(mpp, groups):
    model = tiny_model('pinhole').eval()
    inputs = pinhole_inputs(mpp=mpp)
    offsets = (-4.0, 2.0, 8.0)
    with torch.no_grad():
        got = rotated_negative_loss(model, inputs, offsets, alpha=10.0)
        want = reference_loss(model, inputs, offsets, 10.0, groups)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert abs(got.item() - math.log(2)) > 1e-5  # the offsets do change the distances


def test_training_on_the_term_makes_the_known_yaw_win():
    """A few optimiser steps on the term alone, one fixed pinhole batch: the pair at its
    known yaw pulls ahead of its turned copies (the loss falls well below log 2)."""
    model = tiny_model('pinhole')
    inputs = pinhole_inputs()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = rotated_negative_loss(model, inputs, (-8.0, 8.0), alpha=10.0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(2), abs=0.05)
    assert losses[-1] < 0.6 * losses[0]


def test_the_module_adds_the_weighted_term_and_its_gradient_reaches_both_trunks():
    model = tiny_model('pinhole')
    batch = {'ground': torch.rand(3, 3, 32, 64), 'satellite': torch.rand(3, 3, 64, 64),
             'sat_meters_per_px': torch.full((3,), 0.5, dtype=torch.float64),
             'camera_height_m': torch.full((3,), 1.65), 'yaw_rad': torch.tensor([0.3, 1.2, -2]),
             'K': PINHOLE_K.expand(3, 3, 3).clone()}
    plain = WeakLossModule(model, WeakConfig())(batch)
    config = WeakConfig(rotated_negatives_deg=(-2.0, 2.0), rotation_weight=0.5)
    out = WeakLossModule(model, config)(batch)
    assert 'rotation' not in plain
    assert out['triplet'].item() == pytest.approx(plain['triplet'].item(), rel=1e-6)
    assert out['loss'].item() == pytest.approx(
        plain['loss'].item() + 0.5 * out['rotation'].item(), rel=1e-6)
    model.zero_grad()
    out['rotation'].backward()
    for trunk in (model.estimator.ground_extractor, model.estimator.satellite_extractor):
        grads = [p.grad.abs().sum() for p in trunk.parameters() if p.grad is not None]
        assert grads and sum(grads) > 0
    inputs = batch_to_location_inputs(batch)
    with pytest.raises(TypeError, match='correlation location model'):
        rotated_negative_loss(torch.nn.Identity(), inputs, (2.0,), 10.0)


@pytest.mark.parametrize('bad, match', [
    ({'rotated_negatives_deg': (0.0, 2.0)}, 'non-zero'),
    ({'rotated_negatives_deg': (float('nan'),)}, 'non-zero'),
    ({'rotated_negatives_deg': (200.0,)}, '180'),
    ({'rotation_weight': -1.0}, 'rotation_weight')])
def test_config_refuses_zero_or_unbounded_offsets_and_negative_weights(bad, match):
    with pytest.raises(ValueError, match=match):
        WeakConfig(**bad)


def test_offsets_round_trip_through_overrides():
    from geodistill_core.training.config_json import apply_overrides
    conf = apply_overrides(preset('tiny', 'location'),
                           ['weak.rotated_negatives_deg=[-4, -1, 1, 4]', 'weak.rotation_weight=2'])
    assert conf.weak.rotated_negatives_deg == (-4.0, -1.0, 1.0, 4.0)
    assert conf.weak.rotation_weight == 2.0
