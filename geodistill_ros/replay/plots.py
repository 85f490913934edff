"""Pictures of a localizer run: trajectory over the satellite map, error over time, CDF.

matplotlib through its object API and the Agg canvas (no pyplot, no global backend, no
rclpy). Positions are ``map`` ENU metres; the satellite image is north-up and georeferenced
by a ``geodistill_core.geometry.NorthUpCrop`` (its size, metres per pixel and centre in
map metres; pixel (row, col) centres follow the raster convention of that module).
Colours: truth green, GNSS input orange, localized (the published, fused pose) blue, the
single-frame estimates (pose_single) purple.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from geodistill_core.geometry import NorthUpCrop
from geodistill_core.plots import empirical_cdf, new_figure, save_figure
from geodistill_ros.replay.trajectory_metrics import TrajectoryArrays

TRUTH_COLOR = '#00d000'
GNSS_COLOR = '#ff8c00'
ESTIMATE_COLOR = '#1f5fff'
SINGLE_COLOR = '#b04fd0'


def _xy(points, name: str) -> np.ndarray | None:
    if points is None:
        return None
    xy = np.asarray(points, np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f'{name} must be (N, 2) map metres, got {xy.shape}')
    return xy


def map_extent_m(crop: NorthUpCrop) -> tuple[float, float, float, float]:
    """(west, east, south, north) map metres of a crop's outer pixel edges (imshow extent)."""
    half_e, half_n = 0.5 * crop.cols * crop.meters_per_px, 0.5 * crop.rows * crop.meters_per_px
    return (crop.centre_east_m - half_e, crop.centre_east_m + half_e,
            crop.centre_north_m - half_n, crop.centre_north_m + half_n)


def plot_trajectory_on_map(path: str | Path, truth_xy_m, gnss_xy_m=None, estimate_xy_m=None,
                           satellite_rgb: np.ndarray | None = None,
                           satellite_crop: NorthUpCrop | None = None, margin_m: float = 20.0,
                           title: str = '', single_xy_m=None) -> Path:
    """Truth (N, 2) line, GNSS (M, 2) dots and localized (K, 2) track over the map; PNG.

    satellite_rgb: (H, W, 3) north-up image described by satellite_crop (H = rows,
    W = cols); both or neither. NaN rows (frames without output) are left out. The view is
    a square around the tracks' bounding box plus margin_m, equal axes.
    """
    truth, gnss, est = (_xy(p, n) for p, n in ((truth_xy_m, 'truth_xy_m'),
                                               (gnss_xy_m, 'gnss_xy_m'),
                                               (estimate_xy_m, 'estimate_xy_m')))
    if (satellite_rgb is None) != (satellite_crop is None):
        raise ValueError('give satellite_rgb and satellite_crop together')
    fig = new_figure((6.0, 6.0))
    ax = fig.add_axes((0.12, 0.17, 0.83, 0.76))
    if satellite_rgb is not None:
        image = np.asarray(satellite_rgb)
        if image.shape[:2] != (satellite_crop.rows, satellite_crop.cols):
            raise ValueError(f'satellite_rgb is {image.shape[:2]} but satellite_crop says '
                             f'{(satellite_crop.rows, satellite_crop.cols)} (rows, cols)')
        ax.imshow(image, extent=map_extent_m(satellite_crop), origin='upper', zorder=0)
    if gnss is not None:
        ax.plot(gnss[:, 0], gnss[:, 1], '.', color=GNSS_COLOR, ms=4, label='GNSS input',
                zorder=2)
    ax.plot(truth[:, 0], truth[:, 1], '-', color=TRUTH_COLOR, lw=3, label='ground truth',
            zorder=3)
    single = _xy(single_xy_m, 'single_xy_m')
    if single is not None:
        ax.plot(single[:, 0], single[:, 1], '.', color=SINGLE_COLOR, ms=3,
                label='single frame', zorder=3)
    if est is not None:
        ax.plot(est[:, 0], est[:, 1], '.-', color=ESTIMATE_COLOR, lw=1.2, ms=4,
                label='fused' if single is not None else 'localized', zorder=4)
    tracks = np.concatenate([p for p in (truth, gnss, est, single) if p is not None])
    tracks = tracks[np.isfinite(tracks).all(1)]
    centre = 0.5 * (tracks.min(0) + tracks.max(0))
    half = 0.5 * float((tracks.max(0) - tracks.min(0)).max()) + margin_m
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect('equal', adjustable='box')
    ax.set_xlabel('east [m]')
    ax.set_ylabel('north [m]')
    ax.set_title(title or 'trajectory (map frame, north up)')
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.09), ncol=4, frameon=False)
    return save_figure(fig, path)


def plot_errors_over_time(path: str | Path, stamps_ns, gnss_error_m, estimate_error_m,
                          thresholds_m=(1.0, 3.0, 5.0), single_error_m=None) -> Path:
    """Position error (m) of the GNSS input and of the localized output against drive time.

    stamps_ns (N,), errors (N,); NaN = no output (a gap in the line).
    """
    stamps = np.asarray(stamps_ns, np.int64)
    t_s = (stamps - stamps.min()) * 1e-9 if stamps.size else stamps.astype(float)
    fig = new_figure((8.0, 4.0))
    ax = fig.add_subplot()
    ax.plot(t_s, gnss_error_m, '-', color=GNSS_COLOR, lw=1, label='GNSS input')
    if single_error_m is not None:
        ax.plot(t_s, single_error_m, '.', color=SINGLE_COLOR, ms=2, label='single frame')
    ax.plot(t_s, estimate_error_m, '.-', color=ESTIMATE_COLOR, lw=1, ms=3,
            label='localized' if single_error_m is None else 'fused')
    for thr in thresholds_m:
        ax.axhline(thr, color='0.7', lw=0.8, ls='--', zorder=0)
    ax.set_xlabel('time since the first frame [s]')
    ax.set_ylabel('position error [m]')
    ax.set_ylim(bottom=0.0)
    ax.legend(loc='upper right')
    fig.tight_layout()
    return save_figure(fig, path)


def plot_error_cdf(path: str | Path, errors_m: Mapping[str, np.ndarray],
                   thresholds_m=(1.0, 3.0, 5.0)) -> Path:
    """Cumulative fraction of frames with error <= x, one curve per label.

    The denominator is every frame, NaN (no output) included: a curve ends at its coverage.
    """
    fig = new_figure((6.0, 4.0))
    ax = fig.add_subplot()
    colors = {'GNSS input': GNSS_COLOR, 'localized': ESTIMATE_COLOR, 'fused': ESTIMATE_COLOR,
              'single frame': SINGLE_COLOR}
    x_max = max(thresholds_m) * 2.0
    for label, errors in errors_m.items():
        finite, frac = empirical_cdf(errors)
        if not finite.size:
            continue
        x_max = max(x_max, float(np.percentile(finite, 99)) * 1.05)
        ax.step(np.concatenate([[0.0], finite]), np.concatenate([[0.0], frac]), where='post',
                color=colors.get(label), label=label)
    for thr in thresholds_m:
        ax.axvline(thr, color='0.7', lw=0.8, ls='--', zorder=0)
    ax.set_xlim(0.0, x_max)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel('position error [m]')
    ax.set_ylabel('fraction of frames')
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right')
    fig.tight_layout()
    return save_figure(fig, path)


def write_report_plots(out_dir: str | Path, arrays: TrajectoryArrays,
                       satellite_rgb: np.ndarray | None = None,
                       satellite_crop: NorthUpCrop | None = None,
                       single: TrajectoryArrays | None = None) -> dict[str, Path]:
    """trajectory.png, error_over_time.png and error_cdf.png in out_dir; returns the paths.

    single: the same frames' single-frame estimates (pose_single), drawn beside the
    published (fused) ones when given."""
    out_dir = Path(out_dir)
    gnss_err = np.linalg.norm(arrays.gnss_xy_m - arrays.truth_xy_m, axis=1)
    est_err = np.linalg.norm(arrays.estimate_xy_m - arrays.truth_xy_m, axis=1)
    single_err = (None if single is None else
                  np.linalg.norm(single.estimate_xy_m - single.truth_xy_m, axis=1))
    errors = {'GNSS input': gnss_err, 'localized': est_err} if single is None else {
        'GNSS input': gnss_err, 'single frame': single_err, 'fused': est_err}
    return {
        'trajectory': plot_trajectory_on_map(
            out_dir / 'trajectory.png', arrays.truth_xy_m, arrays.gnss_xy_m,
            arrays.estimate_xy_m, satellite_rgb, satellite_crop,
            single_xy_m=None if single is None else single.estimate_xy_m),
        'error_over_time': plot_errors_over_time(out_dir / 'error_over_time.png',
                                                 arrays.stamps_ns, gnss_err, est_err,
                                                 single_error_m=single_err),
        'error_cdf': plot_error_cdf(out_dir / 'error_cdf.png', errors),
    }
