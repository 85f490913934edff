"""OrientationEstimator: shapes, gradients, input checks, the sign pin, a tiny overfit."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from geodistill_core.geometry import panorama_column_from_azimuth, roll_panorama
from geodistill_core.models.orientation import (
    OrientationEstimatorConfig,
    build_orientation_estimator,
    tiny_orientation_config,
    yaw_offset_rad,
)

BEV_PX = 64
PANO_HW = (64, 128)
NORTH = math.pi / 2


def _model(seed=0, **overrides):
    torch.manual_seed(seed)
    return build_orientation_estimator(tiny_orientation_config(BEV_PX, **overrides))


def _scene(seed=1):
    """One smooth random panorama (north-aligned) and one satellite image, RGB in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 8, 16, generator=generator)
    pano = F.interpolate(coarse, size=PANO_HW, mode='bilinear', align_corners=False)
    return pano, torch.rand(1, 3, BEV_PX, BEV_PX, generator=generator)


def test_shapes_and_output_consistency():
    model = _model().eval()
    pano, sat = _scene()
    prior = torch.tensor([NORTH, -3.0])
    with torch.no_grad():
        out = model(sat.expand(2, -1, -1, -1), pano.expand(2, -1, -1, -1), prior)
    assert out.logits.shape == (2, 91)
    assert out.offset_rad.shape == out.std_rad.shape == out.yaw_rad.shape == (2,)
    assert (out.offset_rad.abs() <= math.radians(45.5)).all()
    assert (out.std_rad > 0).all() and torch.isfinite(out.logits).all()
    expected = torch.remainder(prior + out.offset_rad + math.pi, 2 * math.pi) - math.pi
    torch.testing.assert_close(out.yaw_rad, expected)


def test_gradients_reach_every_parameter():
    model = _model().train()
    pano, sat = _scene()
    yaws = torch.tensor([0.2, -0.4])
    panos = roll_panorama(pano.expand(2, -1, -1, -1), yaws)
    out = model(sat.expand(2, -1, -1, -1), panos, torch.full((2,), NORTH))
    model.loss(out, yaws).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f'{name} got no gradient'
        assert parameter.grad.abs().sum() > 0, f'{name} got a zero gradient'


def test_inputs_are_checked():
    model = _model()
    pano, sat = _scene()
    prior = torch.tensor([NORTH])
    with pytest.raises(ValueError, match='0..255'):
        model(sat * 255, pano, prior)
    with pytest.raises(ValueError, match='0..255'):
        model(sat, pano * 255, prior)
    with pytest.raises(ValueError, match=r'\(B, 3, 64, 64\)'):
        model(sat[..., :32, :32], pano, prior)
    with pytest.raises(ValueError, match=r'prior_yaw_rad must be a \(1,\)'):
        model(sat, pano, torch.tensor(NORTH))


def test_normalisation_uses_the_configured_mean_and_std():
    model = _model(mean_rgb=(0.5, 0.5, 0.5), std_rgb=(0.25, 0.25, 0.25))
    image = torch.full((1, 3, 2, 2), 0.75)
    torch.testing.assert_close(model.normalise(image), torch.ones(1, 3, 2, 2))


def _bev_bearing_deg(bev):
    """Bearing (map frame, counter-clockwise from east) of the bright content's centroid."""
    weight = bev[0, 0].clamp(min=0)
    rows, cols = torch.meshgrid(torch.arange(BEV_PX, dtype=torch.float64),
                                torch.arange(BEV_PX, dtype=torch.float64), indexing='ij')
    east = ((cols - (BEV_PX - 1) / 2) * weight).sum()
    north = (-(rows - (BEV_PX - 1) / 2) * weight).sum()
    return math.degrees(math.atan2(north, east))


def test_sign_pin_a_camera_counter_clockwise_of_the_prior_means_a_positive_offset():
    """Ground paint due east of a north-aligned camera. The camera turned counter-clockwise
    by d (roll_panorama by +d, true yaw pi/2 + d) and projected with the prior pi/2 puts the
    paint at bearing -d in the BEV (the BEV turns clockwise). That misalignment is what the
    estimator is trained to call offset +d: yaw_offset_rad(true, prior) = +d."""
    model = _model(mean_rgb=(0.0, 0.0, 0.0), std_rgb=(1.0, 1.0, 1.0))
    pano = torch.zeros(1, 3, *PANO_HW)
    east_column = panorama_column_from_azimuth(torch.tensor(NORTH - 0.0), PANO_HW[1])
    column = int(round(float(east_column)))  # relative azimuth pi/2: to the right
    pano[..., PANO_HW[0] // 2 + 4:, column - 1:column + 2] = 1.0  # paint on the ground
    prior = torch.tensor([NORTH])
    d = math.radians(33.75)  # 12 columns exactly, so rolling back is lossless
    assert _bev_bearing_deg(model.ground_bev(pano, prior)) == pytest.approx(0.0, abs=2.0)
    turned = roll_panorama(pano, torch.tensor([d]))
    bearing = _bev_bearing_deg(model.ground_bev(turned, prior))
    assert bearing == pytest.approx(-33.75, abs=2.0)  # counter-example: not +33.75
    same = _bev_bearing_deg(model.ground_bev(pano, prior - d))  # prior d clockwise of truth
    assert same == pytest.approx(-33.75, abs=2.0)
    assert float(yaw_offset_rad(prior + d, prior)) == pytest.approx(d)
    # aligning back: roll by pi/2 - (prior + offset) restores the north-aligned panorama
    torch.testing.assert_close(roll_panorama(turned, NORTH - (prior + d)), pano, atol=1e-4,
                               rtol=0)


def test_overfit_a_few_known_yaws_within_2_degrees():
    model = _model()
    pano, sat = _scene()
    yaws = torch.deg2rad(torch.tensor([-30.0, -12.0, 7.5, 26.3]))
    panos = roll_panorama(pano.expand(4, -1, -1, -1), yaws)  # camera turned by +yaw
    sats = sat.expand(4, -1, -1, -1)
    prior = torch.full((4,), NORTH)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        loss = model.loss(model(sats, panos, prior), yaw_offset_rad(prior + yaws, prior))
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(sats, panos, prior)
    error_deg = torch.rad2deg(out.offset_rad - yaws).abs()
    assert error_deg.max() < 2.0, error_deg
    torch.testing.assert_close(out.yaw_rad, prior + yaws, atol=math.radians(2.0), rtol=0)


def test_config_round_trip():
    for config in (OrientationEstimatorConfig(), tiny_orientation_config()):
        values = json.loads(json.dumps(config.to_dict()))
        assert OrientationEstimatorConfig.from_dict(values) == config
    with pytest.raises(ValueError, match='unknown'):
        OrientationEstimatorConfig.from_dict({'bogus': 1})
    with pytest.raises(ValueError, match='multiple of 32'):
        OrientationEstimatorConfig(bev_size_px=100)
