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


def test_float32_logits_decode_within_005_deg():
    offsets = torch.linspace(-44.9, 44.9, 181)
    centers = yaw_bin_centers_deg()
    logits = 7.0 * yaw_offset_labels(offsets, centers).log().clamp(min=-60)
    assert (decode_yaw_offset_deg(logits / 7.0, centers) - offsets).abs().max() < 0.05


def test_decoding_sign_and_spread():
    logits = yaw_offset_labels(torch.tensor([10.0, -20.0], dtype=torch.float64), CENTERS).log()
    decoded = decode_yaw_offset_deg(logits, CENTERS)
    assert decoded.tolist() == pytest.approx([10.0, -20.0])  # counter-clockwise positive
    spread = yaw_spread_deg(logits, CENTERS, decoded)
    assert spread.tolist() == pytest.approx([1.0, 1.0], abs=1e-3)  # the label width
    wide = yaw_offset_labels(torch.tensor([10.0]), CENTERS.float(), sigma_bins=5.0).log()
    assert float(yaw_spread_deg(wide, CENTERS.float(), torch.tensor([10.0]))) == pytest.approx(
        5.0, abs=1e-2)


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
