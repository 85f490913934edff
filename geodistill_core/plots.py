"""Evaluation pictures: error CDFs and heatmaps over their satellite crops (PNG).

matplotlib through its object API and the Agg canvas (no pyplot, no global backend).
Heatmap panels are drawn in metres east/north of the satellite crop centre (north up):
the crop of S px at m metres/px spans +-S m / 2, a heatmap of (h, w) cells of c metres
spans +-w c / 2 by +-h c / 2, so cell (i, j) is centred at ((j - (w-1)/2) c,
-(i - (h-1)/2) c), the convention of geodistill_core.heatmap.
Colours: truth green, crop centre (the GNSS prior) orange, predictions red / blue.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

TRUTH_COLOR = '#00d000'
CENTRE_COLOR = '#ff8c00'
PREDICTION_COLORS = ('#ff2020', '#1f5fff', '#c000c0', '#00b0b0')
DPI = 100


def new_figure(size_in: tuple[float, float]) -> Figure:
    """A figure of size_in inches at DPI on its own Agg canvas (no pyplot state)."""
    fig = Figure(figsize=size_in, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write fig to path (PNG by suffix) at DPI, creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def empirical_cdf(errors) -> tuple[np.ndarray, np.ndarray]:
    """(sorted finite errors (K,), fraction of ALL N samples <= each (K,)): failures
    (NaN / inf) never count as hits, so the curve ends at (N - failures) / N."""
    e = np.asarray(errors, np.float64).reshape(-1)
    good = np.sort(e[np.isfinite(e)])
    n = max(e.size, 1)
    return good, np.arange(1, good.size + 1) / n


def plot_error_cdf(path: str | Path, errors_by_label: Mapping[str, np.ndarray],
                   thresholds: Sequence[float] = (1.0, 3.0, 5.0), unit: str = 'm',
                   title: str = '') -> Path:
    """Cumulative share of items within an error, one curve per label; PNG at `path`."""
    if not errors_by_label:
        raise ValueError('plot_error_cdf needs at least one error array')
    fig = new_figure((6.0, 4.5))
    ax = fig.add_subplot()
    top = max(thresholds) * 2.0 if thresholds else 1.0
    for k, (label, errors) in enumerate(errors_by_label.items()):
        x, y = empirical_cdf(errors)
        if x.size:
            top = max(top, float(np.percentile(x, 95)) * 1.1)
        n = np.asarray(errors).size
        failed = n - x.size
        text = f'{label} (median {np.median(x):.2f} {unit}' if x.size else f'{label} (no hits'
        text += f', {failed} failed)' if failed else ')'
        ax.step(np.concatenate([[0.0], x]), np.concatenate([[0.0], y]), where='post',
                color=PREDICTION_COLORS[k % len(PREDICTION_COLORS)], label=text)
    for thr in thresholds:
        ax.axvline(thr, color='0.7', linestyle=':', linewidth=1)
    ax.set_xlim(0.0, top)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(f'error ({unit})')
    ax.set_ylabel('fraction of items')
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right', fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


@dataclass(frozen=True)
class HeatmapPanel:
    """One localizer's output on one item: prob (h, w) north-up, cell_m metres per cell,
    pred_en_m (2,) its estimate (east, north metres from the crop centre; NaN = failed)."""

    label: str
    prob: np.ndarray
    cell_m: float
    pred_en_m: np.ndarray


def _heatmap_rgba(prob: np.ndarray) -> np.ndarray:
    """(h, w, 4): inferno colours, alpha grows with the probability (0 where none)."""
    p = np.nan_to_num(np.asarray(prob, np.float64), nan=0.0).clip(min=0.0)
    scaled = p / p.max() if p.max() > 0 else p
    rgba = colormaps['inferno'](scaled)
    rgba[..., 3] = 0.75 * scaled
    return rgba


def plot_heatmaps_over_satellite(path: str | Path, satellite_rgb: np.ndarray,
                                 sat_meters_per_px: float, panels: Sequence[HeatmapPanel],
                                 true_en_m: np.ndarray, title: str = '') -> Path:
    """Side-by-side panels (e.g. before | after distillation) of one item: each localizer's
    heatmap over the satellite crop (S, S, 3) with truth, prediction and crop centre."""
    sat = np.asarray(satellite_rgb)
    if sat.ndim != 3 or sat.shape[-1] != 3 or sat.shape[0] != sat.shape[1]:
        raise ValueError(f'satellite_rgb must be (S, S, 3), got {sat.shape}')
    if not panels:
        raise ValueError('plot_heatmaps_over_satellite needs at least one panel')
    half = 0.5 * sat.shape[0] * float(sat_meters_per_px)
    fig = new_figure((4.2 * len(panels), 4.6))
    for k, panel in enumerate(panels):
        prob = np.asarray(panel.prob)
        if prob.ndim != 2:
            raise ValueError(f'{panel.label}: prob must be (h, w), got {prob.shape}')
        ax = fig.add_subplot(1, len(panels), k + 1)
        ax.imshow(np.clip(sat, 0.0, 1.0), extent=(-half, half, -half, half),
                  interpolation='bilinear')
        hh, hw = 0.5 * prob.shape[0] * panel.cell_m, 0.5 * prob.shape[1] * panel.cell_m
        ax.imshow(_heatmap_rgba(prob), extent=(-hw, hw, -hh, hh), interpolation='nearest')
        ax.plot([0.0], [0.0], '+', color=CENTRE_COLOR, markersize=14, mew=2,
                label='crop centre (prior)')
        ax.plot([true_en_m[0]], [true_en_m[1]], 'o', mfc='none', color=TRUTH_COLOR,
                markersize=11, mew=2, label='truth')
        pred = np.asarray(panel.pred_en_m, np.float64)
        color = PREDICTION_COLORS[k % len(PREDICTION_COLORS)]
        if np.all(np.isfinite(pred)):
            error = float(np.hypot(*(pred - np.asarray(true_en_m, np.float64))))
            ax.plot([pred[0]], [pred[1]], 'x', color=color, markersize=11, mew=2,
                    label='prediction')
            ax.set_title(f'{panel.label}: error {error:.2f} m', fontsize=9)
        else:
            ax.set_title(f'{panel.label}: failed (no estimate)', fontsize=9)
        ax.set_xlim(-half, half)
        ax.set_ylim(-half, half)
        ax.set_xlabel('east (m)')
        ax.set_ylabel('north (m)')
        ax.legend(loc='lower left', fontsize=7, framealpha=0.7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
