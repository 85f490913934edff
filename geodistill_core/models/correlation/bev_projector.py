"""Ground feature maps -> BEV templates whose cells equal the satellite feature cells.

Scales (method.md section 3, "get the scales right"): a satellite crop of Hs x Ws pixels
at sat_meters_per_px, whose feature map at some level is h x w, has feature cells of
sat_meters_per_px * Hs / h metres (satellite_cell_m). The BEV template of that level uses
exactly that cell size, so one template cell covers one satellite feature cell; nothing is
read from a stride constant.

The template is a north-up BevGrid centred on the camera (geometry.raster convention) of
an odd number of cells per side (template_shape), so that when the camera sits on a
satellite feature cell centre every template cell sits on a satellite feature cell centre.

A ground visibility mask (True = visible, masking.py convention: (B, W) columns or
(B, H, W) pixels) removes the cells that sample hidden columns / pixels from the features,
the confidence and the valid mask, so they drop out of the cosine normalisation
(sliding_correlation.py).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import torch

from geodistill_core.geometry import (
    BevGrid,
    ImageSamplingGrid,
    panorama_bev_grid,
    pinhole_bev_grid,
    sample_image,
)
from geodistill_core.masking import bev_visibility

CAMERA_MODELS = ('panorama', 'pinhole')
SQUARE_CELL_RTOL = 1e-6


def satellite_cell_m(sat_hw_px: tuple[int, int], feature_hw: tuple[int, int],
                     sat_meters_per_px: float) -> float:
    """Metres per satellite feature cell: sat_meters_per_px * Hs / h (= ... * Ws / w).

    sat_hw_px: (Hs, Ws) of the satellite image fed to the extractor; feature_hw: (h, w)
    of its feature map at one level. Raises ValueError when the cells are not square.
    """
    if not sat_meters_per_px > 0:
        raise ValueError(f'sat_meters_per_px must be > 0, got {sat_meters_per_px}')
    (Hs, Ws), (h, w) = sat_hw_px, feature_hw
    cell_rows_m = sat_meters_per_px * Hs / h
    cell_cols_m = sat_meters_per_px * Ws / w
    if not math.isclose(cell_rows_m, cell_cols_m, rel_tol=SQUARE_CELL_RTOL):
        raise ValueError(
            f'satellite {Hs}x{Ws} px with a {h}x{w} feature map gives non-square cells '
            f'({cell_rows_m:.6g} m x {cell_cols_m:.6g} m); keep Hs / h equal to Ws / w')
    return float(cell_rows_m)


def _nearest_odd(value: float) -> int:
    return max(1, 2 * int(math.floor((value - 1.0) / 2.0 + 0.5)) + 1)


def template_shape(feature_hw: tuple[int, int], fraction: float) -> tuple[int, int]:
    """(rows, cols) of the BEV template: the odd numbers nearest fraction * (h, w), <= (h, w).

    fraction: template side / satellite feature side, in (0, 1] (0.4 in G2SWeakly).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f'template fraction must be in (0, 1], got {fraction}')
    rows, cols = (min(_nearest_odd(fraction * n), n if n % 2 else n - 1) for n in feature_hw)
    return rows, cols


def ground_sampling_grid(camera_model: str, grid: BevGrid, yaw_rad: torch.Tensor,
                         camera_height_m, image_hw: tuple[int, int],
                         K: torch.Tensor | None = None) -> ImageSamplingGrid:
    """Where each BEV cell samples the ground image (panorama_bev_grid / pinhole_bev_grid).

    camera_model: 'panorama' or 'pinhole'. yaw_rad: (B,) map-frame yaw of the image's
    centre column (panorama) or optical axis (pinhole), 0 = east, counter-clockwise.
    camera_height_m: float or (B,). image_hw: (Hg, Wg) of the ground image.
    K: (B, 3, 3) or (3, 3) intrinsics of that image (pinhole only, required there).
    """
    if camera_model == 'panorama':
        return panorama_bev_grid(grid, yaw_rad, camera_height_m, image_hw)
    if camera_model == 'pinhole':
        if K is None:
            raise ValueError('the pinhole camera model needs intrinsics K (B, 3, 3)')
        return pinhole_bev_grid(grid, yaw_rad, camera_height_m, K, image_hw)
    raise ValueError(f'camera_model must be one of {CAMERA_MODELS}, got {camera_model!r}')


@dataclass(frozen=True)
class BevTemplate:
    """Projected ground features of one level.

    features: (B, C, rows, cols), zero on invalid cells.
    confidence: (B, 1, rows, cols) in [0, 1], zero on invalid cells.
    valid: (B, rows, cols) bool; cells that see the ground through a visible column.
    """

    features: torch.Tensor
    confidence: torch.Tensor
    valid: torch.Tensor

    def weighted(self) -> torch.Tensor:
        """The correlation template features * confidence, (B, C, rows, cols)."""
        return self.features * self.confidence


def project_to_bev(features: torch.Tensor, confidence: torch.Tensor,
                   sampling: ImageSamplingGrid,
                   visible_cols: torch.Tensor | None = None) -> BevTemplate:
    """Sample a ground feature map and its confidence onto the BEV grid.

    features: (B, C, hg, wg) ground feature map (any stride: sample_image rescales).
    confidence: (B, 1, hg, wg) in [0, 1].
    sampling: the ImageSamplingGrid of the BEV grid (uv_px (B, rows, cols, 2)).
    visible_cols: optional ground-image mask, True = visible: (B, W_mask) columns or
        (B, H_mask, W_mask) pixels (random-patch / max-activation ablations).
    Returns a BevTemplate; features, confidence and valid are zero/False wherever the
    grid is invalid or samples a hidden column / pixel.
    """
    if features.dim() != 4 or confidence.dim() != 4 or confidence.shape[1] != 1:
        raise ValueError(f'features must be (B, C, h, w) and confidence (B, 1, h, w), got '
                         f'{tuple(features.shape)} and {tuple(confidence.shape)}')
    if features.shape[0] != confidence.shape[0] or features.shape[2:] != confidence.shape[2:]:
        raise ValueError(f'features {tuple(features.shape)} and confidence '
                         f'{tuple(confidence.shape)} disagree in batch or size')
    if visible_cols is None:
        valid = sampling.valid.to(torch.bool)
    else:
        valid = bev_visibility(visible_cols, sampling)
    keep = valid.unsqueeze(1).to(features.dtype)
    bev_features = sample_image(features, sampling) * keep
    bev_confidence = sample_image(confidence, sampling) * keep
    return BevTemplate(bev_features, bev_confidence, valid)
