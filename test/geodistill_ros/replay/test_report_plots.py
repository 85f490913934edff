"""Report pictures: files written, and the truth drawn where the georeference says."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from geodistill_core.geometry import NorthUpCrop
from geodistill_ros.replay.plots import (
    TRUTH_COLOR,
    map_extent_m,
    plot_trajectory_on_map,
    write_report_plots,
)
from geodistill_ros.replay.trajectory_metrics import FrameRecord, stack_records

# a 40 x 40 px grey map, 0.5 m/px, centred at (100, 50) m; a red block in its north-east
# corner: rows 0..9, cols 30..39 = east 105..110 m, north 55..60 m (pixel edges)
CROP = NorthUpCrop(rows=40, cols=40, meters_per_px=0.5, centre_east_m=100.0,
                   centre_north_m=50.0)
RED_WEST, RED_NORTH, RED_SIZE_M = 105.0, 60.0, 5.0


def synthetic_map() -> np.ndarray:
    image = np.full((40, 40, 3), 128, np.uint8)
    image[0:10, 30:40] = (255, 0, 0)
    return image


def read_rgb(path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def mask_of(rgb: np.ndarray, color) -> np.ndarray:
    return (np.abs(rgb.astype(int) - np.asarray(color)) <= 12).all(-1)


def test_map_extent_is_the_outer_pixel_edges():
    assert map_extent_m(CROP) == (90.0, 110.0, 40.0, 60.0)
    # pixel (0, 39) centre: half a pixel inside the north-east corner
    assert CROP.pixel_to_map(0, 39) == (109.75, 59.75)


def test_truth_line_lands_where_the_georeference_says(tmp_path):
    # truth: an east-going line at north 52.5 m from east 92 to 98 m (west of the block)
    truth = np.stack([np.linspace(92.0, 98.0, 13), np.full(13, 52.5)], -1)
    gnss = truth + [0.0, -8.0]
    path = plot_trajectory_on_map(tmp_path / 'trajectory.png', truth, gnss, None,
                                  synthetic_map(), CROP, margin_m=15.0)
    image = read_rgb(path)
    red = mask_of(image, (255, 0, 0))
    rows, cols = np.nonzero(red)
    assert red.sum() > 100, 'the red block must be visible'
    r0, c0 = rows.min(), cols.min()
    px_per_m_y = (rows.max() - r0 + 1) / RED_SIZE_M
    px_per_m_x = (cols.max() - c0 + 1) / RED_SIZE_M
    assert px_per_m_x == pytest.approx(px_per_m_y, rel=0.05)  # equal axes

    def to_png(east_m, north_m):
        return (r0 + (RED_NORTH - north_m) * px_per_m_y,
                c0 + (east_m - RED_WEST) * px_per_m_x)

    truth_color = tuple(int(TRUTH_COLOR[i:i + 2], 16) for i in (1, 3, 5))
    green = mask_of(image, truth_color)
    assert green.sum() > 20
    row, col_w = to_png(93.0, 52.5)
    _, col_e = to_png(97.0, 52.5)
    band = green[round(row) - 3:round(row) + 4, round(col_w):round(col_e)]
    assert band.any(0).mean() > 0.9, 'the truth line is missing where it belongs'
    # counter-examples: a north-south flip puts it at north 47.5 m, an east-west flip at
    # east 103..107 m: no truth colour there
    row_flip, _ = to_png(93.0, 47.5)
    assert not green[round(row_flip) - 3:round(row_flip) + 4, round(col_w):round(col_e)].any()
    _, col_flip_w = to_png(103.0, 52.5)
    _, col_flip_e = to_png(107.0, 52.5)
    assert not green[round(row) - 3:round(row) + 4, round(col_flip_w):round(col_flip_e)].any()
    # the truth line's pixels span the expected rows only
    g_rows, g_cols = np.nonzero(green)
    assert abs(np.median(g_rows) - row) < 2.0
    assert abs(g_cols.min() - to_png(92.0, 52.5)[1]) < 4
    assert abs(g_cols.max() - to_png(98.0, 52.5)[1]) < 4


def test_write_report_plots_writes_three_pngs(tmp_path):
    records = []
    for k in range(30):
        truth = (90.0 + k, 45.0 + 0.5 * k)
        est = None if k % 7 == 3 else (truth[0] + 0.8, truth[1] - 0.4)
        records.append(FrameRecord(k * 100_000_000, truth, 0.46, (truth[0] + 4.0, truth[1]),
                                   est, None if est is None else 0.1, np.eye(2)))
    paths = write_report_plots(tmp_path / 'report', stack_records(records), synthetic_map(),
                               CROP)
    assert set(paths) == {'trajectory', 'error_over_time', 'error_cdf'}
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 5000
        image = read_rgb(path)
        assert image.shape[0] >= 300 and image.std() > 5  # not blank
    # without a map, and with every output missing
    empty = [FrameRecord(k, (float(k), 0.0), 0.0, (float(k), 1.0)) for k in range(3)]
    paths = write_report_plots(tmp_path / 'bare', stack_records(empty))
    assert all(p.stat().st_size > 0 for p in paths.values())


def test_bad_inputs_are_refused(tmp_path):
    truth = np.zeros((3, 2))
    with pytest.raises(ValueError, match='together'):
        plot_trajectory_on_map(tmp_path / 'x.png', truth, satellite_rgb=synthetic_map())
    with pytest.raises(ValueError, match='rows, cols'):
        plot_trajectory_on_map(tmp_path / 'x.png', truth, satellite_rgb=synthetic_map()[:20],
                               satellite_crop=CROP)
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        plot_trajectory_on_map(tmp_path / 'x.png', np.zeros(3))
