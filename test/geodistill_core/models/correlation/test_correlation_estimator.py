"""Correlation estimator: heatmap frame and scales, masks, pairs, gradients, errors, devices."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from geodistill_core.geometry import (
    NorthUpCrop,
    panorama_azimuth_from_column,
    panorama_elevation_from_row,
)
from geodistill_core.models.correlation import (
    CorrelationEstimatorConfig,
    CorrelationLevel,
    CorrelationLocationEstimator,
    LocationScores,
)

SAT_HW, SAT_MPP = (64, 64), 0.5
PINHOLE_K = torch.tensor([[24.0, 0.0, 31.5], [0.0, 24.0, 15.5], [0.0, 0.0, 1.0]])


def heatmap_offset_en_m(row: int, col: int, hw, cell_m: float) -> tuple[float, float]:
    """The documented frame: ((j - (W - 1) / 2) cell_m east, -(i - (H - 1) / 2) cell_m north)."""
    return (col - (hw[1] - 1) / 2) * cell_m, -(row - (hw[0] - 1) / 2) * cell_m


def peak(scores: torch.Tensor) -> tuple[int, int]:
    flat = int(torch.argmax(scores))
    return flat // scores.shape[-1], flat % scores.shape[-1]


def camera_inputs(camera_model: str, batch: int = 1, yaw: float = 0.7) -> dict:
    inputs = {'camera_height_m': 1.65, 'ground_yaw_rad': torch.full((batch,), yaw)}
    if camera_model == 'pinhole':
        inputs['ground_K'] = PINHOLE_K
    return inputs


def single_level_estimator(pool_extractor, camera_model, stride, positions, channels=8):
    config = CorrelationEstimatorConfig(levels=(CorrelationLevel('level', channels),),
                                        camera_model=camera_model, positions=positions)
    return CorrelationLocationEstimator(config, pool_extractor({'level': stride}),
                                        pool_extractor({'level': stride}))


@pytest.mark.parametrize('camera_model', ['panorama', 'pinhole'])
@pytest.mark.parametrize('positions', ['same', 'valid'])
@pytest.mark.parametrize('stride, camera_cell', [(8, (5, 2)), (2, (20, 9))])
def test_template_pasted_at_a_known_offset_peaks_at_that_offset(
        pool_extractor, upsample, camera_model, positions, stride, camera_cell):
    """Random ground features; the satellite features are random except under the camera,
    where the valid cells of the estimator's own BEV template are pasted (the others stay
    random, so a score of 1 needs the masked normalisation). The peak must sit at the
    camera's offset as the satellite raster defines it."""
    torch.manual_seed(0)
    est = single_level_estimator(pool_extractor, camera_model, stride, positions)
    ground = torch.randn(1, 8, 32, 64)
    sat_probe = est.satellite_levels(torch.zeros(1, 8, *SAT_HW))
    geometry = est.level_geometry(SAT_HW, sat_probe, SAT_MPP)
    (template,) = est.ground_templates(ground, geometry, **camera_inputs(camera_model))
    tpl, valid = template.weighted()[0], template.valid[0]
    assert 0 < valid.sum() < valid.numel() or camera_model == 'panorama'
    h, w = geometry[0].feature_hw
    r, c = geometry[0].template_hw
    features = torch.randn(1, 8, h, w)
    i0, j0 = camera_cell
    for a, b in torch.nonzero(valid).tolist():
        features[0, :, i0 + a - (r - 1) // 2, j0 + b - (c - 1) // 2] = tpl[:, a, b]
    out = est(ground, upsample(features, stride), sat_meters_per_px=SAT_MPP,
              **camera_inputs(camera_model))
    scores, cell_m = out.scores[0][0], out.cell_m[0]
    assert cell_m == pytest.approx(SAT_MPP * stride)
    assert scores.max().item() == pytest.approx(1.0, abs=1e-5)
    # the camera stands on the centre of satellite feature cell (i0, j0), in image pixels
    crop = NorthUpCrop(*SAT_HW, SAT_MPP)
    expected = crop.pixel_to_map((i0 + 0.5) * stride - 0.5, (j0 + 0.5) * stride - 0.5)
    got = heatmap_offset_en_m(*peak(scores), scores.shape, cell_m)
    assert got == pytest.approx(expected, abs=1e-9)


def render_panorama(texture, crop, camera_en_m, yaw_rad, height_m, hw):
    """Ray-cast an equirectangular panorama (1, C, H, W) of a flat textured ground."""
    H, W = hw
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64),
                          torch.arange(W, dtype=torch.float64), indexing='ij')
    phi = panorama_azimuth_from_column(u, W)
    theta = panorama_elevation_from_row(v, H)
    below = theta < -1e-3
    r = height_m / torch.tan(-theta.clamp(max=-1e-3))
    bearing = yaw_rad - phi
    east = camera_en_m[0] + r * torch.cos(bearing)
    north = camera_en_m[1] + r * torch.sin(bearing)
    return sample_ground(texture, crop, east, north, below)


def render_pinhole(texture, crop, camera_en_m, yaw_rad, height_m, K, hw):
    """Ray-cast a level pinhole image (1, C, H, W) of a flat textured ground."""
    H, W = hw
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64),
                          torch.arange(W, dtype=torch.float64), indexing='ij')
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    below = y > 1e-3
    t = height_m / y.clamp(min=1e-3)
    x, z = t * x, t
    east = camera_en_m[0] + x * math.sin(yaw_rad) + z * math.cos(yaw_rad)
    north = camera_en_m[1] - x * math.cos(yaw_rad) + z * math.sin(yaw_rad)
    return sample_ground(texture, crop, east, north, below)


def sample_ground(texture, crop, east, north, below):
    row, col = crop.map_to_pixel(east, north)
    xy = torch.stack([(col + 0.5) * 2 / crop.cols - 1, (row + 0.5) * 2 / crop.rows - 1], -1)
    image = F.grid_sample(texture.double(), xy[None], align_corners=False)
    return (image * below).float()


def smooth_texture(channels, hw, sigma_px, seed):
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, channels, *hw, generator=g)
    x = torch.arange(-3 * sigma_px, 3 * sigma_px + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    k = k / k.sum()
    pad = len(x) // 2
    noise = F.conv2d(F.pad(noise, (pad, pad, 0, 0), mode='circular'),
                     k.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    noise = F.conv2d(F.pad(noise, (0, 0, pad, pad), mode='circular'),
                     k.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)
    return noise / noise.std()


@pytest.mark.parametrize('camera_model', ['panorama', 'pinhole'])
def test_rendered_ground_image_peaks_at_the_true_camera_position(pool_extractor,
                                                                 camera_model):
    """End to end with real geometry: a ground image ray-cast from a textured ground at a
    known position and yaw (identity ground features, 2x2-pooled satellite features).
    Counter-example: the same image with a wrong yaw does not peak there."""
    sat_hw, mpp = (96, 96), 0.25
    crop = NorthUpCrop(*sat_hw, mpp)
    texture = smooth_texture(4, sat_hw, sigma_px=2.0, seed=1)
    camera_cell = (31, 17)  # on the 48 x 48 heatmap of 0.5 m cells
    camera_en_m = heatmap_offset_en_m(*camera_cell, (48, 48), 2 * mpp)
    yaw = 1.1
    if camera_model == 'panorama':
        ground = render_panorama(texture, crop, camera_en_m, yaw, 2.0, (64, 256))
        inputs = {'camera_height_m': 2.0}
    else:
        K = torch.tensor([[40.0, 0.0, 63.5], [0.0, 40.0, 31.5], [0.0, 0.0, 1.0]],
                         dtype=torch.float64)
        ground = render_pinhole(texture, crop, camera_en_m, yaw, 1.65, K, (64, 128))
        inputs = {'camera_height_m': 1.65, 'ground_K': K.float()}
    config = CorrelationEstimatorConfig(levels=(CorrelationLevel('fine', 4),),
                                        camera_model=camera_model, learned_confidence=False)
    est = CorrelationLocationEstimator(config, pool_extractor({'fine': 1}),
                                       pool_extractor({'fine': 2}))
    out = est(ground, texture, sat_meters_per_px=mpp, ground_yaw_rad=torch.tensor([yaw]),
              **inputs)
    assert out.scores[0].shape == (1, 48, 48)
    assert peak(out.scores[0][0]) == camera_cell
    assert out.scores[0][0][camera_cell] > 0.9
    wrong = est(ground, texture, sat_meters_per_px=mpp,
                ground_yaw_rad=torch.tensor([yaw + math.pi / 2]), **inputs)
    assert peak(wrong.scores[0][0]) != camera_cell


def test_bev_and_satellite_cells_are_equal_in_metres_at_every_level(pool_extractor):
    """cell_m = sat_meters_per_px * Hs / h_l, and a ground point (8, 4) m from the camera
    lands (8, 4) m / cell_m cells from the template centre at every level."""
    sat_hw, mpp = (128, 128), 0.5
    config = CorrelationEstimatorConfig(
        levels=(CorrelationLevel('coarse', 1), CorrelationLevel('fine', 1)),
        learned_confidence=False)
    est = CorrelationLocationEstimator(config, pool_extractor({'coarse': 1, 'fine': 1}),
                                       pool_extractor({'coarse': 8, 'fine': 2}))
    crop = NorthUpCrop(*sat_hw, mpp)
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing='ij')
    blob_row, blob_col = crop.map_to_pixel(8.0, 4.0)  # camera at the crop centre
    blob = torch.exp(-((yy - blob_row) ** 2 + (xx - blob_col) ** 2) / (2 * 1.5 ** 2))
    ground = render_panorama(blob[None, None], crop, (0.0, 0.0), 0.4, 2.0, (128, 512))
    satellite = torch.zeros(1, 1, *sat_hw)
    geometry = est.level_geometry(sat_hw, est.satellite_levels(satellite), mpp)
    assert [g.cell_m for g in geometry] == [pytest.approx(mpp * 128 / 16),
                                            pytest.approx(mpp * 128 / 64)]
    assert [g.template_hw for g in geometry] == [(7, 7), (25, 25)]
    templates = est.ground_templates(ground, geometry, camera_height_m=2.0,
                                     ground_yaw_rad=torch.tensor([0.4]))
    for geo, template in zip(geometry, templates, strict=True):
        row, col = peak(template.features[0, 0])
        rows, cols = geo.template_hw
        assert heatmap_offset_en_m(row, col, (rows, cols), geo.cell_m) == pytest.approx(
            (8.0, 4.0))
    out = est(ground, satellite, sat_meters_per_px=mpp, camera_height_m=2.0,
              ground_yaw_rad=torch.tensor([0.4]))
    assert out.cell_m == [g.cell_m for g in geometry]
    assert [s.shape for s in out.scores] == [(1, 16, 16), (1, 64, 64)]


def tiny_estimator(tiny_conv_extractor, camera_model='panorama', positions='same'):
    torch.manual_seed(0)
    config = CorrelationEstimatorConfig(
        levels=(CorrelationLevel('coarse', 6), CorrelationLevel('fine', 4)),
        camera_model=camera_model, positions=positions)
    return CorrelationLocationEstimator(config, tiny_conv_extractor(), tiny_conv_extractor())


def test_masked_columns_drop_out_of_bev_and_scores(tiny_conv_extractor):
    """Hidden ground columns: zero BEV features and confidence, and scores that do not
    depend on what the hidden part of the ground image shows."""
    est = tiny_estimator(tiny_conv_extractor)
    torch.manual_seed(1)
    ground, satellite = torch.randn(2, 3, 32, 128), torch.randn(2, 3, 64, 64)
    visible = torch.ones(2, 128, dtype=torch.bool)
    visible[0, 10:60] = False
    visible[1, :30] = False
    visible[1, 100:] = False
    altered = ground.clone()
    altered[~visible.view(2, 1, 1, 128).expand_as(ground)] = 50.0
    kwargs = {'sat_meters_per_px': 0.5, 'camera_height_m': 2.0}
    with torch.no_grad():
        base = est(ground, satellite, ground_visible_cols=visible, **kwargs)
        moved = est(altered, satellite, ground_visible_cols=visible, **kwargs)
        for a, b in zip(base.scores, moved.scores, strict=True):
            assert torch.equal(a, b)
        # counter-example: without the mask the altered columns change the scores
        unmasked = est(altered, satellite, **kwargs).scores[1]
        assert (unmasked - est(ground, satellite, **kwargs).scores[1]).abs().max() > 1e-3
        geometry = est.level_geometry((64, 64), est.satellite_levels(satellite), 0.5)
        full = est.ground_templates(ground, geometry, 2.0)
        masked = est.ground_templates(ground, geometry, 2.0, ground_visible_cols=visible)
    for f, m in zip(full, masked, strict=True):
        hidden = f.valid & ~m.valid
        assert hidden.any(dim=(1, 2)).all() and m.valid.any(dim=(1, 2)).all()
        assert (m.features.permute(0, 2, 3, 1)[~m.valid] == 0).all()
        assert (m.confidence[:, 0][~m.valid] == 0).all()
        assert (f.confidence[:, 0][hidden] > 0).all()


@pytest.mark.parametrize('camera_model', ['panorama', 'pinhole'])
def test_gradients_reach_every_parameter(tiny_conv_extractor, camera_model):
    est = tiny_estimator(tiny_conv_extractor, camera_model)
    torch.manual_seed(2)
    out = est(torch.randn(2, 3, 32, 64), torch.randn(2, 3, 64, 64), sat_meters_per_px=0.5,
              all_pairs=True, **camera_inputs(camera_model, batch=2))
    sum(s.square().sum() for s in out.scores).backward()
    for name, param in est.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
        assert torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize('positions', ['same', 'valid'])
def test_all_pairs_diagonal_equals_the_paired_mode(tiny_conv_extractor, positions):
    est = tiny_estimator(tiny_conv_extractor, positions=positions)
    torch.manual_seed(3)
    ground, satellite = torch.randn(3, 3, 32, 64), torch.randn(3, 3, 64, 64)
    kwargs = {'sat_meters_per_px': 0.5, 'camera_height_m': 2.0,
              'ground_visible_cols': torch.rand(3, 64) > 0.3}
    with torch.no_grad():
        paired = est(ground, satellite, **kwargs)
        pairs = est(ground, satellite, all_pairs=True, **kwargs)
        fewer = est(ground, satellite[:2], all_pairs=True, **kwargs)
    assert pairs.cell_m == paired.cell_m
    for p, a, f in zip(paired.scores, pairs.scores, fewer.scores, strict=True):
        assert a.shape == (3, 3, *p.shape[1:]) and f.shape == (2, 3, *p.shape[1:])
        torch.testing.assert_close(torch.diagonal(a, dim1=0, dim2=1).permute(2, 0, 1), p,
                                   atol=1e-6, rtol=0)
        torch.testing.assert_close(f, a[:2], atol=1e-6, rtol=0)
        assert (a - a.transpose(0, 1)).abs().max() > 1e-3  # not symmetric: real pairs


def test_float64_and_float32_agree(tiny_conv_extractor):
    est = tiny_estimator(tiny_conv_extractor)
    torch.manual_seed(4)
    ground, satellite = torch.randn(2, 3, 32, 64), torch.randn(2, 3, 64, 64)
    kwargs = {'sat_meters_per_px': 0.5, 'camera_height_m': torch.tensor([2.0, 1.5])}
    with torch.no_grad():
        single = est(ground, satellite, **kwargs)
        double = est.double()(ground.double(), satellite.double(), **kwargs)
    for s, d in zip(single.scores, double.scores, strict=True):
        assert s.dtype == torch.float32 and d.dtype == torch.float64
        torch.testing.assert_close(s.double(), d, atol=1e-4, rtol=0)
        assert s.abs().max() <= 1.0


class NonSquareExtractor(torch.nn.Module):
    def forward(self, images):
        return {'coarse': F.avg_pool2d(images, (8, 4)).repeat(1, 2, 1, 1)[:, :6],
                'fine': F.avg_pool2d(images, 2).repeat(1, 2, 1, 1)[:, :4]}


@pytest.mark.parametrize('change, message', [
    ({'ground': (3, 32, 64)}, r'ground_images must be \(B, 3, Hg, Wg\), got \(3, 32, 64\)'),
    ({'satellite': (3, 64, 64)}, r'satellite_images .* got \(3, 64, 64\)'),
    ({'satellite': (1, 3, 64, 64)}, r'one satellite per ground image.*\(1, 3, 64, 64\)'),
    ({'ground_yaw_rad': torch.zeros(3)}, r'ground_yaw_rad must be a \(2,\) tensor, got \(3,\)'),
    ({'ground_visible_cols': torch.ones(2, 32, dtype=torch.bool)},
     r'\(2, 64\) or .*got \(2, 32\)'),
    ({'ground_K': PINHOLE_K}, 'only used by the pinhole'),
    ({'sat_extractor': NonSquareExtractor()}, 'non-square cells'),
    ({'level_key': 'middle'}, r"no level 'middle' \(it has \['coarse', 'fine'\]\)"),
    ({'coarse_channels': 5}, r"level 'coarse' must be .*\(2, 5, h, w\), got \(2, 6, 8, 8\)"),
])
def test_bad_inputs_fail_with_clear_messages(tiny_conv_extractor, change, message):
    levels = (CorrelationLevel('coarse', change.get('coarse_channels', 6)),
              CorrelationLevel(change.get('level_key', 'fine'), 4))
    est = CorrelationLocationEstimator(CorrelationEstimatorConfig(levels=levels),
                                       tiny_conv_extractor(),
                                       change.get('sat_extractor', tiny_conv_extractor()))
    ground = torch.zeros(change.get('ground', (2, 3, 32, 64)))
    satellite = torch.zeros(change.get('satellite', (2, 3, 64, 64)))
    extra = {k: v for k, v in change.items()
             if k in ('ground_yaw_rad', 'ground_visible_cols', 'ground_K')}
    with pytest.raises(ValueError, match=message):
        est(ground, satellite, sat_meters_per_px=0.5, camera_height_m=2.0, **extra)


def test_one_satellite_resolution_per_batch(tiny_conv_extractor):
    est = tiny_estimator(tiny_conv_extractor)
    with pytest.raises(ValueError, match=r'one value for the whole batch.*\(2,\)'):
        est(torch.zeros(2, 3, 32, 64), torch.zeros(2, 3, 64, 64),
            sat_meters_per_px=torch.tensor([0.5, 0.6]), camera_height_m=2.0)
    out = est(torch.zeros(2, 3, 32, 64), torch.zeros(2, 3, 64, 64),
              sat_meters_per_px=torch.tensor(0.5), camera_height_m=2.0)
    assert out.cell_m == [4.0, 1.0]


def test_pinhole_needs_yaw_and_intrinsics(tiny_conv_extractor):
    est = tiny_estimator(tiny_conv_extractor, 'pinhole')
    with pytest.raises(ValueError, match='needs ground_yaw_rad'):
        est(torch.zeros(1, 3, 32, 64), torch.zeros(1, 3, 64, 64), sat_meters_per_px=0.5,
            camera_height_m=1.65, ground_yaw_rad=torch.zeros(1))
    with pytest.raises(ValueError, match=r'ground_K must be .*got \(2, 3, 3\)'):
        est(torch.zeros(1, 3, 32, 64), torch.zeros(1, 3, 64, 64), sat_meters_per_px=0.5,
            camera_height_m=1.65, ground_yaw_rad=torch.zeros(1),
            ground_K=PINHOLE_K.expand(2, 3, 3))


def test_config_round_trips_through_json_and_validates():
    config = CorrelationEstimatorConfig(
        levels=(CorrelationLevel(0, 256), CorrelationLevel('fine', 64)),
        camera_model='pinhole', template_fraction=0.35, positions='valid',
        learned_confidence=False, correlation_method='fft')
    assert CorrelationEstimatorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert CorrelationEstimatorConfig.from_dict({}) == CorrelationEstimatorConfig()
    with pytest.raises(ValueError, match='distinct'):
        CorrelationEstimatorConfig(levels=(CorrelationLevel(0, 8), CorrelationLevel(0, 8)))
    with pytest.raises(ValueError, match="'fisheye'"):
        CorrelationEstimatorConfig(camera_model='fisheye')
    with pytest.raises(ValueError, match="'fftw'"):
        CorrelationEstimatorConfig(correlation_method='fftw')
    with pytest.raises(ValueError, match='template_fraction'):
        CorrelationEstimatorConfig(template_fraction=0.0)
    with pytest.raises(TypeError, match='unknown'):
        CorrelationEstimatorConfig.from_dict({'unknown': 1})


def test_output_is_location_scores_and_list_extractors_work(pool_extractor):
    """Extractors may return lists (indexed by int keys) as the backbones do."""

    class ListExtractor(torch.nn.Module):
        def forward(self, images):
            return [F.avg_pool2d(images, 8), F.avg_pool2d(images, 4), F.avg_pool2d(images, 2)]

    config = CorrelationEstimatorConfig(
        levels=(CorrelationLevel(0, 3), CorrelationLevel(2, 3)))
    est = CorrelationLocationEstimator(config, ListExtractor(), ListExtractor())
    out = est(torch.randn(1, 3, 32, 64), torch.randn(1, 3, 64, 64), sat_meters_per_px=0.5,
              camera_height_m=2.0)
    assert isinstance(out, LocationScores)
    assert out.cell_m == [4.0, 1.0]
    assert [tuple(s.shape) for s in out.scores] == [(1, 8, 8), (1, 32, 32)]
    assert all(p.requires_grad for p in est.parameters())
    assert len(list(est.parameters())) == 4  # the two confidence heads only


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_cuda_matches_cpu(tiny_conv_extractor):
    est = tiny_estimator(tiny_conv_extractor).double()
    torch.manual_seed(5)
    ground, satellite = torch.randn(2, 3, 32, 64).double(), torch.randn(2, 3, 64, 64).double()
    kwargs = {'sat_meters_per_px': 0.5, 'camera_height_m': 2.0, 'all_pairs': True,
              'ground_visible_cols': torch.rand(2, 64) > 0.3}
    with torch.no_grad():
        cpu = est(ground, satellite, **kwargs)
        gpu_kwargs = dict(kwargs, ground_visible_cols=kwargs['ground_visible_cols'].cuda())
        gpu = est.cuda()(ground.cuda(), satellite.cuda(), **gpu_kwargs)
    assert gpu.cell_m == cpu.cell_m
    for c, g in zip(cpu.scores, gpu.scores, strict=True):
        assert g.device.type == 'cuda'
        torch.testing.assert_close(g.cpu(), c, atol=1e-8, rtol=0)


@pytest.mark.parametrize('positions', ['same', 'valid'])
def test_confidence_on_both_sides_scores_cos_of_weighted_satellite_and_ground(
        tiny_conv_extractor, positions):
    """confidence_weighting='both' (G2SWeakly): score = cos(sat * c, g * c), checked window by
    window at the finest level; 'ground' (the default, what old configs mean) differs."""
    import torch.nn.functional as F
    est = tiny_estimator(tiny_conv_extractor, positions=positions)
    both = CorrelationLocationEstimator(
        CorrelationEstimatorConfig(levels=est.config.levels, positions=positions,
                                   confidence_weighting='both'),
        est.ground_extractor, est.satellite_extractor)
    both.confidence_heads = est.confidence_heads
    assert CorrelationEstimatorConfig.from_dict(
        {k: v for k, v in est.config.to_dict().items() if k != 'confidence_weighting'}
    ).confidence_weighting == 'ground'
    torch.manual_seed(2)
    ground, satellite = torch.randn(1, 3, 32, 128), torch.randn(1, 3, 64, 64)
    kwargs = {'sat_meters_per_px': 0.5, 'camera_height_m': 2.0}
    with torch.no_grad():
        got = both(ground, satellite, **kwargs).scores[1][0].double()
        plain = est(ground, satellite, **kwargs).scores[1][0].double()
        sat = est.satellite_levels(satellite)[1][0].double()
        geometry = est.level_geometry((64, 64), est.satellite_levels(satellite), 0.5)
        tpl = est.ground_templates(ground, geometry, 2.0)[1]
    g, c = tpl.features[0].double(), tpl.confidence[0, 0].double()
    r, cc = c.shape
    if positions == 'same':
        sat = F.pad(sat, ((cc - 1) // 2,) * 2 + ((r - 1) // 2,) * 2)
    H, W = got.shape
    for i, j in ((0, 0), (H // 2, W // 2), (H - 1, W - 3), (H // 3, W - 1)):
        a = (sat[:, i:i + r, j:j + cc] * c).flatten()
        b = (g * c).flatten()
        assert float(got[i, j]) == pytest.approx(float(a @ b / (a.norm() * b.norm())), abs=1e-4)
    assert (got - plain).abs().max() > 1e-3
