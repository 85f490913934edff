"""Fitting a HeatmapCalibration (temperature T, outlier weight w) on recorded frames.

Two ways (``train/calibrate.py`` runs them on a drive or a validation split):

- ``fit_with_truth``: maximise the likelihood of the true camera positions,
  mean log q(cell of the truth) / cell_m^2 (a truth outside the heatmap gets the floor);
  then the covariance scale s that puts 95% of the truths inside the 95% ellipse of s
  times the calibrated heatmap's covariance (s = the 95th percentile of the frames' NEES /
  5.99; calibration.py says why; clipped to [COV_SCALE_MIN, COV_SCALE_MAX]).
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

TEMPERATURES = tuple(float(t) for t in np.geomspace(0.02, 100.0, 89))
OUTLIER_WEIGHTS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
                   0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CHI2_2DOF_95 = -2.0 * math.log(0.05)
COV_SCALE_MIN, COV_SCALE_MAX = 0.05, 20.0


@dataclass(frozen=True)
class CalibrationSample:
    """One frame. log_prob (H, W): base log-probabilities (exp sums to 1). cell_m: metres
    per heatmap cell. peak_en_m (2,): the single-frame estimate. truth_en_m (2,) or None.
    fix_en_m (2,) and fix_cov_en_m2 (2, 2) or None: the GNSS fix and its covariance.
    drive: name of the drive the frame came from, or None (the truth fit then also reports
    the single-frame consistency per drive: one pooled scale over drives of different
    city styles can be right on average and wrong on each)."""

    log_prob: np.ndarray
    cell_m: float
    peak_en_m: np.ndarray
    truth_en_m: np.ndarray | None = None
    fix_en_m: np.ndarray | None = None
    fix_cov_en_m2: np.ndarray | None = None
    drive: str | None = None


class _Stack:
    """Samples kept as float32 (B, N) log-probabilities; per-temperature statistics are
    computed CHUNK frames at a time (a 1200-frame, 256 x 256 set fits in a few GB)."""

    CHUNK = 64

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
        self.lp = torch.from_numpy(np.stack([s.log_prob for s in samples]).astype(np.float32))
        self.lp = self.lp.reshape(len(samples), H * W)
        self.n_valid = torch.isfinite(self.lp).sum(dim=1).double()
        self.cells_en = BevGrid(H, W, self.cell_m).cell_offsets_en_m(
            torch.device('cpu'), torch.float64).reshape(H * W, 2)
        e, n = self.cells_en[:, 0], self.cells_en[:, 1]
        self._moments = torch.stack([torch.ones_like(e), e, n, e * e, e * n, n * n], dim=1)
        self.peaks = torch.from_numpy(np.stack([s.peak_en_m for s in samples])).double()

    def chunks(self):
        for start in range(0, self.lp.shape[0], self.CHUNK):
            yield slice(start, start + self.CHUNK), self.lp[start:start + self.CHUNK].double()

    def covariance_from_moments(self, moments: torch.Tensor) -> torch.Tensor:
        """(B, 2, 2) second moments around each peak + cell^2 / 12 I from the mass moments
        (B, 6) = sum of p * (1, e, n, e^2, e n, n^2)."""
        mass, m1e, m1n, xx, xy, yy = moments.unbind(1)
        pe, pn = self.peaks[:, 0], self.peaks[:, 1]
        cxx = xx - 2 * pe * m1e + mass * pe ** 2
        cxy = xy - pe * m1n - pn * m1e + mass * pe * pn
        cyy = yy - 2 * pn * m1n + mass * pn ** 2
        cov = torch.stack([torch.stack([cxx, cxy], 1), torch.stack([cxy, cyy], 1)], 1)
        return cov + (self.cell_m ** 2 / 12.0) * torch.eye(2, dtype=cov.dtype)

    def per_temperature(self, temperatures, truth_index=None, fix_lik_weights=None) -> dict:
        """For each temperature T, per frame: 'cov' (T, B, 2, 2) of softmax(lp / T) around
        the peak, 'log_at_truth' (T, B) its log-probability at truth_index (B,), 'fix_lik'
        (T, B) = sum softmax * fix_lik_weights(chunk slice, (b, N)); and the uniform
        distribution's 'cov_uniform' (B, 2, 2) and 'fix_lik_uniform' (B,)."""
        B, nT = self.lp.shape[0], len(temperatures)
        moments = torch.zeros(nT, B, 6, dtype=torch.float64)
        log_at_truth = torch.zeros(nT, B, dtype=torch.float64)
        fix_lik = torch.zeros(nT, B, dtype=torch.float64)
        uniform_moments = torch.zeros(B, 6, dtype=torch.float64)
        fix_lik_uniform = torch.zeros(B, dtype=torch.float64)
        for sl, lp in self.chunks():
            valid = torch.isfinite(lp)
            uniform = valid.double() / valid.sum(dim=1, keepdim=True)
            uniform_moments[sl] = uniform @ self._moments
            weights = None if fix_lik_weights is None else fix_lik_weights(sl) * valid
            if weights is not None:
                fix_lik_uniform[sl] = (uniform * weights).sum(dim=1)
            for k, temperature in enumerate(temperatures):
                log_sharp = torch.log_softmax(lp / temperature, dim=1)
                sharp = log_sharp.exp().nan_to_num(0.0)
                moments[k, sl] = sharp @ self._moments
                if truth_index is not None:
                    log_at_truth[k, sl] = log_sharp.gather(1, truth_index[sl, None])[:, 0]
                if weights is not None:
                    fix_lik[k, sl] = (sharp * weights).sum(dim=1)
        cov = torch.stack([self.covariance_from_moments(m) for m in moments])
        return {'cov': cov, 'log_at_truth': log_at_truth, 'fix_lik': fix_lik,
                'cov_uniform': self.covariance_from_moments(uniform_moments),
                'fix_lik_uniform': fix_lik_uniform}


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
    temps = list(temperatures) + ([1.0] if 1.0 not in temperatures else [])
    table = stack.per_temperature(temps, truth_index=index)
    log_cell_area = 2.0 * math.log(stack.cell_m)
    log_uniform = -torch.log(stack.n_valid) - log_cell_area
    at_truth = torch.where(inside, table['log_at_truth'] - log_cell_area,
                           torch.full_like(table['log_at_truth'], -math.inf))
    best = (-math.inf, None, None, None)
    for k, temperature in enumerate(temperatures):
        for weight in outlier_weights:
            ll = torch.logaddexp(at_truth[k] + math.log1p(-weight),
                                 log_uniform + math.log(weight)).mean().item()
            if ll > best[0]:
                best = (ll, temperature, weight, k)
    ll, temperature, weight, k = best
    identity = temps.index(1.0)
    errors = (stack.peaks - truth).numpy()
    cov = (1 - weight) * table['cov'][k] + weight * table['cov_uniform']
    scale = coverage_scale(errors, cov.numpy())
    stats = {'mean_log_likelihood': ll,
             'identity_mean_log_likelihood': float(at_truth[identity].mean()),
             'truth_inside_heatmap': float(inside.double().mean()),
             'single_frame': consistency(errors, scale * cov.numpy()),
             'single_frame_unscaled': consistency(errors, cov.numpy()),
             'single_frame_identity': consistency(errors, table['cov'][identity].numpy()),
             'grid_edge': temperature in (temperatures[0], temperatures[-1])}
    if all(s.drive is not None for s in samples):
        drives = np.array([s.drive for s in samples])
        stats['single_frame_per_drive'] = {
            name: consistency(errors[drives == name], scale * cov.numpy()[drives == name])
            for name in dict.fromkeys(drives.tolist())}
    return HeatmapCalibration(temperature, weight, 'truth', fitted_on, len(samples),
                              _round(stats), covariance_scale=round(scale, 6))


def coverage_scale(errors_en_m: np.ndarray, cov_en_m2: np.ndarray,
                   coverage: float = 0.95) -> float:
    """The s for which a fraction `coverage` of the errors (B, 2) lie inside the 95%
    ellipses of s * cov (B, 2, 2): the `coverage` quantile of the NEES over 5.99, clipped
    to [COV_SCALE_MIN, COV_SCALE_MAX]."""
    nees = _nees(torch.as_tensor(errors_en_m, dtype=torch.float64),
                 torch.as_tensor(cov_en_m2, dtype=torch.float64)).numpy()
    if nees.size == 0 or not np.isfinite(nees).all():
        raise ValueError('coverage_scale needs finite errors and covariances')
    scale = float(np.quantile(nees, coverage)) / CHI2_2DOF_95
    return min(max(scale, COV_SCALE_MIN), COV_SCALE_MAX)


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
    R_inv = torch.linalg.inv(R)
    log_norm = -math.log(2 * math.pi) - 0.5 * torch.logdet(R)

    def fix_density(sl: slice) -> torch.Tensor:
        """N(fix; cell, R) for the frames of one chunk, (b, N)."""
        dx = stack.cells_en[:, 0].unsqueeze(0) - fix[sl, :1]
        dy = stack.cells_en[:, 1].unsqueeze(0) - fix[sl, 1:]
        Ri = R_inv[sl]
        quad = (Ri[:, 0, 0, None] * dx * dx + 2 * Ri[:, 0, 1, None] * dx * dy
                + Ri[:, 1, 1, None] * dy * dy)
        return torch.exp(-0.5 * quad + log_norm[sl, None])
    table = stack.per_temperature(temperatures, fix_lik_weights=fix_density)
    curves = {weight: [] for weight in outlier_weights}  # weight -> [(T, mean NIS, mean ll)]
    for k, temperature in enumerate(temperatures):
        for weight in outlier_weights:
            cov = (1.0 - weight) * table['cov'][k] + weight * table['cov_uniform']
            nis = _nees(nu, cov + R).mean().item()
            ll = torch.log((1 - weight) * table['fix_lik'][k]
                           + weight * table['fix_lik_uniform']).mean().item()
            curves[weight].append((temperature, nis, ll))
    table_nis = [(weight, _solve_nis(curve)) for weight, curve in curves.items()]
    weight, (temperature, nis, ll) = max(table_nis, key=lambda item: item[1][2])
    k = list(temperatures).index(temperature)
    cov = (1.0 - weight) * table['cov'][k] + weight * table['cov_uniform']
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
