"""Heatmap -> pose: sharpened softmax, sub-cell peak, covariance, confidence.

The one place where location heatmaps become positions (evaluation, replay and the node
all call heatmap_to_pose). A heatmap level is scores (B, H, W) over a north-up grid of
`cell_m` metre cells centred on the satellite crop centre (geometry.raster convention:
row grows south, column grows east, cell (row, col) lies at east = (col - (W - 1) / 2)
cell_m, north = -(row - (H - 1) / 2) cell_m). Offsets are (B, 2) east/north metres from
the crop centre; pixels are (B, 2) (row, col), sub-cell, same order as
geometry.offset_en_m_to_pixel.

Probabilities: P = softmax(scores / tau) over all valid cells (tau = 0.06 for cosine
scores as in GeoDistill, tau = 1 for scores that already are logits). Masked cells get
probability exactly 0 (log-probability -inf).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import torch
import torch.nn.functional as F

from geodistill_core.geometry import BevGrid, pixel_to_offset_en_m

DEFAULT_TAU = 0.06


def _check_map(scores: torch.Tensor, name: str = 'scores') -> None:
    if not torch.is_tensor(scores) or scores.dim() != 3:
        shape = tuple(scores.shape) if torch.is_tensor(scores) else type(scores)
        raise ValueError(f'{name} must be (B, H, W), got {shape}')


def _check_valid(valid: torch.Tensor | None, scores: torch.Tensor) -> torch.Tensor | None:
    """None or a bool mask broadcastable to scores (B, H, W) or (H, W) -> (B, H, W)."""
    if valid is None:
        return None
    if valid.shape not in (scores.shape, scores.shape[1:]):
        raise ValueError(f'valid must be (B, H, W) or (H, W) like scores {tuple(scores.shape)}, '
                         f'got {tuple(valid.shape)}')
    return valid.to(device=scores.device, dtype=torch.bool).expand_as(scores)


def sharpened_log_softmax(scores: torch.Tensor, tau: float = DEFAULT_TAU,
                          valid: torch.Tensor | None = None) -> torch.Tensor:
    """log softmax(scores / tau) over all cells of each map.

    scores: (B, H, W). tau: temperature (> 0; 1 = plain softmax).
    valid: optional (B, H, W) or (H, W) bool; False cells are excluded (log-prob -inf,
        probability 0). Every map needs at least one valid cell.
    Returns log-probabilities (B, H, W); exp() sums to 1 over each map.
    """
    _check_map(scores)
    if not tau > 0:
        raise ValueError(f'tau must be > 0, got {tau}')
    valid = _check_valid(valid, scores)
    B, H, W = scores.shape
    logits = scores / tau
    if valid is not None:
        if not bool(valid.flatten(1).any(dim=1).all()):
            raise ValueError('every heatmap needs at least one valid cell')
        logits = logits.masked_fill(~valid, float('-inf'))
    return F.log_softmax(logits.reshape(B, H * W), dim=1).reshape(B, H, W)


def parabola_vertex_offset(left: torch.Tensor, centre: torch.Tensor, right: torch.Tensor,
                           limit: float = 0.5) -> torch.Tensor:
    """Vertex of the parabola through (-1, left), (0, centre), (1, right), in +-limit.

    Zero where the three points are not concave (flat, masked, non-finite). When centre
    is the largest of the three, the vertex lies within +-0.5 anyway.
    """
    curvature = left - 2.0 * centre + right
    ok = torch.isfinite(left) & torch.isfinite(centre) & torch.isfinite(right) & (curvature < 0)
    safe = torch.where(ok, curvature, -torch.ones_like(curvature))
    delta = 0.5 * (left - right) / safe
    return torch.where(ok, delta, torch.zeros_like(delta)).clamp(-limit, limit)


def peak_px(scores: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Sub-cell peak of each map as (row, col), shape (B, 2).

    Argmax over valid cells, then a quadratic fit in the 3x3 window around it (central
    differences: gradient g and Hessian A including the row-column term); the vertex
    -A^-1 g, clamped to +-1 cell, is used when A is negative definite. This is exact when
    the scores are a quadratic around the peak (e.g. the log of any Gaussian blob, also
    rotated and anisotropic) and invariant to positive scaling and shifts of the scores,
    so scores and their sharpened log-probabilities give the same peak. On a peak that
    is not quadratic over the window (raw Gaussian values narrower than about 2 cells)
    it is approximate: within 0.1 cell from 2 cells wide. Where the window
    is incomplete (border, masked cell) or not concave, a 1-D parabola through the peak
    and its two neighbours is fitted per axis instead (vertex clamped to +-0.5 cell), and
    an axis with a missing neighbour keeps the cell centre.
    """
    _check_map(scores)
    valid = _check_valid(valid, scores)
    x = scores.detach()
    if valid is not None:
        x = x.masked_fill(~valid, float('-inf'))
    B, H, W = x.shape
    flat = x.reshape(B, H * W).argmax(dim=1)
    row, col = flat // W, flat % W
    padded = F.pad(x, (1, 1, 1, 1), value=float('-inf'))  # border neighbours are -inf
    b = torch.arange(B, device=x.device)

    def at(dr: int, dc: int) -> torch.Tensor:
        return padded[b, row + 1 + dr, col + 1 + dc]

    f0 = at(0, 0)
    d_row = parabola_vertex_offset(at(-1, 0), f0, at(1, 0))
    d_col = parabola_vertex_offset(at(0, -1), f0, at(0, 1))
    window = torch.stack([at(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)], dim=1)
    g_r, g_c = 0.5 * (at(1, 0) - at(-1, 0)), 0.5 * (at(0, 1) - at(0, -1))
    a_rr = at(1, 0) - 2.0 * f0 + at(-1, 0)
    a_cc = at(0, 1) - 2.0 * f0 + at(0, -1)
    a_rc = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = a_rr * a_cc - a_rc * a_rc
    full = torch.isfinite(window).all(dim=1) & (a_rr < 0) & (det > 0)
    det_safe = torch.where(full, det, torch.ones_like(det))
    v_row = -(a_cc * g_r - a_rc * g_c) / det_safe
    v_col = -(a_rr * g_c - a_rc * g_r) / det_safe
    d_row = torch.where(full, v_row.clamp(-1.0, 1.0), d_row)
    d_col = torch.where(full, v_col.clamp(-1.0, 1.0), d_col)
    return torch.stack([row.to(x.dtype) + d_row, col.to(x.dtype) + d_col], dim=1)


def _rc_to_offset_en_m(peak_rc_px: torch.Tensor, hw: tuple[int, int], cell_m: float):
    """(B, 2) (row, col) -> (B, 2) east/north metres from the grid centre."""
    east_m, north_m = pixel_to_offset_en_m(peak_rc_px[:, 0], peak_rc_px[:, 1], hw[0], hw[1],
                                           cell_m)
    return torch.stack([east_m, north_m], dim=1)


def peak_offset_en_m(scores: torch.Tensor, cell_m: float,
                     valid: torch.Tensor | None = None) -> torch.Tensor:
    """Sub-cell peak (see peak_px) of scores (B, H, W) as (B, 2) east/north metres."""
    return _rc_to_offset_en_m(peak_px(scores, valid), scores.shape[1:], cell_m)


def _cell_offsets_en_m(hw, cell_m: float, like: torch.Tensor) -> torch.Tensor:
    """(H, W, 2) east/north metres of each cell centre, on like's device and dtype."""
    return BevGrid(int(hw[0]), int(hw[1]), cell_m).cell_offsets_en_m(like.device, like.dtype)


def heatmap_covariance_en_m2(prob: torch.Tensor, cell_m: float,
                             around: torch.Tensor | None = None) -> torch.Tensor:
    """Second moments of the probability mass, metres^2, (B, 2, 2) in (east, north).

    prob: (B, H, W) probabilities (each map sums to 1).
    around: optional (B, 2) east/north metres (e.g. the peak); None = the mass's mean.
    Each cell's mass is taken as spread uniformly over its square, so the result is the
    discrete second moment plus (cell_m^2 / 12) I: the covariance of that piecewise
    constant density, and a floor that keeps a single-cell peak from being overconfident.
    Around a point other than the mean it is the mean squared error of that point.
    """
    _check_map(prob, 'prob')
    B, H, W = prob.shape
    en = _cell_offsets_en_m((H, W), cell_m, prob).reshape(1, H * W, 2)
    p = prob.reshape(B, H * W, 1)
    if around is None:
        around = (p * en).sum(dim=1)
    elif around.shape != (B, 2):
        raise ValueError(f'around must be (B, 2) = ({B}, 2), got {tuple(around.shape)}')
    d = en - around.to(prob).unsqueeze(1)  # (B, HW, 2)
    cov = (p * d).transpose(1, 2) @ d
    cov = 0.5 * (cov + cov.transpose(1, 2))  # exactly symmetric (float32 matmul rounding)
    floor = (cell_m * cell_m / 12.0) * torch.eye(2, device=prob.device, dtype=prob.dtype)
    return cov + floor


def heatmap_confidence(prob: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """1 - normalised entropy of each map, (B,) in [0, 1].

    prob: (B, H, W); valid: optional mask giving the number N of cells that could hold
    mass (default all H W). 1 = all mass on one cell, 0 = uniform over the N cells.
    Scale-free (no metres), so it compares across levels and crop sizes of equal N.
    """
    _check_map(prob, 'prob')
    valid = _check_valid(valid, prob)
    B, H, W = prob.shape
    flat = prob.reshape(B, H * W)
    entropy = -torch.special.xlogy(flat, flat).sum(dim=1)
    if valid is None:
        n = flat.new_full((B,), float(H * W))
    else:
        n = valid.reshape(B, H * W).sum(dim=1).to(prob.dtype)
    log_n = torch.log(n.clamp(min=2.0))
    return (1.0 - entropy / log_n).clamp(0.0, 1.0)


def heatmap_mass_within_m(prob: torch.Tensor, cell_m: float, around: torch.Tensor,
                          radius_m: float) -> torch.Tensor:
    """Probability mass (B,) of cells whose centre lies within radius_m of around (B, 2)."""
    _check_map(prob, 'prob')
    B, H, W = prob.shape
    en = _cell_offsets_en_m((H, W), cell_m, prob).reshape(1, H * W, 2)
    dist2 = ((en - around.to(prob).unsqueeze(1)) ** 2).sum(dim=-1)
    return (prob.reshape(B, H * W) * (dist2 <= radius_m * radius_m)).sum(dim=1)


@dataclass(frozen=True)
class HeatmapPose:
    """Position estimate from a heatmap, in the crop's north-up frame.

    offset_en_m: (B, 2) east/north metres from the crop centre (sub-cell peak).
    covariance_en_m2: (B, 2, 2) second moments of the probability around that peak.
    confidence: (B,) in [0, 1] (heatmap_confidence).
    peak_px: (B, 2) sub-cell (row, col) of the peak on the heatmap grid.
    prob: (B, H, W) the sharpened probability the covariance and confidence come from.
    """

    offset_en_m: torch.Tensor
    covariance_en_m2: torch.Tensor
    confidence: torch.Tensor
    peak_px: torch.Tensor
    prob: torch.Tensor


def heatmap_to_pose(scores: torch.Tensor, cell_m: float, tau: float = DEFAULT_TAU,
                    valid: torch.Tensor | None = None, calibration=None) -> HeatmapPose:
    """scores (B, H, W) (+ valid mask) -> HeatmapPose; P = softmax(scores / tau).

    calibration: an optional filtering.HeatmapCalibration; the probability (and so the
    covariance and confidence) is then its calibrated mixture, the peak stays the scores';
    the covariance is multiplied by its covariance_scale.
    The peak is not differentiable (argmax); covariance and confidence are. Callers at
    inference wrap this in torch.no_grad().
    """
    log_prob = sharpened_log_softmax(scores, tau, valid)
    if calibration is not None:
        log_prob = calibration.log_prob(log_prob)
    prob = log_prob.exp()
    rc = peak_px(scores, valid)
    offset = _rc_to_offset_en_m(rc, scores.shape[1:], cell_m)
    cov = heatmap_covariance_en_m2(prob, cell_m, around=offset)
    if calibration is not None and calibration.covariance_scale != 1.0:
        cov = cov * calibration.covariance_scale
    conf = heatmap_confidence(prob, valid)
    return HeatmapPose(offset, cov, conf, rc, prob)


def _cubic_matrix(n_src: int, x_src: torch.Tensor) -> torch.Tensor:
    """(n_dst, n_src) Catmull-Rom weights sampling n_src values at coordinates x_src.

    Catmull-Rom (Keys, a = -0.5) reproduces polynomials up to degree 2, so the log of a
    Gaussian peak is resampled exactly; coordinates are clamped to [0, n_src - 1] and the
    ghost values beyond each end are linear extrapolations (2 f_0 - f_1).
    """
    if n_src == 1:
        return x_src.new_ones(x_src.shape[0], 1)
    x = x_src.clamp(0.0, n_src - 1.0)
    i0 = torch.floor(x).clamp(0, n_src - 2)
    t = (x - i0).unsqueeze(1)
    w = torch.cat([(-t ** 3 + 2 * t ** 2 - t) / 2, (3 * t ** 3 - 5 * t ** 2 + 2) / 2,
                   (-3 * t ** 3 + 4 * t ** 2 + t) / 2, (t ** 3 - t ** 2) / 2], dim=1)
    taps = i0.long().unsqueeze(1) + torch.arange(-1, 3, device=x.device)  # in [-1, n_src]
    padded = x_src.new_zeros(x_src.shape[0], n_src + 2)  # columns: index + 1
    padded.scatter_add_(1, taps + 1, w)
    m = padded[:, 1:-1].clone()
    m[:, 0] += 2 * padded[:, 0]
    m[:, 1] -= padded[:, 0]
    m[:, -1] += 2 * padded[:, -1]
    m[:, -2] -= padded[:, -1]
    return m


def resample_level(scores: torch.Tensor, cell_m: float, hw: tuple[int, int],
                   target_cell_m: float) -> torch.Tensor:
    """Resample a level (B, H, W) onto another centred grid hw of target_cell_m.

    Cell centres are matched in metres (both grids centred on the crop centre).
    Separable Catmull-Rom interpolation (exact for scores quadratic in position, such as
    a log-Gaussian peak, which bilinear would pull towards a coarse cell centre); beyond
    the level's extent the border value is kept. Differentiable. Returns (B, *hw).
    """
    _check_map(scores)
    B, H, W = scores.shape
    rows = torch.arange(hw[0], device=scores.device, dtype=scores.dtype)
    cols = torch.arange(hw[1], device=scores.device, dtype=scores.dtype)
    scale = target_cell_m / cell_m
    a_row = _cubic_matrix(H, (rows - (hw[0] - 1) / 2.0) * scale + (H - 1) / 2.0)
    a_col = _cubic_matrix(W, (cols - (hw[1] - 1) / 2.0) * scale + (W - 1) / 2.0)
    return torch.einsum('rh,bhw,cw->brc', a_row, scores, a_col)


def combine_levels(scores_levels: list[torch.Tensor], cell_m_levels: list[float],
                   weights: list[float] | None = None) -> tuple[torch.Tensor, float]:
    """Weighted mean of all levels' scores on the finest level's grid.

    scores_levels: list of (B, H_l, W_l); cell_m_levels: their cell sizes in metres.
    weights: optional per-level weights (default equal). Adding scores multiplies the
    levels' sharpened distributions (a product of experts) at a common temperature.
    Returns (scores (B, H_f, W_f), cell_m of the finest level).
    """
    if len(scores_levels) != len(cell_m_levels) or not scores_levels:
        raise ValueError(f'{len(scores_levels)} levels but {len(cell_m_levels)} cell sizes')
    weights = [1.0] * len(scores_levels) if weights is None else list(weights)
    if len(weights) != len(scores_levels):
        raise ValueError(f'{len(weights)} weights for {len(scores_levels)} levels')
    finest = min(range(len(cell_m_levels)), key=lambda i: cell_m_levels[i])
    hw, cell_m = tuple(scores_levels[finest].shape[1:]), cell_m_levels[finest]
    total = sum(weights)
    out = 0.0
    for s, c, w in zip(scores_levels, cell_m_levels, weights, strict=True):
        same = tuple(s.shape[1:]) == hw and math.isclose(c, cell_m)
        out = out + (w / total) * (s if same else resample_level(s, c, hw, cell_m))
    return out, cell_m
