"""Properties every estimator must have (issue 4), on tiny CPU configurations.

Shapes and finite values, gradients (trainable parameters get one, frozen ones none),
translation equivariance of the correlation heatmap, yaw-roll invariance of the location
estimators given the yaw, and a golden summary of the tiny models' outputs. Regenerate the
golden file with GEODISTILL_UPDATE_GOLDEN=1 (only after checking why it changed).
"""
import json
import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from geodistill_core.geometry import roll_panorama
from geodistill_core.models.ccvpe import build_descriptor_estimator, tiny_descriptor_config
from geodistill_core.models.correlation import (
    CorrelationEstimatorConfig,
    CorrelationLevel,
    CorrelationLocationEstimator,
)
from geodistill_core.models.orientation import tiny_orientation_config, yaw_bin_centers_deg
from geodistill_core.training.config import ModelConfig
from geodistill_core.training.models import build_model

GOLDEN = Path(__file__).resolve().parent / 'golden' / 'tiny_estimators.json'
SAT_PX, SAT_MPP = 64, 0.5
# width: a multiple of 20 azimuth slots and of stride 32; height: 2 rows at stride 32 (with
# one row the descriptor's height softmax is constant and its attention gets no gradient)
CCVPE_GROUND_HW = (64, 640)
PINHOLE_K = torch.tensor([[24.0, 0.0, 31.5], [0.0, 24.0, 15.5], [0.0, 0.0, 1.0]])


def tiny_correlation(camera_model='panorama', backbone='vgg16_unet_tiny', levels=(0, 2)):
    return build_model(ModelConfig(kind='correlation', ground_backbone=backbone,
                                   satellite_backbone=backbone, pretrained=False,
                                   camera_model=camera_model, levels=levels))


def tiny_ccvpe():
    return build_model(ModelConfig(kind='ccvpe', pretrained=False,
                                   estimator=tiny_descriptor_config(SAT_PX).to_dict()))


def tiny_orientation():
    return build_model(ModelConfig(kind='orientation', pretrained=False,
                                   estimator=tiny_orientation_config(SAT_PX).to_dict()))


class PoolExtractor(nn.Module):
    """Parameter-free, translation- and column-roll-equivariant (for shifts that are
    multiples of the stride): level key -> avg_pool2d(image, stride)."""

    def __init__(self, strides: dict[str, int]) -> None:
        super().__init__()
        self.strides = dict(strides)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {key: F.avg_pool2d(images, s) for key, s in self.strides.items()}


def upsample(features: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, h s, w s) that PoolExtractor pools back to the input exactly."""
    return features.repeat_interleave(stride, dim=-2).repeat_interleave(stride, dim=-1)


def rgb01(shape, seed, dtype=torch.float32):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def peak(scores: torch.Tensor) -> tuple[int, int]:
    flat = int(torch.argmax(scores))
    return flat // scores.shape[-1], flat % scores.shape[-1]


# ---------------------------------------------------------------- (a) shapes, finite values

@pytest.mark.parametrize('camera_model', ['panorama', 'pinhole'])
def test_tiny_correlation_model_shapes_and_finite_values(camera_model):
    torch.manual_seed(0)
    model = tiny_correlation(camera_model).eval()
    extra = ({'ground_yaw_rad': torch.tensor([0.3, -2.0]), 'ground_K': PINHOLE_K}
             if camera_model == 'pinhole' else {})
    with torch.no_grad():
        out = model(rgb01((2, 3, 32, 64), 1), rgb01((2, 3, SAT_PX, SAT_PX), 2),
                    sat_meters_per_px=SAT_MPP, camera_height_m=1.65, **extra)
    # vgg16_unet_tiny levels 0 (stride 8) and 2 (stride 2), 'same' positions
    assert [tuple(s.shape) for s in out.scores] == [(2, 8, 8), (2, 32, 32)]
    assert out.cell_m == pytest.approx([SAT_MPP * 8, SAT_MPP * 2])
    for scores in out.scores:
        assert torch.isfinite(scores).all() and scores.abs().max() <= 1 + 1e-5
        assert scores.std() > 1e-4  # not a constant map


def test_tiny_ccvpe_model_shapes_and_finite_values():
    torch.manual_seed(0)
    model = tiny_ccvpe().eval()
    with torch.no_grad():
        out = model(rgb01((2, 3, *CCVPE_GROUND_HW), 1), rgb01((2, 3, SAT_PX, SAT_PX), 2),
                    sat_meters_per_px=SAT_MPP)
    sizes = [8, 16, 32, 64]
    assert [tuple(s.shape) for s in out.scores] == [(2, s, s) for s in sizes]
    assert out.cell_m == pytest.approx([SAT_MPP * SAT_PX / s for s in sizes])
    assert out.orientation_field.shape == (2, 2, SAT_PX, SAT_PX)
    assert all(torch.isfinite(s).all() for s in out.scores + out.matching_scores)
    assert torch.isfinite(out.orientation_field).all()


def test_tiny_orientation_model_shapes_and_finite_values():
    torch.manual_seed(0)
    model = tiny_orientation().eval()
    prior = torch.tensor([math.pi / 2, -0.4])
    with torch.no_grad():
        out = model(rgb01((2, 3, SAT_PX, SAT_PX), 2), rgb01((2, 3, 32, 64), 1), prior)
    n_bins = yaw_bin_centers_deg(45.0, 1.0).shape[0]
    assert n_bins == 91 and out.logits.shape == (2, n_bins)
    for value in (out.offset_rad, out.std_rad, out.yaw_rad):
        assert value.shape == (2,) and torch.isfinite(value).all()
    assert out.offset_rad.abs().max() <= math.radians(45.0) + 1e-6
    assert (out.std_rad > 0).all()


# ---------------------------------------------------------------- (b) gradients

def _location_loss(out) -> torch.Tensor:
    loss = sum(s.square().mean() for s in out.scores)
    if hasattr(out, 'orientation_field'):
        loss = loss + out.orientation_field[:, 0].mean() + sum(
            m.square().mean() for m in out.matching_scores)
    return loss


def _forward_loss(name: str):
    torch.manual_seed(0)
    if name == 'orientation':
        model = tiny_orientation().train()
        out = model(rgb01((2, 3, SAT_PX, SAT_PX), 2), rgb01((2, 3, 32, 64), 1),
                    torch.tensor([math.pi / 2, 0.2]))
        return model, model.loss(out, torch.tensor([0.1, -0.2]))
    if name == 'ccvpe':
        model = tiny_ccvpe().train()
        out = model(rgb01((2, 3, *CCVPE_GROUND_HW), 1), rgb01((2, 3, SAT_PX, SAT_PX), 2),
                    sat_meters_per_px=SAT_MPP)
        return model, _location_loss(out)
    if name == 'correlation_dinov2':  # every DPT output head used (levels 0, 1, 2)
        model = tiny_correlation(backbone='dinov2_dpt_tiny', levels=(0, 1, 2)).train()
    else:
        model = tiny_correlation().train()
    out = model(rgb01((2, 3, 32, 64), 1), rgb01((2, 3, SAT_PX, SAT_PX), 2),
                sat_meters_per_px=SAT_MPP, camera_height_m=2.0, all_pairs=True)
    return model, _location_loss(out)


@pytest.mark.parametrize('name, n_frozen_min', [
    ('correlation', 0), ('correlation_dinov2', 1), ('ccvpe', 0), ('orientation', 0)])
def test_trainable_parameters_get_gradients_and_frozen_ones_none(name, n_frozen_min):
    """correlation_dinov2 has a frozen ViT trunk (the DINOv2 backbones' design)."""
    model, loss = _forward_loss(name)
    loss.backward()
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert len(frozen) >= n_frozen_min
    for param_name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f'{name}: {param_name} got no gradient'
            assert torch.isfinite(param.grad).all(), f'{name}: {param_name}'
            assert param.grad.abs().sum() > 0, f'{name}: {param_name} has a zero gradient'
        else:
            assert param.grad is None, f'{name}: frozen {param_name} got a gradient'


# ---------------------------------------------------------------- (c) translation equivariance

def _single_level(stride: int, channels: int = 8):
    config = CorrelationEstimatorConfig(levels=(CorrelationLevel('level', channels),),
                                        positions='same')
    return CorrelationLocationEstimator(config, PoolExtractor({'level': stride}),
                                        PoolExtractor({'level': stride}))


@pytest.mark.parametrize('how', ['roll', 'crop'])
@pytest.mark.parametrize('stride, camera_cell, shift_cells', [
    (8, (3, 4), (2, -3)), (2, (12, 20), (5, 3)), (2, (18, 9), (-4, 7))])
def test_shifting_the_satellite_by_k_cells_moves_the_peak_by_k_cells(
        how, stride, camera_cell, shift_cells):
    """Parameter-free (translation-equivariant) extractors; the estimator's own BEV template
    pasted into random satellite features around camera_cell, fully inside the map before
    and after the shift. Moving the satellite content by k = (rows south, cols east) cells
    (torch.roll, or a crop window moved by -k over a larger image) moves the heatmap peak,
    and every score whose window stays inside, by +k cells, not -k."""
    torch.manual_seed(0)
    est = _single_level(stride).eval()
    ground = torch.randn(1, 8, 32, 64)
    geometry = est.level_geometry((SAT_PX, SAT_PX),
                                  est.satellite_levels(torch.zeros(1, 8, SAT_PX, SAT_PX)),
                                  SAT_MPP)
    h, w = geometry[0].feature_hw
    rows, cols = geometry[0].template_hw
    half_r, half_c = (rows - 1) // 2, (cols - 1) // 2
    (template,) = est.ground_templates(ground, geometry, camera_height_m=2.0)
    tpl, valid = template.weighted()[0].detach(), template.valid[0]
    kr, kc = shift_cells
    margin = max(abs(kr), abs(kc))
    big = torch.randn(1, 8, h + 2 * margin, w + 2 * margin)
    i0, j0 = camera_cell[0] + margin, camera_cell[1] + margin
    for a, b in torch.nonzero(valid).tolist():
        big[0, :, i0 + a - half_r, j0 + b - half_c] = tpl[:, a, b]
    big_image = upsample(big, stride)
    m = margin * stride
    before = big_image[..., m:m + h * stride, m:m + w * stride]
    if how == 'roll':
        after = torch.roll(before, (kr * stride, kc * stride), dims=(-2, -1))
    else:  # the crop window moves by -k: the content moves by +k
        top, left = m - kr * stride, m - kc * stride
        after = big_image[..., top:top + h * stride, left:left + w * stride]
    with torch.no_grad():
        s0 = est(ground, before, sat_meters_per_px=SAT_MPP, camera_height_m=2.0).scores[0][0]
        s1 = est(ground, after, sat_meters_per_px=SAT_MPP, camera_height_m=2.0).scores[0][0]
    assert s0.shape == s1.shape == (h, w)
    assert peak(s0) == camera_cell and s0.max() == pytest.approx(1.0, abs=1e-5)
    moved = (camera_cell[0] + kr, camera_cell[1] + kc)
    assert peak(s1) == moved, f'peak {peak(s1)}, expected {moved} (shift {shift_cells})'
    assert peak(s1) != (camera_cell[0] - kr, camera_cell[1] - kc)
    # every position whose template window is inside the map in both: the same score
    inside_r = [i for i in range(half_r, h - half_r) if half_r <= i + kr < h - half_r]
    inside_c = [j for j in range(half_c, w - half_c) if half_c <= j + kc < w - half_c]
    r0, r1, c0, c1 = inside_r[0], inside_r[-1] + 1, inside_c[0], inside_c[-1] + 1
    torch.testing.assert_close(s1[r0 + kr:r1 + kr, c0 + kc:c1 + kc], s0[r0:r1, c0:c1],
                               atol=1e-5, rtol=0)


# ---------------------------------------------------------------- (d) panorama roll + yaw

NORTH_RAD = math.pi / 2


def _yaw_roll_pair(W: int, shift_cols: tuple[int, ...], ground: torch.Tensor):
    """(yaw (B,), the panorama turned to that yaw): whole-column rolls, checked (float32
    yaw: exact up to a 1e-6 fraction of a column)."""
    yaw = NORTH_RAD + torch.tensor(shift_cols, dtype=torch.float32) * (2 * math.pi / W)
    turned = roll_panorama(ground, yaw - NORTH_RAD)
    for index, cols in enumerate(shift_cols):  # content moves right by cols: exact
        torch.testing.assert_close(turned[index], torch.roll(ground[index], cols, dims=-1),
                                   atol=1e-4, rtol=0)
    return yaw, turned


def _scores(model, ground, satellite, **kwargs):
    with torch.no_grad():
        return model(ground, satellite, sat_meters_per_px=SAT_MPP, camera_height_m=2.0,
                     **kwargs).scores


def _assert_same(a_levels, b_levels, atol):
    for a, b in zip(a_levels, b_levels, strict=True):
        torch.testing.assert_close(a, b, atol=atol, rtol=0)


def _assert_different(a_levels, b_levels):
    assert max((a - b).abs().max().item() for a, b in zip(a_levels, b_levels, strict=True)) > 1e-3


def test_correlation_rolled_panorama_with_its_yaw_gives_the_aligned_heatmap():
    """Column-roll-equivariant extractors (pools of stride 8 and 2, learned 1x1 confidence);
    rolls by whole coarse cells (multiples of 8 columns, both directions, across the seam)."""
    torch.manual_seed(0)
    config = CorrelationEstimatorConfig(
        levels=(CorrelationLevel('coarse', 3), CorrelationLevel('fine', 3)))
    extractor = PoolExtractor({'coarse': 8, 'fine': 2})
    est = CorrelationLocationEstimator(config, extractor, extractor).eval()
    ground, satellite = torch.randn(2, 3, 32, 128), torch.randn(2, 3, SAT_PX, SAT_PX)
    yaw, turned = _yaw_roll_pair(128, (24, -40), ground)
    aligned = _scores(est, ground, satellite)  # default yaw: north-aligned (pi / 2)
    given = _scores(est, turned, satellite, ground_yaw_rad=yaw)
    _assert_same(given, aligned, atol=1e-4)
    # counter-examples: the turned panorama without its yaw, or with the opposite roll
    _assert_different(_scores(est, turned, satellite), aligned)
    _, wrong = _yaw_roll_pair(128, (-24, 40), ground)
    _assert_different(_scores(est, wrong, satellite, ground_yaw_rad=yaw), aligned)


def test_ccvpe_rolled_panorama_with_its_yaw_gives_the_aligned_heatmap():
    """Whole-column rolls that are not whole azimuth slots (32 columns), both directions."""
    torch.manual_seed(0)
    model = build_descriptor_estimator(tiny_descriptor_config(SAT_PX)).eval()
    ground = torch.randn(2, 3, *CCVPE_GROUND_HW)
    satellite = torch.randn(2, 3, SAT_PX, SAT_PX)
    yaw, turned = _yaw_roll_pair(CCVPE_GROUND_HW[1], (5, -77), ground)
    aligned = _scores(model, ground, satellite)
    given = _scores(model, turned, satellite, ground_yaw_rad=yaw)
    _assert_same(given, aligned, atol=1e-4)
    _assert_different(_scores(model, turned, satellite), aligned)
    _, wrong = _yaw_roll_pair(CCVPE_GROUND_HW[1], (-5, 77), ground)
    _assert_different(_scores(model, wrong, satellite, ground_yaw_rad=yaw), aligned)


# ---------------------------------------------------------------- (e) golden outputs

def _level_summary(scores: torch.Tensor) -> dict:
    flat = scores.flatten(1)
    top2 = flat.topk(2, dim=1).values
    return {'shape': list(scores.shape), 'mean': scores.mean().item(),
            'std': scores.std().item(), 'argmax': flat.argmax(dim=1).tolist(),
            'top2_gap': (top2[:, 0] - top2[:, 1]).min().item()}


def _golden_summary() -> dict:
    """float64 everywhere: summaries independent of thread count and reduction order."""
    summary = {'input': 'torch.manual_seed(0) before each build; inputs torch.rand with '
                        'Generator seeds 1 (ground) and 2 (satellite), float64'}
    sat = rgb01((2, 3, SAT_PX, SAT_PX), 2, torch.float64)
    torch.manual_seed(0)
    correlation = tiny_correlation().double().eval()
    torch.manual_seed(0)
    ccvpe = tiny_ccvpe().double().eval()
    torch.manual_seed(0)
    orientation = tiny_orientation().double().eval()
    with torch.no_grad():
        out = correlation(rgb01((2, 3, 32, 64), 1, torch.float64), sat,
                          sat_meters_per_px=SAT_MPP, camera_height_m=2.0)
        summary['correlation'] = {'cell_m': out.cell_m,
                                  'levels': [_level_summary(s) for s in out.scores]}
        out = ccvpe(rgb01((2, 3, *CCVPE_GROUND_HW), 1, torch.float64), sat,
                    sat_meters_per_px=SAT_MPP)
        summary['ccvpe'] = {'cell_m': out.cell_m,
                            'levels': [_level_summary(s) for s in out.scores],
                            'orientation_field_mean': out.orientation_field.mean().item()}
        out = orientation(sat, rgb01((2, 3, 32, 64), 1, torch.float64),
                          torch.tensor([NORTH_RAD, -0.4], dtype=torch.float64))
        summary['orientation'] = {'levels': [_level_summary(out.logits)],
                                  'offset_rad': out.offset_rad.tolist()}
    return summary


def _compare(got, want, path='summary'):
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), path
        for key in want:
            _compare(got[key], want[key], f'{path}.{key}')
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for index, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(g, w, f'{path}[{index}]')
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-4), path
    else:
        assert got == want, path


def test_tiny_estimators_match_the_golden_summary():
    summary = _golden_summary()
    assert summary == _golden_summary()  # deterministic
    if os.environ.get('GEODISTILL_UPDATE_GOLDEN') == '1':  # write, never compare with it
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(summary, indent=2) + '\n')
        pytest.skip(f'golden file rewritten: {GOLDEN}; review the diff, rerun without '
                    'GEODISTILL_UPDATE_GOLDEN')
    assert GOLDEN.is_file(), f'golden file missing: {GOLDEN} (GEODISTILL_UPDATE_GOLDEN=1)'
    golden = json.loads(GOLDEN.read_text())
    for name in ('correlation', 'ccvpe', 'orientation'):  # argmax comparisons are robust
        assert min(level['top2_gap'] for level in golden[name]['levels']) > 1e-9, name
    _compare(summary, golden)
