"""The location model's inference graph in an exportable form (ONNX, fixed input sizes).

`ExportableLocationModel` wraps a trained correlation LocationModel and computes exactly
what `Localizer` uses: the finest level's heatmap scores. It differs from the training
forward only in how it is written, never in what it computes:

- every per-item quantity is a tensor input (yaw, camera height, K, metres per pixel),
  so the graph has no Python float baked in for them;
- the BEV template is built in units of heatmap cells: the flat-ground projections are
  scale invariant (panorama: azimuth and atan2(h, r); pinhole: x / z and y / z), so a grid
  of 1-cell cells seen from camera_height_m / cell_m equals the metric grid of cell_m
  metres seen from camera_height_m;
- the sliding correlation runs by DFTs written as matrix products (dft_correlation.py;
  the same scores as sliding_correlation.py's conv and FFT paths to round-off), pairing
  ground b with satellite b % Bs in the frequency domain: Bs = 1 scores B ground images
  (e.g. yaw candidates) against one shared crop, Bs = B pairs item by item, both at a cost
  linear in B;
- the coarse levels, unused at inference, are not correlated.
"""
from __future__ import annotations

import torch
from torch import nn

from geodistill_core.export.dft_correlation import DftCorrelation
from geodistill_core.geometry import BevGrid
from geodistill_core.models.backbones import preprocess_images
from geodistill_core.models.correlation import (
    CorrelationLocationEstimator,
    ground_sampling_grid,
    project_to_bev,
    template_shape,
)
from geodistill_core.models.feature_levels import select_level


def finest_level_hw(model: nn.Module, satellite_hw_px: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of the finest satellite feature map for inputs of satellite_hw_px (Hs, Ws),
    measured by running the satellite extractor once on zeros."""
    estimator = _estimator(model)
    probe = torch.zeros(1, 3, *satellite_hw_px,
                        device=next(model.parameters()).device)
    with torch.inference_mode():
        feature = estimator.satellite_levels(probe)[-1]
    return int(feature.shape[-2]), int(feature.shape[-1])


def _estimator(model: nn.Module) -> CorrelationLocationEstimator:
    estimator = getattr(model, 'estimator', None)
    if not isinstance(estimator, CorrelationLocationEstimator):
        raise TypeError(f'ONNX export supports correlation location models (kind '
                        f"'correlation'), got an estimator {type(estimator).__name__}; "
                        'export a correlation checkpoint or use the torch backend')
    return estimator


class ExportableLocationModel(nn.Module):
    """RGB images + per-item geometry -> finest-level heatmap scores, export-ready.

    location_model: a training.models LocationModel around a CorrelationLocationEstimator.
    ground_hw: (Hg, Wg) of the ground input; satellite_px: side of the satellite input.
    """

    def __init__(self, location_model: nn.Module, ground_hw: tuple[int, int],
                 satellite_px: int) -> None:
        super().__init__()
        self.model = location_model
        self.estimator = _estimator(location_model)
        self.ground_hw = (int(ground_hw[0]), int(ground_hw[1]))
        self.satellite_px = int(satellite_px)
        self.camera_model = self.estimator.config.camera_model
        feature_hw = finest_level_hw(location_model, (self.satellite_px,) * 2)
        self.cell_px = self.satellite_px / feature_hw[0]  # satellite pixels per heatmap cell
        self.template_hw = template_shape(feature_hw, self.estimator.config.template_fraction)
        self.correlation = DftCorrelation(feature_hw, self.template_hw,
                                          self.estimator.config.positions)
        self.level = len(self.estimator.config.levels) - 1

    def forward(self, ground_rgb: torch.Tensor, satellite_rgb: torch.Tensor,
                yaw_rad: torch.Tensor, camera_height_m: torch.Tensor,
                meters_per_px: torch.Tensor, ground_K: torch.Tensor | None = None,
                ) -> torch.Tensor:
        """Finest heatmap scores of ground b in satellite b % Bs.

        ground_rgb: (B, 3, Hg, Wg) RGB in [0, 1] at ground_hw (resized, not normalised).
        satellite_rgb: (Bs, 3, S, S) north-up RGB crops in [0, 1], S = satellite_px;
            Bs = 1 (one crop for every ground image) or Bs = B.
        yaw_rad: (B,) map-frame yaw of the panorama centre column / optical axis.
        camera_height_m: (B,) camera height above the ground.
        meters_per_px: (Bs,) ground resolution of satellite_rgb as given.
        ground_K: (B, 3, 3) intrinsics at ground_hw (pinhole models only).
        Returns scores (B, H, W) in [-1, 1]; cell b is cell_px * meters_per_px[b % Bs]
        metres wide (location_scores.py frame).
        """
        model, estimator = self.model, self.estimator
        B = ground_rgb.shape[0]
        if model.ground_preprocess is not None:
            ground_rgb = preprocess_images(ground_rgb, model.ground_preprocess,
                                           check_range=False)
        if model.satellite_preprocess is not None:
            satellite_rgb = preprocess_images(satellite_rgb, model.satellite_preprocess,
                                              check_range=False)
        satellite = estimator.satellite_levels(satellite_rgb)[self.level]
        level = estimator.config.levels[self.level]
        features = select_level(estimator.ground_extractor(ground_rgb), level.feature_key,
                                level.channels, B, 'ground')
        if estimator.confidence_heads is None:
            confidence = features.new_ones(B, 1, *features.shape[-2:])
        else:
            confidence = torch.sigmoid(estimator.confidence_heads[self.level](features))
        satellite_count = torch.ones_like(meters_per_px, dtype=torch.long).sum()  # = Bs
        pair = torch.remainder(torch.arange(B, device=ground_rgb.device), satellite_count)
        cell_m = meters_per_px.to(torch.float32)[pair] * self.cell_px
        height_cells = camera_height_m.to(torch.float32) / cell_m
        sampling = ground_sampling_grid(self.camera_model, BevGrid(*self.template_hw, 1.0),
                                        yaw_rad.to(torch.float32), height_cells,
                                        self.ground_hw, ground_K)
        template = project_to_bev(features, confidence, sampling)
        window_weight = (template.confidence[:, 0]
                         if estimator.config.confidence_weighting == 'both' else None)
        return self.correlation(satellite, template.weighted(), template.valid, pair,
                                window_weight=window_weight,
                                template_energy_floor=getattr(
                                    estimator.config, 'template_energy_floor', 1.0))
