"""Orientation estimator training from aligned pairs rotated by a known yaw (method.md 5).

Target convention (models.orientation): offset = true yaw - prior yaw (positive: the camera
is counter-clockwise of its prior), i.e. minus the readers' yaw_noise_rad. With rotation
'roll', an aligned panorama is rolled by -n (n ~ U(-range, range), drawn from the step
seed), so its centre column looks along yaw - n while the prior is unchanged: the target
becomes -(yaw_noise + n). With rotation 'dataset' the reader's own noise is used (KITTI).

The orientation model contract (models.orientation.OrientationEstimator):
model(satellite_rgb01 (B, 3, S, S), panorama_rgb01 (B, 3, H, W), prior_yaw_rad (B,)) ->
an output with `logits` (B, n_bins) (and `offset_rad` (B,) when it decodes itself), or
the logits tensor. The loss is model.loss(output, offset_rad) when the model has one,
else the Gaussian-label CE of models.orientation.yaw_offset_loss over
yaw_bin_centers_deg(prior_range_deg, bin_deg). No position label is used.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from geodistill_core.geodesy import wrap_angle_rad
from geodistill_core.geometry import roll_panorama
from geodistill_core.models.orientation.yaw_bins import (
    decode_yaw_offset_deg,
    yaw_bin_centers_deg,
    yaw_offset_loss,
)
from geodistill_core.training.config import OrientationConfig
from geodistill_core.training.objective import ModelObjective, batch_sums


class OrientationLossModule(nn.Module):
    """forward(batch, step_seed) -> {'loss', 'abs_error_deg'} for an orientation model."""

    def __init__(self, model: nn.Module, config: OrientationConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config
        model_range = getattr(getattr(model, 'config', None), 'prior_range_deg', None)
        if model_range is not None and config.prior_range_deg > model_range + 1e-9:
            raise ValueError(f'rotations up to +-{config.prior_range_deg} deg exceed the '
                             f"model's bins (+-{model_range} deg)")
        self.register_buffer('bin_centers_deg',
                             yaw_bin_centers_deg(config.prior_range_deg, config.bin_deg),
                             persistent=False)

    def rotated(self, batch: dict, step_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ground images to score, their target offset true - prior in radians (B,))."""
        ground = batch['ground']
        offset = -batch['yaw_noise_rad'].to(torch.float64)
        if self.config.rotation == 'roll':
            generator = torch.Generator().manual_seed(step_seed)
            u = torch.rand(ground.shape[0], generator=generator, dtype=torch.float64)
            extra = (2.0 * u - 1.0) * math.radians(self.config.prior_range_deg)
            ground = roll_panorama(ground, (-extra).to(ground))
            offset = offset - extra.to(offset.device)
        return ground, wrap_angle_rad(offset)

    def forward(self, batch: dict, step_seed: int = 0) -> dict[str, torch.Tensor]:
        ground, offset_rad = self.rotated(batch, step_seed)
        out = self.model(batch['satellite'], ground, batch['yaw_prior_rad'])
        logits = getattr(out, 'logits', out)
        centers = getattr(self.model, 'bin_centers_deg', self.bin_centers_deg).to(logits.device)
        if logits.dim() != 2 or logits.shape[1] != centers.shape[0]:
            raise ValueError(f'orientation logits must be (B, {centers.shape[0]}) for the '
                             f'configured bins, got {tuple(logits.shape)}')
        target = offset_rad.to(logits.device, torch.float32)
        if hasattr(self.model, 'loss') and hasattr(out, 'logits'):
            loss = self.model.loss(out, target)
        else:
            loss = yaw_offset_loss(logits.float(), target, centers, self.config.sigma_bins)
        with torch.no_grad():
            predicted = getattr(out, 'offset_rad', None)
            if predicted is None:
                predicted = torch.deg2rad(decode_yaw_offset_deg(logits.float(), centers))
            error = torch.rad2deg(wrap_angle_rad(predicted.float() - target).abs()).mean()
        return {'loss': loss, 'abs_error_deg': error}


class OrientationObjective(ModelObjective):
    """Train an orientation model; validation reports loss and mean |error| degrees."""

    def __init__(self, model: nn.Module, config: OrientationConfig) -> None:
        super().__init__(model, OrientationLossModule(model, config))

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict[str, tuple[float, int]]:
        return batch_sums(self.train_module(batch, 0), batch['ground'].shape[0])
