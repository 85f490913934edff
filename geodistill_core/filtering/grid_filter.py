"""A 2-D histogram (grid) Bayes filter of the vehicle position in the map frame, with the
GNSS error as a per-cell Gaussian (Rao-Blackwellised): no ROS, numpy float64.

State, on a square window of ``size`` x ``size`` cells of ``cell_m`` metres that follows
the vehicle:

- ``weights`` (size, size): the posterior probability of each cell (sums to 1). Cell
  (i, j) is centred at map (x, y) = origin_xy_m + (j, i) * cell_m: column = east, row =
  north (ENU, REP-103; row 0 is the southern edge, unlike an image).
- ``bias_mean_m`` (size, size, 2) and ``bias_cov_m2`` (2, 2): the GNSS error b given the
  position, a first-order Gauss-Markov process (stationary covariance sigma_b^2 I,
  correlation time T_c): fix = position + b + white noise (R, the fix covariance). Every
  cell shares the covariance (the Kalman covariance does not depend on the measured
  values), only the mean differs. This is what lets a biased or wandering fix stream be
  fused at 10 Hz without the filter averaging the bias away and becoming overconfident;
  a camera that pins the position makes b observable, and the filter then corrects the
  fixes too.

Operations: ``predict`` (motion: the window origin moves by the displacement, exactly,
and process noise blurs the weights once enough has accumulated to be resolved by the
grid), ``update_likelihood`` (multiply by any per-cell likelihood, e.g. the calibrated
heatmap resampled onto the grid), ``update_gnss`` (the fix likelihood marginalised over b,
then each cell's b updated by its Kalman gain), ``estimate`` (mean, covariance) and
``recentre`` (the window follows the belief). Mass that leaves the window is lost and
counted (``lost_mass``).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import cv2
import numpy as np


@dataclass(frozen=True)
class GnssErrorModel:
    """The correlated part of the GNSS error: sigma_m per axis (stationary) and its
    correlation time. sigma_m 0 = white fixes only (the NavSatFix covariance)."""

    sigma_m: float = 3.0
    correlation_time_s: float = 60.0


@dataclass(frozen=True)
class GridEstimate:
    """mean_xy_m (2,), cov_xy_m2 (2, 2) of the position; bias_xy_m (2,) the expected GNSS
    error; max_prob: the largest cell probability."""

    mean_xy_m: np.ndarray
    cov_xy_m2: np.ndarray
    bias_xy_m: np.ndarray
    max_prob: float


def eig_range_2x2(m: np.ndarray) -> tuple[float, float]:
    """(smallest, largest) eigenvalue of a symmetric 2 x 2 matrix (closed form)."""
    a, b, d = float(m[0, 0]), 0.5 * float(m[0, 1] + m[1, 0]), float(m[1, 1])
    mid, rad = 0.5 * (a + d), math.hypot(0.5 * (a - d), b)
    return mid - rad, mid + rad


def gaussian_kernel(cov_cells2: np.ndarray, radius: int) -> np.ndarray:
    """(2r+1, 2r+1) kernel of N(0, cov) (in cells^2, axes (x=col, y=row)) sampled at
    integer offsets, normalised; index [r + dy, r + dx]."""
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    dx, dy = np.meshgrid(k, k)  # dx varies along columns
    inv = np.linalg.inv(cov_cells2)
    q = inv[0, 0] * dx * dx + 2.0 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
    kernel = np.exp(-0.5 * q)
    return kernel / kernel.sum()


def _convolve_same(arrays: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Zero-padded 'same' 2-D convolution of (C, n, n) arrays with a symmetric (k, k)
    kernel (OpenCV: direct for small kernels, DFT for large; correlation = convolution
    because the kernel is point-symmetric)."""
    return np.stack([cv2.filter2D(a, -1, kernel, borderType=cv2.BORDER_CONSTANT)
                     for a in arrays])


def _shift(array: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """array moved by (rows, cols) cells (content at [i, j] goes to [i - rows, j - cols]),
    zeros entering."""
    out = np.zeros_like(array)
    n0, n1 = array.shape[:2]
    src_r = slice(max(rows, 0), n0 + min(rows, 0))
    dst_r = slice(max(-rows, 0), n0 + min(-rows, 0))
    src_c = slice(max(cols, 0), n1 + min(cols, 0))
    dst_c = slice(max(-cols, 0), n1 + min(-cols, 0))
    out[dst_r, dst_c] = array[src_r, src_c]
    return out


class GridFilter:
    """The histogram filter of the module doc. size: cells per side; cell_m: metres."""

    def __init__(self, size: int = 160, cell_m: float = 0.5,
                 gnss_error: GnssErrorModel = GnssErrorModel(),
                 min_blur_sigma_cells: float = 0.5):
        if size < 8 or not cell_m > 0:
            raise ValueError(f'need size >= 8 cells and cell_m > 0, got {size}, {cell_m}')
        self.size, self.cell_m = int(size), float(cell_m)
        self.gnss_error = gnss_error
        self.min_blur_var_cells2 = min_blur_sigma_cells ** 2
        offsets = np.arange(self.size, dtype=np.float64) * self.cell_m
        self._grid_x, self._grid_y = np.meshgrid(offsets, offsets)  # relative to origin
        self.origin_xy_m = np.zeros(2)
        self.weights = np.full((self.size, self.size), 1.0 / self.size ** 2)
        self.bias_mean_m = np.zeros((self.size, self.size, 2))
        self.bias_cov_m2 = np.eye(2) * gnss_error.sigma_m ** 2
        self._pending_q_m2 = np.zeros((2, 2))
        self.lost_mass = 0.0
        self.initialized = False

    # --- geometry -------------------------------------------------------------------------
    @property
    def extent_m(self) -> float:
        return self.size * self.cell_m

    @property
    def centre_xy_m(self) -> np.ndarray:
        return self.origin_xy_m + 0.5 * (self.size - 1) * self.cell_m

    def cell_centres_xy_m(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) each (size, size): map metres of every cell centre."""
        return self._grid_x + self.origin_xy_m[0], self._grid_y + self.origin_xy_m[1]

    # --- initialisation -------------------------------------------------------------------
    def reset(self, centre_xy_m, cov_xy_m2: np.ndarray | None = None) -> None:
        """A new belief on a window centred at centre_xy_m: N(centre, cov) or, with cov
        None, uniform over the window; the GNSS error back at its stationary prior."""
        centre = np.asarray(centre_xy_m, np.float64).reshape(2)
        self.origin_xy_m = centre - 0.5 * (self.size - 1) * self.cell_m
        if cov_xy_m2 is None:
            self.weights = np.full((self.size, self.size), 1.0 / self.size ** 2)
        else:
            x, y = self.cell_centres_xy_m()
            d = np.stack([x - centre[0], y - centre[1]], axis=-1)
            inv = np.linalg.inv(np.asarray(cov_xy_m2, np.float64))
            w = np.exp(-0.5 * np.einsum('...i,ij,...j->...', d, inv, d))
            self.weights = w / w.sum()
        self.bias_mean_m = np.zeros((self.size, self.size, 2))
        self.bias_cov_m2 = np.eye(2) * self.gnss_error.sigma_m ** 2
        self._pending_q_m2 = np.zeros((2, 2))
        self.lost_mass = 0.0
        self.initialized = True

    # --- prediction -----------------------------------------------------------------------
    def predict(self, delta_xy_m, q_xy_m2: np.ndarray, dt_s: float) -> None:
        """Move by delta_xy_m (2,) map metres with process noise q_xy_m2 (2, 2) over dt_s."""
        delta = np.asarray(delta_xy_m, np.float64).reshape(2)
        q = np.asarray(q_xy_m2, np.float64).reshape(2, 2)
        if not (np.isfinite(delta).all() and np.isfinite(q).all() and math.isfinite(dt_s)):
            raise ValueError(f'predict needs finite values, got {delta}, {q}, {dt_s}')
        if dt_s < 0 or eig_range_2x2(q)[0] < -1e-12:
            raise ValueError(f'predict needs dt_s >= 0 and a positive semi-definite q; got '
                             f'{dt_s}, {q.tolist()}')
        self.origin_xy_m = self.origin_xy_m + delta
        self._pending_q_m2 = self._pending_q_m2 + 0.5 * (q + q.T)
        q_cells2 = self._pending_q_m2 / self.cell_m ** 2
        if eig_range_2x2(q_cells2)[1] >= self.min_blur_var_cells2:
            self._blur(q_cells2)
            self._pending_q_m2 = np.zeros((2, 2))
        self._bias_propagate(dt_s)

    def _blur(self, q_cells2: np.ndarray) -> None:
        radius = int(min(math.ceil(3.5 * math.sqrt(eig_range_2x2(q_cells2)[1])), self.size))
        kernel = gaussian_kernel(q_cells2 + 1e-9 * np.eye(2), max(radius, 1))
        weighted = np.concatenate([self.weights[None],
                                   np.moveaxis(self.bias_mean_m * self.weights[..., None],
                                               -1, 0)])
        out = _convolve_same(weighted, kernel)
        w = np.clip(out[0], 0.0, None)
        safe = np.where(w > 1e-300, w, 1.0)
        self.bias_mean_m = np.where(w[..., None] > 1e-300,
                                    np.moveaxis(out[1:], 0, -1) / safe[..., None], 0.0)
        self._set_weights(w)

    def _bias_propagate(self, dt_s: float) -> None:
        model = self.gnss_error
        if model.sigma_m <= 0:
            return
        phi = math.exp(-dt_s / model.correlation_time_s) if model.correlation_time_s > 0 \
            else 0.0
        self.bias_mean_m *= phi
        self.bias_cov_m2 = (phi * phi) * self.bias_cov_m2 + (1.0 - phi * phi) * np.eye(2) \
            * model.sigma_m ** 2

    # --- updates --------------------------------------------------------------------------
    def update_likelihood(self, likelihood: np.ndarray) -> float:
        """Multiply by a per-cell likelihood (size, size) >= 0; returns log of the evidence
        sum(w * L) (relative: only differences between hypotheses mean anything)."""
        lik = np.asarray(likelihood, np.float64)
        if lik.shape != self.weights.shape or not np.isfinite(lik).all() or (lik < 0).any():
            raise ValueError(f'likelihood must be finite, >= 0 and {self.weights.shape}, got '
                             f'{lik.shape}')
        posterior = self.weights * lik
        evidence = float(posterior.sum())
        if not evidence > 0:
            raise ValueError('the likelihood is zero wherever the belief has mass')
        self.weights = posterior / evidence
        return math.log(evidence)

    def gnss_predictive(self, R_xy_m2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean (2,) and covariance (2, 2) of the next fix under the belief (for gating)."""
        x, y = self.cell_centres_xy_m()
        w = self.weights
        zx, zy = x + self.bias_mean_m[..., 0], y + self.bias_mean_m[..., 1]
        mx, my = float((w * zx).sum()), float((w * zy).sum())
        dx, dy = zx - mx, zy - my
        wdx = w * dx
        cov = np.array([[(wdx * dx).sum(), (wdx * dy).sum()],
                        [(wdx * dy).sum(), (w * dy * dy).sum()]])
        return np.array([mx, my]), cov + self.bias_cov_m2 + np.asarray(R_xy_m2, np.float64)

    def update_gnss(self, fix_xy_m, R_xy_m2: np.ndarray) -> float:
        """Fuse one fix (map metres) with white-noise covariance R (2, 2); returns the log
        evidence. Weights times N(fix; x + b_mean, P + R); each cell's b then updated."""
        z = np.asarray(fix_xy_m, np.float64).reshape(2)
        R = np.asarray(R_xy_m2, np.float64).reshape(2, 2)
        S = self.bias_cov_m2 + R
        S_inv = np.linalg.inv(S)
        x, y = self.cell_centres_xy_m()
        nu_x = z[0] - x - self.bias_mean_m[..., 0]
        nu_y = z[1] - y - self.bias_mean_m[..., 1]
        m = (S_inv[0, 0] * nu_x * nu_x + 2.0 * S_inv[0, 1] * nu_x * nu_y
             + S_inv[1, 1] * nu_y * nu_y)
        m_min = float(m.min())
        lik = np.exp(-0.5 * (m - m_min))  # shifted for range; the constant cancels
        log_evidence = self.update_likelihood(lik) - 0.5 * m_min - math.log(
            2 * math.pi * math.sqrt(np.linalg.det(S)))
        if self.gnss_error.sigma_m > 0:
            K = self.bias_cov_m2 @ S_inv
            self.bias_mean_m[..., 0] += K[0, 0] * nu_x + K[0, 1] * nu_y
            self.bias_mean_m[..., 1] += K[1, 0] * nu_x + K[1, 1] * nu_y
            self.bias_cov_m2 = (np.eye(2) - K) @ self.bias_cov_m2
            self.bias_cov_m2 = 0.5 * (self.bias_cov_m2 + self.bias_cov_m2.T)
        return log_evidence

    # --- read-out and window --------------------------------------------------------------
    def estimate(self) -> GridEstimate:
        x, y = self.cell_centres_xy_m()
        w = self.weights
        mx, my = float((w * x).sum()), float((w * y).sum())
        dx, dy = x - mx, y - my
        wdx = w * dx
        cov = np.array([[(wdx * dx).sum(), (wdx * dy).sum()],
                        [(wdx * dy).sum(), (w * dy * dy).sum()]])
        cov += (self.cell_m ** 2 / 12.0) * np.eye(2) + self._pending_q_m2
        bias = np.array([(w * self.bias_mean_m[..., 0]).sum(),
                         (w * self.bias_mean_m[..., 1]).sum()])
        return GridEstimate(np.array([mx, my]), cov, bias, float(w.max()))

    def recentre(self, max_offset_fraction: float = 0.125,
                 mean_xy_m: np.ndarray | None = None) -> bool:
        """Move the window (whole cells) onto the belief's mean (mean_xy_m when the caller
        has it) when it is more than max_offset_fraction of the window away from the
        centre; True when it moved."""
        mean = self.estimate().mean_xy_m if mean_xy_m is None else mean_xy_m
        offset = (mean - self.centre_xy_m) / self.cell_m
        if np.abs(offset).max() * self.cell_m <= max_offset_fraction * self.extent_m:
            return False
        cols, rows = (int(round(v)) for v in offset)
        self.origin_xy_m = self.origin_xy_m + np.array([cols, rows]) * self.cell_m
        self.bias_mean_m = _shift(self.bias_mean_m, rows, cols)
        self._set_weights(_shift(self.weights, rows, cols))
        return True

    def _set_weights(self, weights: np.ndarray) -> None:
        total = float(weights.sum())
        self.lost_mass += max(0.0, 1.0 - total)
        if not total > 0:
            raise ValueError('the belief lost all its mass (window too small?)')
        self.weights = weights / total
