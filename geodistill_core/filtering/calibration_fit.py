"""Fitting a HeatmapCalibration (temperature T, outlier weight w) on recorded frames.

Two ways (``train/calibrate.py`` runs them on a drive or a validation split):

- ``fit_with_truth``: maximise the likelihood of the true camera positions,
  mean log q(cell of the truth) / cell_m^2 (a truth outside the heatmap gets the floor).
- ``fit_from_gnss`` (label-free, for users without ground truth): the single-frame
  estimate p (the heatmap peak) and the GNSS fix z are two independent measurements of the
  camera position, so the innovation nu = p - z has covariance S = P + R (P: the calibrated
  heatmap's covariance around its peak, R: the fix covariance) and the normalised innovation
  squared nu^T S^-1 nu is chi-square with 2 degrees of freedom: mean 2. For every outlier
  weight on the grid the temperature that makes the mean NIS 2 is found (NIS falls as T
  widens P); of those pairs the one under which the fixes are most likely, log sum_x q(x)
  N(z; x, R), is chosen.

A sample is one frame in its satellite crop's north-up frame (east/north metres from the
crop centre): base log-probabilities (H, W) at the model's tau, the cell size, the peak,
and the truth and/or the fix with its 2x2 covariance. Grid search (no gradients): a few
seconds for a thousand 96 x 96 heatmaps on a CPU.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
import torch

from geodistill_core.filtering.calibration import HeatmapCalibration
from geodistill_core.geometry import BevGrid

TEMPERATURES = tuple(float(t) for t in np.geomspace(0.1, 100.0, 73))
OUTLIER_WEIGHTS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
                   0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CHI2_2DOF_95 = -2.0 * math.log(0.05)


@dataclass(frozen=True)
class CalibrationSample:
    """One frame. log_prob (H, W): base log-probabilities (exp sums to 1). cell_m: metres
    per heatmap cell. peak_en_m (2,): the single-frame estimate. truth_en_m (2,) or None.
    fix_en_m (2,) and fix_cov_en_m2 (2, 2) or None: the GNSS fix and its covariance."""

    log_prob: np.ndarray
    cell_m: float
    peak_en_m: np.ndarray
    truth_en_m: np.ndarray | None = None
    fix_en_m: np.ndarray | None = None
    fix_cov_en_m2: np.ndarray | None = None


class _Stack:
    """Samples stacked as float64 tensors: lp (B, N), cells_en (N, 2), peaks (B, 2)."""

    def __init__(self, samples: list[CalibrationSample]):
        if not samples:
            raise ValueError('no frames to calibrate on')
        shapes = {s.log_prob.shape for s in samples}
        cells = {round(float(s.cell_m), 9) for s in samples}
        if len(shapes) != 1 or len(cells) != 1:
            raise ValueError(f'all heatmaps must share one shape and cell size (one model, one '
                             f'crop setting), got shapes {sorted(shapes)} and cells '
                             f'{sorted(cells)}')
        (H, W), self.cell_m = shapes.pop(), cells.pop()
        self.hw = (H, W)
        self.lp = torch.from_numpy(np.stack([s.log_prob for s in samples])).double()
        self.lp = self.lp.reshape(len(samples), H * W)
        self.valid = torch.isfinite(self.lp)
        self.n_valid = self.valid.sum(dim=1).double()
        self.cells_en = BevGrid(H, W, self.cell_m).cell_offsets_en_m(
            torch.device('cpu'), torch.float64).reshape(H * W, 2)
        self.peaks = torch.from_numpy(np.stack([s.peak_en_m for s in samples])).double()

    def sharpened(self, temperature: float) -> torch.Tensor:
        """softmax(lp / T) (B, N), zero on masked cells."""
        return torch.softmax(self.lp / temperature, dim=1).nan_to_num(0.0)

    def covariance_around_peak(self, prob: torch.Tensor) -> torch.Tensor:
        """(B, 2, 2) second moments of prob (B, N) around each peak + cell^2 / 12 I."""
        d = self.cells_en.unsqueeze(0) - self.peaks.unsqueeze(1)  # (B, N, 2)
        cov = torch.einsum('bn,bni,bnj->bij', prob, d, d)
        return cov + (self.cell_m ** 2 / 12.0) * torch.eye(2, dtype=cov.dtype)

    def uniform(self) -> torch.Tensor:
        return self.valid.double() / self.n_valid.unsqueeze(1)


def _nearest_cells(stack: _Stack, points_en: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat index (B,), inside (B,)) of the heatmap cell holding each point (B, 2)."""
    H, W = stack.hw
    col = torch.round(points_en[:, 0] / stack.cell_m + (W - 1) / 2.0).long()
    row = torch.round(-points_en[:, 1] / stack.cell_m + (H - 1) / 2.0).long()
    inside = (row >= 0) & (row < H) & (col >= 0) & (col < W)
    return (row.clamp(0, H - 1) * W + col.clamp(0, W - 1)), inside


def _nees(errors: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    return torch.einsum('bi,bij,bj->b', errors, torch.linalg.inv(cov), errors)


def consistency(errors_en_m: np.ndarray, cov_en_m2: np.ndarray) -> dict:
    """Mean NEES and the fraction inside the 95% ellipse, errors (B, 2), covariances
    (B, 2, 2) (chi-square 2 dof: a consistent estimate has mean 2 and 95%)."""
    nees = _nees(torch.as_tensor(errors_en_m, dtype=torch.float64),
                 torch.as_tensor(cov_en_m2, dtype=torch.float64)).numpy()
    return {'nees_mean': float(nees.mean()), 'inside_95': float((nees <= CHI2_2DOF_95).mean()),
            'frames': int(nees.size)}


def _mixture_cov(stack: _Stack, sharp: torch.Tensor, weight: float) -> torch.Tensor:
    prob = (1.0 - weight) * sharp + weight * stack.uniform()
    return stack.covariance_around_peak(prob)


def fit_with_truth(samples: list[CalibrationSample], fitted_on: str = '',
                   temperatures=TEMPERATURES, outlier_weights=OUTLIER_WEIGHTS
                   ) -> HeatmapCalibration:
    """Maximum likelihood of the true positions (module doc); every sample needs truth."""
    if any(s.truth_en_m is None for s in samples):
        raise ValueError('fit_with_truth needs truth_en_m on every sample (or use '
                         'fit_from_gnss, which needs only the fixes)')
    stack = _Stack(samples)
    truth = torch.from_numpy(np.stack([s.truth_en_m for s in samples])).double()
    index, inside = _nearest_cells(stack, truth)
    log_cell_area = 2.0 * math.log(stack.cell_m)
    log_uniform = -torch.log(stack.n_valid) - log_cell_area
    best = (-math.inf, None, None)
    for temperature in temperatures:
        sharp_at_truth = torch.log_softmax(stack.lp / temperature, dim=1).gather(
            1, index.unsqueeze(1)).squeeze(1) - log_cell_area
        sharp_at_truth = torch.where(inside, sharp_at_truth, torch.full_like(
            sharp_at_truth, -math.inf))
        for weight in outlier_weights:
            ll = torch.logaddexp(sharp_at_truth + math.log1p(-weight),
                                 log_uniform + math.log(weight)).mean().item()
            if ll > best[0]:
                best = (ll, temperature, weight)
    ll, temperature, weight = best
    identity_ll = (torch.log_softmax(stack.lp, dim=1).gather(1, index.unsqueeze(1)).squeeze(1)
                   - log_cell_area)
    identity_ll = torch.where(inside, identity_ll, torch.full_like(identity_ll, -math.inf))
    cov = _mixture_cov(stack, stack.sharpened(temperature), weight)
    stats = {'mean_log_likelihood': ll, 'identity_mean_log_likelihood':
             float(identity_ll.mean()), 'truth_inside_heatmap': float(inside.double().mean()),
             'single_frame': consistency((stack.peaks - truth).numpy(), cov.numpy()),
             'single_frame_identity': consistency(
                 (stack.peaks - truth).numpy(),
                 stack.covariance_around_peak(stack.sharpened(1.0)).numpy()),
             'grid_edge': temperature in (temperatures[0], temperatures[-1])}
    return HeatmapCalibration(temperature, weight, 'truth', fitted_on, len(samples),
                              _round(stats))


def fit_from_gnss(samples: list[CalibrationSample], fitted_on: str = '',
                  temperatures=TEMPERATURES, outlier_weights=OUTLIER_WEIGHTS
                  ) -> HeatmapCalibration:
    """Label-free: mean NIS = 2 per outlier weight, then the most likely fixes (module doc)."""
    if any(s.fix_en_m is None or s.fix_cov_en_m2 is None for s in samples):
        raise ValueError('fit_from_gnss needs fix_en_m and fix_cov_en_m2 on every sample')
    stack = _Stack(samples)
    fix = torch.from_numpy(np.stack([s.fix_en_m for s in samples])).double()
    R = torch.from_numpy(np.stack([s.fix_cov_en_m2 for s in samples])).double()
    if not bool((torch.linalg.eigvalsh(R)[:, 0] > 0).all()):
        raise ValueError('every fix covariance must be positive definite')
    nu = stack.peaks - fix
    d = stack.cells_en.unsqueeze(0) - fix.unsqueeze(1)  # (B, N, 2)
    R_inv = torch.linalg.inv(R)
    log_g = (-0.5 * torch.einsum('bni,bij,bnj->bn', d, R_inv, d)
             - math.log(2 * math.pi) - 0.5 * torch.logdet(R).unsqueeze(1))
    g = log_g.exp() * stack.valid
    u = g.sum(dim=1) / stack.n_valid  # uniform part of the fix likelihood (B,)
    cov_uniform = stack.covariance_around_peak(stack.uniform())
    curves = {weight: [] for weight in outlier_weights}  # weight -> [(T, mean NIS, mean ll)]
    for temperature in temperatures:
        sharp = stack.sharpened(temperature)
        cov_sharp = stack.covariance_around_peak(sharp)  # moments are linear in the mass
        fix_lik = (sharp * g).sum(dim=1)
        for weight in outlier_weights:
            cov = (1.0 - weight) * cov_sharp + weight * cov_uniform
            nis = _nees(nu, cov + R).mean().item()
            ll = torch.log((1 - weight) * fix_lik + weight * u).mean().item()
            curves[weight].append((temperature, nis, ll))
    table = [(weight, _solve_nis(curve)) for weight, curve in curves.items()]
    weight, (temperature, nis, ll) = max(table, key=lambda item: item[1][2])
    cov = _mixture_cov(stack, stack.sharpened(temperature), weight)
    stats = {'mean_nis': nis, 'mean_fix_log_likelihood': ll,
             'innovation': consistency(nu.numpy(), (cov + R).numpy()),
             'grid_edge': temperature in (temperatures[0], temperatures[-1])}
    if all(s.truth_en_m is not None for s in samples):  # a check only, never used to fit
        truth = torch.from_numpy(np.stack([s.truth_en_m for s in samples])).double()
        stats['single_frame_check_with_truth'] = consistency((stack.peaks - truth).numpy(),
                                                             cov.numpy())
    return HeatmapCalibration(temperature, weight, 'gnss', fitted_on, len(samples),
                              _round(stats))


def _solve_nis(curve: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """The (temperature, NIS, log-lik) on the curve where the mean NIS crosses 2 (the
    nearest grid point; the end of the grid when it never does)."""
    for (t0, n0, l0), (t1, n1, l1) in zip(curve, curve[1:], strict=False):
        if (n0 - 2.0) * (n1 - 2.0) <= 0.0:
            return (t0, n0, l0) if abs(n0 - 2.0) <= abs(n1 - 2.0) else (t1, n1, l1)
    return min(curve, key=lambda c: abs(c[1] - 2.0))


def _round(stats):
    if isinstance(stats, dict):
        return {k: _round(v) for k, v in stats.items()}
    if isinstance(stats, float):
        return round(stats, 6) if math.isfinite(stats) else None
    return stats
