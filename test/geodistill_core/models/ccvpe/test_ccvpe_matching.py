"""Orientation-aware matching, slot visibility and the height-collapsed ground descriptor."""
import json

import pytest
import torch
import torch.nn.functional as F

from geodistill_core.models.ccvpe import (
    DescriptorEstimatorConfig,
    OrientationAwareDescriptor,
    orientation_cosine,
    rolled_slot_index,
    slot_visibility,
    tiny_descriptor_config,
)


def _reference_cosine(sat, ground, visible):
    """Loop over batch, orientation and cell: cosine over the visible slots only."""
    B, N, d = ground.shape
    h, w = sat.shape[-2:]
    out = torch.zeros(B, N, h, w, dtype=sat.dtype)
    for b in range(B):
        for o in range(N):
            g = torch.cat([ground[b, (j + o) % N] for j in range(N) if visible[b, (j + o) % N]])
            for i in range(h):
                for k in range(w):
                    s = torch.cat([sat[b, j * d:(j + 1) * d, i, k] for j in range(N)
                                   if visible[b, (j + o) % N]])
                    out[b, o, i, k] = F.cosine_similarity(g, s, dim=0, eps=0.0)
    return out


def test_rolled_slot_index():
    index = rolled_slot_index(4)
    assert index.tolist() == [[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1], [3, 0, 1, 2]]


def test_orientation_cosine_matches_a_loop_reference_with_masks():
    torch.manual_seed(0)
    B, N, d, h, w = 2, 5, 3, 3, 4
    sat = torch.randn(B, N * d, h, w, dtype=torch.float64)
    ground = torch.randn(B, N, d, dtype=torch.float64)
    visible = torch.tensor([[True, False, True, True, False], [True] * N])
    got = orientation_cosine(sat, ground, visible)
    assert got.shape == (B, N, h, w)
    torch.testing.assert_close(got, _reference_cosine(sat, ground, visible), atol=1e-9,
                               rtol=0)


def test_hidden_slots_do_not_contribute():
    torch.manual_seed(1)
    B, N, d = 1, 6, 2
    sat = torch.randn(B, N * d, 2, 2)
    ground = torch.randn(B, N, d)
    visible = torch.tensor([[True, True, False, False, True, True]])
    changed = ground.clone()
    changed[:, 2:4] = 100 * torch.randn(B, 2, d)
    torch.testing.assert_close(orientation_cosine(sat, changed, visible),
                               orientation_cosine(sat, ground, visible))
    # counter-example: without the mask the hidden slots change the score
    assert not torch.allclose(orientation_cosine(sat, changed), orientation_cosine(sat, ground))


def test_perfect_match_at_the_right_orientation():
    """A satellite cell holding the ground descriptor rolled by -o scores 1 at orientation o."""
    torch.manual_seed(2)
    N, d, o = 8, 4, 3
    ground = torch.randn(1, N, d)
    sat = torch.randn(1, N * d, 2, 2)
    sat[0, :, 1, 0] = ground[0, rolled_slot_index(N)[o]].reshape(-1)
    score = orientation_cosine(sat, ground)
    assert score[0, o, 1, 0] == pytest.approx(1.0, abs=1e-6)
    assert score[0, :, 1, 0].argmax() == o


def test_slot_visibility_needs_every_column():
    cols = torch.ones(1, 40, dtype=torch.bool)
    cols[0, 5] = False  # 4 columns per slot: column 5 hides slot 1
    assert slot_visibility(cols, 10).tolist() == [[True, False] + [True] * 8]
    with pytest.raises(ValueError, match='multiple of 7'):
        slot_visibility(cols, 7)


def test_ground_descriptor_shape_and_slot_pooling():
    torch.manual_seed(3)
    head = OrientationAwareDescriptor(in_channels=6, descriptor_dim=5, n_slots=4)
    features = torch.randn(2, 6, 3, 8)
    descriptor = head(features)
    assert descriptor.shape == (2, 4, 5)
    # slot j averages columns 2j and 2j + 1 of the height-collapsed map
    weight = torch.softmax(head.attention(features), dim=2)
    columns = (head.value(features) * weight).sum(dim=2)
    torch.testing.assert_close(descriptor[:, 1], columns[:, :, 2:4].mean(dim=-1))
    with pytest.raises(ValueError, match='multiple of 4'):
        head(torch.randn(1, 6, 3, 6))


def test_config_round_trip_and_validation():
    for config in (DescriptorEstimatorConfig(), tiny_descriptor_config(128)):
        values = json.loads(json.dumps(config.to_dict()))
        assert DescriptorEstimatorConfig.from_dict(values) == config
    assert DescriptorEstimatorConfig().level_sizes_px() == [8, 16, 32, 64, 128, 256, 512]
    assert DescriptorEstimatorConfig().slot_dims == (16, 16, 8, 8, 4, 4, 2)
    with pytest.raises(ValueError, match='power of two'):
        DescriptorEstimatorConfig(satellite_size_px=96)
    with pytest.raises(ValueError, match='slot_dims'):
        DescriptorEstimatorConfig(slot_dims=(4, 4))
    with pytest.raises(ValueError, match='unknown'):
        DescriptorEstimatorConfig.from_dict({'bogus': 1})
