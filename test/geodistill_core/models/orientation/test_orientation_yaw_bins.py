"""Yaw bins: centres, labels and decoding on one mapping (sub-degree round trip), sign."""
import math

import pytest
import torch

from geodistill_core.models.orientation import (
    bin_to_offset,
    decode_yaw_offset_deg,
    offset_to_bin,
    yaw_bin_centers_deg,
    yaw_offset_labels,
    yaw_offset_loss,
    yaw_offset_rad,
    yaw_spread_deg,
)

CENTERS = yaw_bin_centers_deg(45.0, 1.0, dtype=torch.float64)


def test_bin_centres():
    assert CENTERS.shape == (91,)
    assert CENTERS[0] == -45.0 and CENTERS[45] == 0.0 and CENTERS[-1] == 45.0
    torch.testing.assert_close(yaw_bin_centers_deg(10.0, 2.5), torch.tensor(
        [-10.0, -7.5, -5.0, -2.5, 0.0, 2.5, 5.0, 7.5, 10.0]))
    with pytest.raises(ValueError, match='multiple'):
        yaw_bin_centers_deg(45.0, 2.0)
    bins = yaw_bin_centers_deg(45, 1)  # integer arguments
    assert bins.shape == (91,) and bins[0] == -45 and bins[-1] == 45 and bins[45] == 0
    assert yaw_bin_centers_deg(10, 0.5).shape == (41,)
    with pytest.raises(ValueError):
        yaw_bin_centers_deg(45, 2)


def test_bin_mapping_round_trip():
    offsets = torch.tensor([-45.0, -0.5, 0.0, 12.25, 45.0], dtype=torch.float64)
    bins = offset_to_bin(offsets, CENTERS)
    torch.testing.assert_close(bins, torch.tensor([0.0, 44.5, 45.0, 57.25, 90.0],
                                                  dtype=torch.float64))
    torch.testing.assert_close(bin_to_offset(bins, CENTERS), offsets)


def test_labels_decode_to_the_labelled_angle_between_bin_centres():
    torch.manual_seed(0)
    offsets = torch.cat([torch.empty(200, dtype=torch.float64).uniform_(-45.0, 45.0),
                         torch.tensor([-45.0, -44.6, -3.5, 0.0, 0.49, 17.51, 44.6, 45.0],
                                      dtype=torch.float64)])
    labels = yaw_offset_labels(offsets, CENTERS)
    torch.testing.assert_close(labels.sum(dim=1), torch.ones(len(offsets), dtype=torch.float64))
    logits = labels.log() + torch.randn(len(offsets), 1, dtype=torch.float64)  # any shift
    decoded = decode_yaw_offset_deg(logits, CENTERS)
    assert (decoded - offsets).abs().max() < 0.05
    # the softmax expectation is biased near the ends (truncated labels): decoding matters
    expectation = (labels * CENTERS).sum(dim=1)
    assert (expectation - offsets)[-2].abs() > 0.05


def test_decoding_gaussian_labels_is_sub_degree_exact():
    bins = yaw_bin_centers_deg(45, 1, dtype=torch.float64)
    angles = torch.linspace(-44.5, 44.5, 357, dtype=torch.float64)  # many between bins
    labels = yaw_offset_labels(angles, bins, sigma_bins=1.0)
    ours = decode_yaw_offset_deg(labels.log(), bins)
    assert (ours - angles).abs().max() < 0.05
    # invariant to the scale and shift of logits (a trained net's softmax temperature)
    assert (decode_yaw_offset_deg(3.0 * labels.log() + 7.0, bins) - angles).abs().max() < 0.05
    # argmax-only decoding has a half-bin error floor, and decoding at bin edges while
    # the labels sit at bin centres (two mappings mixed, as in the reference) up to a bin
    argmax_only = bins[labels.argmax(dim=1)]
    assert (argmax_only - angles).abs().max() > 0.45
    mixed = argmax_only + 0.5
    assert (mixed - angles).abs().max() > 0.7  # 0.75 on this 0.25-degree sampling
    # beyond the last centre (within half a bin: bins -0.4 and 90.3) is still decoded
    beyond = yaw_offset_labels(torch.tensor([-45.4, 45.3], dtype=torch.float64), bins)
    assert decode_yaw_offset_deg(beyond.log(), bins).tolist() == pytest.approx([-45.4, 45.3])
    # float32 logits work too
    assert (decode_yaw_offset_deg(labels.log().float(), bins.float())
            - angles.float()).abs().max() < 0.05


def test_decoding_at_the_range_ends_and_spread_with_the_bin_width_floor():
    bins = yaw_bin_centers_deg(45, 1, dtype=torch.float64)
    labels = yaw_offset_labels(torch.tensor([-45.0, 45.0], dtype=torch.float64), bins)
    assert decode_yaw_offset_deg(labels.log(), bins).tolist() == pytest.approx([-45.0, 45.0])
    mid = yaw_offset_labels(torch.tensor([0.3], dtype=torch.float64), bins)  # bin 45.3
    std = yaw_spread_deg(mid.log(), bins, bin_width_floor=True)  # around the mean
    assert std.item() == pytest.approx(math.sqrt(1.0 + 1 / 12), rel=1e-3)


def test_float32_logits_decode_within_005_deg():
    offsets = torch.linspace(-44.9, 44.9, 181)
    centers = yaw_bin_centers_deg()
    logits = 7.0 * yaw_offset_labels(offsets, centers).log().clamp(min=-60)
    assert (decode_yaw_offset_deg(logits / 7.0, centers) - offsets).abs().max() < 0.05


def test_decoding_sign_and_spread():
    """Hand-built logits (no label function involved): a peak on bin 55 (centre +10 deg,
    counter-clockwise) and one on bin 25 (-20 deg) must decode to +10 and -20; a sign flip
    of the decoder would give -10 and +20."""
    hand = torch.full((2, 91), -50.0, dtype=torch.float64)
    hand[0, 55] = 0.0
    hand[1, 25] = 0.0
    assert decode_yaw_offset_deg(hand, CENTERS).tolist() == pytest.approx([10.0, -20.0],
                                                                         abs=1e-9)
    # the labels peak on the same bins (index by hand: (offset + 45) / 1 deg)
    labels = yaw_offset_labels(torch.tensor([10.0, -20.0], dtype=torch.float64), CENTERS)
    assert labels.argmax(dim=1).tolist() == [55, 25]
    # an asymmetric offset between bins: 10.3 deg leans towards bin 56, not bin 54
    between = yaw_offset_labels(torch.tensor([10.3], dtype=torch.float64), CENTERS)[0]
    assert between[56] > between[54]
    # offsets are true - prior, counter-clockwise positive (map frame)
    assert yaw_offset_rad(torch.tensor([0.5]), torch.tensor([0.2])).item() == pytest.approx(0.3)
    logits = labels.log()
    decoded = decode_yaw_offset_deg(logits, CENTERS)
    spread = yaw_spread_deg(logits, CENTERS, decoded)
    assert spread.tolist() == pytest.approx([1.0, 1.0], abs=1e-3)  # the label width
    wide = yaw_offset_labels(torch.tensor([10.0]), CENTERS.float(), sigma_bins=5.0).log()
    assert float(yaw_spread_deg(wide, CENTERS.float(), torch.tensor([10.0]))) == pytest.approx(
        5.0, abs=1e-2)


def test_loss_equals_the_hand_computed_cross_entropy():
    centers = torch.arange(6, dtype=torch.float64)  # bin k at k degrees: 2.3 deg is bin 2.3
    target_deg = torch.tensor([2.3], dtype=torch.float64)
    label = yaw_offset_labels(target_deg, centers, sigma_bins=1.0)[0]
    w = [math.exp(-0.5 * (i - 2.3) ** 2) for i in range(6)]
    assert label.tolist() == pytest.approx([x / sum(w) for x in w], rel=1e-12)
    logits = torch.tensor([[0.1, 0.4, 1.0, 0.8, -0.3, 0.0]], dtype=torch.float64)
    log_p = torch.log_softmax(logits, dim=1)[0]
    expected = -(label * log_p).sum().item()
    target_rad = torch.deg2rad(target_deg)
    assert yaw_offset_loss(logits, target_rad, centers).item() == pytest.approx(expected,
                                                                               rel=1e-12)
    at_label = label.log().unsqueeze(0).requires_grad_(True)
    yaw_offset_loss(at_label, target_rad, centers).backward()
    assert at_label.grad.abs().max() < 1e-12


def test_loss_is_smallest_at_the_labels():
    offsets_rad = torch.deg2rad(torch.tensor([3.3, -27.0], dtype=torch.float64))
    labels = yaw_offset_labels(torch.rad2deg(offsets_rad), CENTERS)
    t = offset_to_bin(torch.rad2deg(offsets_rad), CENTERS).view(-1, 1)
    log_labels = -0.5 * (torch.arange(91, dtype=torch.float64) - t) ** 2  # finite everywhere
    logits = log_labels.clone().requires_grad_(True)
    loss = yaw_offset_loss(logits, offsets_rad, CENTERS)
    entropy = -torch.xlogy(labels, labels).sum(dim=1).mean()
    assert loss.item() == pytest.approx(entropy.item())
    (gradient,) = torch.autograd.grad(loss, logits)
    assert gradient.abs().max() < 1e-12
    shifted = yaw_offset_loss(log_labels, offsets_rad + math.radians(2.0), CENTERS)
    assert shifted.item() > loss.item() + 0.5


def test_offset_target_wraps_and_keeps_the_sign():
    true = torch.deg2rad(torch.tensor([179.0, 100.0]))
    prior = torch.deg2rad(torch.tensor([-179.0, 90.0]))
    torch.testing.assert_close(torch.rad2deg(yaw_offset_rad(true, prior)),
                               torch.tensor([-2.0, 10.0]), atol=1e-4, rtol=0)
