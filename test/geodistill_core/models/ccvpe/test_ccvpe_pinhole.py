"""Pinhole images on a panorama canvas: geometry, FoV columns, estimator end to end."""
import math

import torch

from geodistill_core.models.ccvpe import (
    build_descriptor_estimator,
    pinhole_to_panorama,
    tiny_descriptor_config,
)

H, W = 64, 128
F_PX = 100.0
K = torch.tensor([[F_PX, 0.0, (W - 1) / 2], [0.0, F_PX, (H - 1) / 2], [0.0, 0.0, 1.0]])
CANVAS_HW = (90, 360)  # one column per degree


def _canvas_azimuth_deg():
    return torch.arange(CANVAS_HW[1], dtype=torch.float64) - (CANVAS_HW[1] - 1) / 2


def test_visible_columns_span_the_horizontal_fov():
    canvas, visible = pinhole_to_panorama(torch.ones(1, 1, H, W), K, CANVAS_HW)
    half_fov_deg = math.degrees(math.atan((W / 2) / F_PX))  # pixel edges at -0.5, W - 0.5
    expected = _canvas_azimuth_deg().abs() <= half_fov_deg
    assert visible[0].tolist() == expected.tolist()
    assert canvas.shape == (1, 1, *CANVAS_HW)
    assert canvas[0, 0][:, ~visible[0]].abs().max() == 0  # nothing outside the FoV


def test_a_column_to_the_right_lands_clockwise_at_its_azimuth():
    image = torch.zeros(1, 1, H, W)
    u0 = 100
    image[..., u0] = 1.0
    canvas, _ = pinhole_to_panorama(image, K, CANVAS_HW)
    horizon = canvas[0, 0, CANVAS_HW[0] // 2]
    azimuth_deg = math.degrees(math.atan((u0 - (W - 1) / 2) / F_PX))  # 20.05: to the right
    column = float((horizon * torch.arange(CANVAS_HW[1])).sum() / horizon.sum())
    assert abs(column - ((CANVAS_HW[1] - 1) / 2 + azimuth_deg)) < 0.5
    assert column > CANVAS_HW[1] / 2  # counter-example: not mirrored to the left


def test_pinhole_column_mask_carries_over():
    visible_cols = torch.ones(1, W, dtype=torch.bool)
    visible_cols[0, : W // 2] = False  # the left half of the pinhole image is hidden
    _, visible = pinhole_to_panorama(torch.ones(1, 3, H, W), K, CANVAS_HW, visible_cols)
    azimuth = _canvas_azimuth_deg()
    assert visible[0][azimuth < -0.5].sum() == 0
    assert visible[0][(azimuth > 0.5) & (azimuth < 30)].all()


def test_descriptor_estimator_on_pinhole_images():
    torch.manual_seed(0)
    config = tiny_descriptor_config(64, camera_model='pinhole', pinhole_canvas_hw=(64, 640))
    model = build_descriptor_estimator(config).eval()
    ground = torch.randn(2, 3, H, W)
    satellite = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _, slots, _ = model.ground_descriptor(ground, ground_K=K)
        out = model(ground, satellite, sat_meters_per_px=0.5, ground_K=K.expand(2, 3, 3))
    # HFoV +-32.6 deg around the centre (the edge between slots 9 and 10): only slots 9
    # ([-18, 0] deg) and 10 ([0, 18] deg) lie fully inside; 8 and 11 are partly blank
    assert slots[0].tolist() == [j in (9, 10) for j in range(20)]
    assert [tuple(s.shape) for s in out.scores] == [(2, s, s) for s in (8, 16, 32, 64)]
    assert all(torch.isfinite(s).all() for s in out.scores)
