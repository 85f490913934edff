"""Heatmap -> pose: sub-cell peak, covariance, confidence, sharpening, masks, sign pins."""
import math

import pytest
import torch

from geodistill_core.geometry import offset_en_m_to_pixel
from geodistill_core.heatmap import (
    HeatmapPose,
    combine_levels,
    heatmap_confidence,
    heatmap_covariance_en_m2,
    heatmap_mass_within_m,
    heatmap_to_pose,
    peak_offset_en_m,
    peak_px,
    resample_level,
    sharpened_log_softmax,
)


def grid_rc(H, W, dtype=torch.float64):
    r = torch.arange(H, dtype=dtype).view(H, 1).expand(H, W)
    c = torch.arange(W, dtype=dtype).view(1, W).expand(H, W)
    return r, c


def gaussian_log_map(H, W, cell_m, mean_en_m, cov_en_m2):
    """log N(x; mean, cov) (unnormalised) at each cell centre, computed independently."""
    r, c = grid_rc(H, W)
    east = (c - (W - 1) / 2) * cell_m - mean_en_m[0]
    north = ((H - 1) / 2 - r) * cell_m - mean_en_m[1]
    d = torch.stack([east, north], dim=-1)
    inv = torch.linalg.inv(torch.as_tensor(cov_en_m2, dtype=torch.float64))
    return -0.5 * torch.einsum('hwi,ij,hwj->hw', d, inv, d)


def entropy(log_p):
    return -(log_p.exp() * log_p).flatten(1).nansum(dim=1)


@pytest.mark.parametrize('dr, dc', [(0.0, 0.0), (0.3, -0.2), (-0.45, 0.41), (0.5, 0.1)])
@pytest.mark.parametrize('log_domain', [True, False])
def test_gaussian_blob_peak_within_a_tenth_of_a_cell(dr, dc, log_domain):
    H, W, sigma = 25, 31, 1.5
    r0, c0 = 11 + dr, 17 + dc
    r, c = grid_rc(H, W)
    log_g = -((r - r0) ** 2 + (c - c0) ** 2) / (2 * sigma ** 2)
    scores = log_g if log_domain else log_g.exp()  # raw Gaussian values, like cosine peaks
    got = peak_px(scores.unsqueeze(0))[0]
    tol = 1e-9 if log_domain else 0.1  # the quadratic fit is exact on the log of a Gaussian
    assert abs(got[0] - r0) < tol and abs(got[1] - c0) < tol


@pytest.mark.parametrize('log_domain, sigmas', [(True, (3.0, 1.0)), (False, (4.0, 2.0))])
def test_rotated_anisotropic_blob_peak_within_a_tenth_of_a_cell(log_domain, sigmas):
    """Diagonal, elongated peaks (a street seen at 35 deg): the 3x3 fit has a cross term.

    Exact in the log domain; on raw Gaussian values the 3x3 quadratic is an approximation
    that needs the peak at least about 2 cells wide (a 1-cell-wide one is off by 0.4 cell).
    """
    H, W, cell_m = 31, 31, 1.0
    a = math.radians(35.0)
    R = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]],
                     dtype=torch.float64)
    cov = R @ torch.diag(torch.tensor(sigmas, dtype=torch.float64) ** 2) @ R.T
    worst = 0.0
    for mean in [(0.37, -1.21), (2.5, 0.5), (-3.44, 2.83)]:
        log_g = gaussian_log_map(H, W, cell_m, mean, cov).unsqueeze(0)
        scores = log_g if log_domain else log_g.exp()
        err = peak_offset_en_m(scores, cell_m)[0] - torch.tensor(mean, dtype=torch.float64)
        worst = max(worst, err.abs().max().item())
    assert worst < (1e-9 if log_domain else 0.1)


def test_peak_offset_matches_geometry_raster_convention_and_is_scale_invariant():
    H, W, cell_m = 21, 21, 0.4
    mean = (1.23, -2.07)
    log_g = gaussian_log_map(H, W, cell_m, mean, [[1.0, 0.0], [0.0, 1.0]]).unsqueeze(0)
    off = peak_offset_en_m(log_g, cell_m)[0]
    assert off.tolist() == pytest.approx(list(mean), abs=1e-9)
    row, col = offset_en_m_to_pixel(mean[0], mean[1], H, W, cell_m)
    assert peak_px(log_g)[0].tolist() == pytest.approx([row, col], abs=1e-9)
    # scaling and shifting the scores (e.g. tau, log-softmax) does not move the peak
    assert peak_offset_en_m(3.7 * log_g - 5.0, cell_m)[0].tolist() == pytest.approx(
        list(mean), abs=1e-9)
    assert peak_offset_en_m(sharpened_log_softmax(log_g, 0.06), cell_m)[0].tolist() == \
        pytest.approx(list(mean), abs=1e-6)


@pytest.mark.parametrize('row, col, north_sign, east_sign', [
    (0, 4, 1, 0),    # row 0 is the north edge
    (8, 4, -1, 0),   # last row is south
    (4, 8, 0, 1),    # last column is east
    (4, 0, 0, -1),   # column 0 is west
])
def test_sign_pins_north_up_grid(row, col, north_sign, east_sign):
    scores = torch.zeros(1, 9, 9)
    scores[0, row, col] = 1.0
    east_m, north_m = peak_offset_en_m(scores, 2.0)[0].tolist()
    assert math.copysign(1, north_m) == north_sign or (north_sign == 0 and north_m == 0)
    assert math.copysign(1, east_m) == east_sign or (east_sign == 0 and east_m == 0)
    assert abs(east_m) + abs(north_m) == pytest.approx(8.0)


def test_peak_on_border_or_next_to_mask_keeps_cell_centre_along_that_axis():
    H, W = 9, 9
    r, c = grid_rc(H, W)
    log_g = (-((r - 0.2) ** 2 + (c - 4.3) ** 2) / 2.0).unsqueeze(0)
    got = peak_px(log_g)[0]
    assert got[0] == 0.0  # border row: no neighbour to the north
    assert got[1] == pytest.approx(4.3, abs=1e-9)
    valid = torch.ones(H, W, dtype=torch.bool)
    valid[0, 5] = False
    got = peak_px(log_g, valid)[0]
    assert got[1] == 4.0  # masked east neighbour: no column refinement


def test_masked_cells_get_zero_probability_and_are_never_the_peak():
    scores = torch.randn(2, 6, 7, generator=torch.Generator().manual_seed(0))
    valid = torch.rand(2, 6, 7, generator=torch.Generator().manual_seed(1)) > 0.4
    scores[~valid] = 100.0  # masked cells would win without the mask
    p = sharpened_log_softmax(scores, 0.06, valid).exp()
    assert torch.all(p[~valid] == 0)
    assert torch.allclose(p.sum(dim=(1, 2)), torch.ones(2))
    pk = peak_px(scores, valid).round().long()
    assert valid[torch.arange(2), pk[:, 0], pk[:, 1]].all()
    with pytest.raises(ValueError, match='valid cell'):
        sharpened_log_softmax(scores, 0.06, torch.zeros(6, 7, dtype=torch.bool))


def test_masked_log_softmax_has_finite_gradients():
    scores = torch.randn(1, 4, 4, requires_grad=True)
    valid = torch.ones(4, 4, dtype=torch.bool)
    valid[0] = False
    log_p = sharpened_log_softmax(scores, 0.06, valid)
    (log_p.exp() * torch.randn(1, 4, 4)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert torch.all(scores.grad[0, 0] == 0)


def test_lower_tau_gives_lower_entropy_and_tau_one_is_plain_softmax():
    scores = torch.rand(3, 10, 12, generator=torch.Generator().manual_seed(2))
    h = [entropy(sharpened_log_softmax(scores, tau)) for tau in (1.0, 0.3, 0.06)]
    assert torch.all(h[0] > h[1]) and torch.all(h[1] > h[2])
    plain = torch.log_softmax(scores.flatten(1), dim=1).view_as(scores)
    assert torch.allclose(sharpened_log_softmax(scores, 1.0), plain)


@pytest.mark.parametrize('angle_deg', [30.0, -65.0])
def test_covariance_of_rotated_anisotropic_gaussian(angle_deg):
    H, W, cell_m = 61, 61, 0.5
    a = math.radians(angle_deg)
    R = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]],
                     dtype=torch.float64)
    cov = R @ torch.diag(torch.tensor([3.0 ** 2, 1.2 ** 2], dtype=torch.float64)) @ R.T
    mean = (1.1, -0.7)
    log_g = gaussian_log_map(H, W, cell_m, mean, cov).unsqueeze(0)
    prob = sharpened_log_softmax(log_g, 1.0).exp()
    got = heatmap_covariance_en_m2(prob, cell_m)[0]
    assert torch.linalg.matrix_norm(got - cov) / torch.linalg.matrix_norm(cov) < 0.05
    assert got[0, 1] * cov[0, 1] > 0  # the tilt's sign is recovered (east-north convention)
    # around another point: covariance plus the squared offset of that point
    p = torch.tensor([[2.0, 0.5]], dtype=torch.float64)
    d = p[0] - torch.tensor(mean, dtype=torch.float64)
    around = heatmap_covariance_en_m2(prob, cell_m, around=p)[0]
    assert torch.allclose(around, got + torch.outer(d, d), atol=1e-6)


def test_single_cell_peak_has_the_quantisation_floor():
    prob = torch.zeros(1, 5, 5, dtype=torch.float64)
    prob[0, 2, 3] = 1.0
    cov = heatmap_covariance_en_m2(prob, 0.6)[0]
    assert torch.allclose(cov, torch.eye(2, dtype=torch.float64) * 0.36 / 12)


def test_confidence_sharp_above_flat_and_bounds():
    uniform = torch.full((1, 8, 8), 1 / 64.0)
    onehot = torch.zeros(1, 8, 8)
    onehot[0, 3, 3] = 1.0
    r, c = grid_rc(8, 8, torch.float32)
    narrow = torch.softmax((-((r - 3) ** 2 + (c - 4) ** 2) / 0.5).flatten(), 0).view(1, 8, 8)
    wide = torch.softmax((-((r - 3) ** 2 + (c - 4) ** 2) / 8.0).flatten(), 0).view(1, 8, 8)
    conf = heatmap_confidence(torch.cat([uniform, wide, narrow, onehot]))
    assert conf[0] == pytest.approx(0.0, abs=1e-6)
    assert conf[3] == pytest.approx(1.0, abs=1e-6)
    assert conf[0] < conf[1] < conf[2] < conf[3]
    # uniform over the valid half is also "no information"
    valid = torch.zeros(8, 8, dtype=torch.bool)
    valid[:4] = True
    half = valid.float().unsqueeze(0) / 32.0
    assert heatmap_confidence(half, valid)[0] == pytest.approx(0.0, abs=1e-6)


def test_mass_within_radius():
    prob = torch.zeros(1, 5, 5)
    prob[0, 2, 2] = 0.5
    prob[0, 2, 3] = 0.3  # 1 m east
    prob[0, 0, 0] = 0.2  # far corner
    around = torch.zeros(1, 2)
    assert heatmap_mass_within_m(prob, 1.0, around, 0.5)[0] == pytest.approx(0.5)
    assert heatmap_mass_within_m(prob, 1.0, around, 1.0)[0] == pytest.approx(0.8)


@pytest.mark.parametrize('tau', [1.0, 0.5])
def test_heatmap_to_pose_end_to_end(tau):
    H, W, cell_m = 41, 45, 0.5
    cov = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=torch.float64)
    mean = (-2.3, 3.15)
    scores = gaussian_log_map(H, W, cell_m, mean, cov).unsqueeze(0).repeat(2, 1, 1)
    pose = heatmap_to_pose(scores, cell_m, tau=tau)
    assert isinstance(pose, HeatmapPose)
    assert pose.offset_en_m.shape == (2, 2) and pose.covariance_en_m2.shape == (2, 2, 2)
    assert pose.confidence.shape == (2,) and pose.peak_px.shape == (2, 2)
    assert pose.offset_en_m[0].tolist() == pytest.approx(list(mean), abs=1e-6)
    expected = cov * tau  # softmax(log N / tau) is N with covariance tau * cov
    rel = torch.linalg.matrix_norm(pose.covariance_en_m2[0] - expected)
    assert rel / torch.linalg.matrix_norm(expected) < 0.05
    assert 0.0 < pose.confidence[0] < 1.0


def test_resample_level_reproduces_linear_scores_and_combine_keeps_peak():
    coarse_cell, fine_cell = 2.0, 0.5
    Hc = 9
    rc, cc = grid_rc(Hc, Hc)
    east_c, north_c = (cc - 4) * coarse_cell, (4 - rc) * coarse_cell
    coarse = (0.3 * east_c - 0.2 * north_c + 1.0).unsqueeze(0)
    Hf = 33
    rf, cf = grid_rc(Hf, Hf)
    east_f, north_f = (cf - 16) * fine_cell, (16 - rf) * fine_cell
    fine_expected = 0.3 * east_f - 0.2 * north_f + 1.0
    got = resample_level(coarse, coarse_cell, (Hf, Hf), fine_cell)[0]
    assert torch.allclose(got, fine_expected, atol=1e-9)
    # quadratic scores (a log-Gaussian) are reproduced away from the border too
    mean, cov = (1.0, -1.5), [[4.0, 1.0], [1.0, 3.0]]
    lvl_c = gaussian_log_map(Hc, Hc, coarse_cell, mean, cov).unsqueeze(0)
    lvl_f = gaussian_log_map(Hf, Hf, fine_cell, mean, cov).unsqueeze(0)
    up = resample_level(lvl_c, coarse_cell, (Hf, Hf), fine_cell)
    inner = slice(4, Hf - 4)  # within one coarse cell of the border the ends are linear
    assert torch.allclose(up[:, inner, inner], lvl_f[:, inner, inner], atol=1e-9)
    # combine: two levels agreeing on a peak keep it exactly
    cov = [[4.0, 0.0], [0.0, 4.0]]
    for mean in [(1.0, -1.5), (0.3, 0.7), (-2.0, 2.0)]:
        lvl_c = gaussian_log_map(Hc, Hc, coarse_cell, mean, cov).unsqueeze(0)
        lvl_f = gaussian_log_map(Hf, Hf, fine_cell, mean, cov).unsqueeze(0)
        combined, cell = combine_levels([lvl_c, lvl_f], [coarse_cell, fine_cell])
        assert cell == fine_cell and combined.shape == (1, Hf, Hf)
        got = peak_offset_en_m(combined, cell)[0]
        assert got.tolist() == pytest.approx(list(mean), abs=1e-6)
    # the finest level alone passes through unchanged
    assert torch.equal(combine_levels([lvl_f], [fine_cell])[0], lvl_f)


def test_shape_errors_print_the_bad_shape():
    with pytest.raises(ValueError, match=r'\(4, 4\)'):
        sharpened_log_softmax(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r'\(3, 3\)'):
        sharpened_log_softmax(torch.zeros(1, 4, 4), valid=torch.ones(3, 3, dtype=torch.bool))


def test_float32_pose_and_gradients_of_the_differentiable_parts():
    scores = torch.randn(2, 7, 9, generator=torch.Generator().manual_seed(3))
    pose = heatmap_to_pose(scores, 0.5)
    assert pose.offset_en_m.dtype == torch.float32
    assert torch.isfinite(pose.covariance_en_m2).all()
    x = torch.randn(1, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: resample_level(s, 2.0, (9, 11), 0.9), (x,))
    assert torch.autograd.gradcheck(
        lambda s: heatmap_covariance_en_m2(sharpened_log_softmax(s, 0.5).exp(), 1.0), (x,))


def test_covariance_is_exactly_symmetric_in_float32():
    """Float32 matmul rounds the two off-diagonals differently; consumers (ROS messages)
    require symmetry, so the covariance is symmetrised."""
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):
        scores = torch.randn(4, 48, 48, generator=gen)
        prob = torch.softmax(scores.flatten(1) / 0.3, dim=1).view_as(scores)
        cov = heatmap_covariance_en_m2(prob, 0.78)
        assert torch.equal(cov, cov.transpose(1, 2))
