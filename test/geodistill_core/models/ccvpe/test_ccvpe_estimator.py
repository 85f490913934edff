"""DescriptorEstimator: shapes per level, cell sizes, roll equivariance, masks, yaw input."""
import math

import pytest
import torch

from geodistill_core.geometry import roll_panorama
from geodistill_core.models.ccvpe import (
    DescriptorScores,
    build_descriptor_estimator,
    tiny_descriptor_config,
)
from geodistill_core.models.correlation.location_scores import LocationScores

N = 20
PANO_HW = (32, 640)  # 32 px per azimuth slot: one stride-32 feature column each
SLOT_RAD = 2 * math.pi / N


def _model(satellite_size_px=64, seed=0, **overrides):
    torch.manual_seed(seed)
    return build_descriptor_estimator(tiny_descriptor_config(satellite_size_px, **overrides))


def _inputs(batch=2, satellite_size_px=64, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 3, *PANO_HW, generator=generator),
            torch.randn(batch, 3, satellite_size_px, satellite_size_px, generator=generator))


@pytest.mark.parametrize('satellite_size_px', [64, 128])
def test_shapes_and_cell_sizes_per_level(satellite_size_px):
    model = _model(satellite_size_px).eval()
    ground, satellite = _inputs(2, satellite_size_px)
    with torch.no_grad():
        out = model(ground, satellite, sat_meters_per_px=0.25)
    assert isinstance(out, DescriptorScores) and isinstance(out, LocationScores)
    sizes = [8 * 2 ** level for level in range(len(out.scores))]
    assert sizes[-1] == satellite_size_px
    assert [tuple(s.shape) for s in out.scores] == [(2, s, s) for s in sizes]
    assert [tuple(m.shape) for m in out.matching_scores] == [(2, N, s, s) for s in sizes]
    assert out.cell_m == pytest.approx([0.25 * satellite_size_px / s for s in sizes])
    assert out.cell_m[-1] == pytest.approx(0.25)  # finest level = satellite pixels
    assert out.orientation_field.shape == (2, 2, satellite_size_px, satellite_size_px)
    torch.testing.assert_close(out.orientation_field.norm(dim=1),
                               torch.ones(2, satellite_size_px, satellite_size_px))
    for m in out.matching_scores:
        assert torch.isfinite(m).all() and m.abs().max() <= 1 + 1e-5
    assert all(torch.isfinite(s).all() for s in out.scores)


def test_rolling_the_panorama_by_one_slot_rolls_the_descriptor_by_one_slot():
    model = _model().eval()
    ground, satellite = _inputs()
    turned = roll_panorama(ground, torch.full((2,), SLOT_RAD))  # content 32 columns right
    torch.testing.assert_close(turned, torch.roll(ground, 32, dims=-1), atol=1e-4, rtol=0)
    with torch.no_grad():
        descriptor, _, _ = model.ground_descriptor(ground)
        descriptor_turned, _, _ = model.ground_descriptor(turned)
        coarse = model(ground, satellite, sat_meters_per_px=1.0).matching_scores[0]
        coarse_turned = model(turned, satellite, sat_meters_per_px=1.0).matching_scores[0]
    torch.testing.assert_close(descriptor_turned, torch.roll(descriptor, 1, dims=1),
                               atol=1e-4, rtol=1e-4)
    # the camera turned counter-clockwise by one slot: the best orientation moves o -> o + 1
    torch.testing.assert_close(coarse_turned, torch.roll(coarse, 1, dims=1), atol=1e-4,
                               rtol=1e-4)


def test_without_circular_padding_the_descriptor_is_not_equivariant():
    model = _model(ground_padding='zeros').eval()
    ground, _ = _inputs()
    with torch.no_grad():
        descriptor, _, _ = model.ground_descriptor(ground)
        descriptor_turned, _, _ = model.ground_descriptor(torch.roll(ground, 32, dims=-1))
    assert not torch.allclose(descriptor_turned, torch.roll(descriptor, 1, dims=1), atol=1e-3)


def test_wrapping_columns_equals_circular_convolutions_for_a_short_reach_encoder():
    """The tiny encoder's zero padding reaches one stride-32 column: wrapping 64 px and
    cropping 2 columns gives exactly the circular-convolution descriptor."""
    circular = _model(ground_padding='circular').eval()
    wrapped = _model(ground_padding='wrap', wrap_columns_px=64).eval()
    wrapped.load_state_dict(circular.state_dict())
    ground, _ = _inputs()
    with torch.no_grad():
        expected, _, _ = circular.ground_descriptor(ground)
        got, _, _ = wrapped.ground_descriptor(ground)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_hidden_columns_do_not_change_any_output():
    model = _model().eval()
    ground, satellite = _inputs()
    visible = torch.ones(2, PANO_HW[1], dtype=torch.bool)
    visible[0, 100:300] = False
    visible[1, 600:] = False
    visible[1, :40] = False  # a band across the wrap-around
    changed = ground.clone()
    changed[~visible.view(2, 1, 1, -1).expand_as(ground)] = 50.0
    with torch.no_grad():
        _, slots, _ = model.ground_descriptor(ground, ground_visible_cols=visible)
        out = model(ground, satellite, sat_meters_per_px=1.0, ground_visible_cols=visible)
        out_changed = model(changed, satellite, sat_meters_per_px=1.0,
                            ground_visible_cols=visible)
        out_unmasked = model(ground, satellite, sat_meters_per_px=1.0)
    assert slots[0].tolist() == [not (3 <= j <= 9) for j in range(N)]  # columns 96..319
    assert slots[1].tolist() == [2 <= j <= 17 for j in range(N)]
    for a, b in zip(out.scores + out.matching_scores,
                    out_changed.scores + out_changed.matching_scores, strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(out.scores[-1], out_unmasked.scores[-1], atol=1e-4)


def test_a_fully_hidden_ground_image_is_refused():
    model = _model()
    ground, satellite = _inputs(1)
    visible = torch.zeros(1, PANO_HW[1], dtype=torch.bool)
    visible[0, :31] = True  # less than one full slot
    with pytest.raises(ValueError, match='fully visible azimuth slot'):
        model(ground, satellite, sat_meters_per_px=1.0, ground_visible_cols=visible)


def test_known_yaw_aligns_the_panorama_and_rotates_the_orientation_field():
    """A panorama of yaw pi/2 + 3 slots, with its yaw given, gives the heatmaps of the
    north-aligned panorama; the orientation field turns by the same 3 slots."""
    model = _model().eval()
    ground, satellite = _inputs()
    yaw = torch.full((2,), math.pi / 2 + 3 * SLOT_RAD)
    turned = roll_panorama(ground, yaw - math.pi / 2)
    with torch.no_grad():
        aligned = model(ground, satellite, sat_meters_per_px=1.0)
        given = model(turned, satellite, sat_meters_per_px=1.0, ground_yaw_rad=yaw)
        same = model(ground, satellite, sat_meters_per_px=1.0,
                     ground_yaw_rad=torch.full((2,), math.pi / 2))
    for a, b in zip(aligned.scores, given.scores, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    for a, b in zip(aligned.scores, same.scores, strict=True):
        torch.testing.assert_close(a, b)
    angle = torch.atan2(aligned.orientation_field[:, 1], aligned.orientation_field[:, 0])
    angle_given = torch.atan2(given.orientation_field[:, 1], given.orientation_field[:, 0])
    difference = torch.remainder(angle_given - angle + math.pi, 2 * math.pi) - math.pi
    torch.testing.assert_close(difference, torch.full_like(difference, 3 * SLOT_RAD),
                               atol=1e-3, rtol=0)


def test_bad_inputs_are_refused_with_their_shapes():
    model = _model()
    ground, satellite = _inputs()
    with pytest.raises(ValueError, match=r'\(B, 3, 64, 64\)'):
        model(ground, satellite[..., :32], sat_meters_per_px=1.0)
    with pytest.raises(ValueError, match='multiple of n_orientations'):
        model(ground[..., :600], satellite, sat_meters_per_px=1.0)
    with pytest.raises(ValueError, match='ground_K'):
        model(ground, satellite, sat_meters_per_px=1.0, ground_K=torch.eye(3))
    with pytest.raises(ValueError, match=r'\(2, 640\)'):
        model(ground, satellite, sat_meters_per_px=1.0,
              ground_visible_cols=torch.ones(2, 64, dtype=torch.bool))
