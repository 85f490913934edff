"""Supervised objective for the descriptor (CCVPE-style) teacher: the one that reads labels.

method.md section 3: the CCVPE teacher is pre-trained with position labels; GeoDistill then
retrains it without any. This is a thin adapter: for the descriptor estimator (its output
has an orientation field) the loss is models.ccvpe.ccvpe_supervised_loss (heatmap CE to a
Gaussian, InfoNCE, orientation-field L2) at the true satellite pixel and yaw; any other
location estimator gets, per heatmap level, the cross-entropy of softmax(scores) to a
Gaussian (sigma = 4 / 512 of the satellite side, CCVPE's 4 px at 512) centred on the true
position, averaged over levels.

It is the only training objective whose batches keep `eval_true_offset_en_m`
(strip_labels = False); select it explicitly with TrainConfig.supervision='supervised'.
"""
from __future__ import annotations

import torch
from torch import nn

from geodistill_core.geometry import offset_en_m_to_pixel
from geodistill_core.losses import gaussian_target, heatmap_cross_entropy
from geodistill_core.training.adapter import POSITION_LABEL_KEY, batch_to_location_inputs
from geodistill_core.training.objective import ModelObjective, batch_sums

GAUSSIAN_SIGMA_FRACTION = 4.0 / 512.0


def gaussian_heatmap_loss(scores: list[torch.Tensor], cell_m: torch.Tensor,
                          true_offset_en_m: torch.Tensor, sat_side_m: torch.Tensor,
                          tau: float = 1.0) -> torch.Tensor:
    """Mean over levels of CE(Gaussian at the true position || softmax(scores / tau)).

    scores: per level (B, H, W); cell_m: (B, L); true_offset_en_m: (B, 2) east/north
    metres from the crop centre; sat_side_m: (B,) satellite side in metres.
    """
    losses = []
    for level, s in enumerate(scores):
        B, H, W = s.shape
        cell = cell_m[:, level].to(s.device, torch.float64)
        offset = true_offset_en_m.to(s.device, torch.float64)
        row, col = offset_en_m_to_pixel(offset[:, 0], offset[:, 1], H, W, cell)
        sigma = float((GAUSSIAN_SIGMA_FRACTION * sat_side_m.to(cell) / cell).mean())
        target = gaussian_target(H, W, torch.stack([row, col], dim=1).to(s.dtype), sigma)
        losses.append(heatmap_cross_entropy(target, s, tau))
    return torch.stack(losses).mean()


class SupervisedLossModule(nn.Module):
    """forward(batch, step_seed) -> {'loss'} with position labels (teacher pre-training)."""

    def __init__(self, model: nn.Module, yaw_key: str = 'yaw_rad',
                 ccvpe_loss=None) -> None:
        super().__init__()
        self.model = model
        self.yaw_key = yaw_key
        self.ccvpe_loss = ccvpe_loss

    def forward(self, batch: dict, step_seed: int = 0) -> dict[str, torch.Tensor]:
        if POSITION_LABEL_KEY not in batch:
            raise KeyError(f'supervised training needs {POSITION_LABEL_KEY!r} in the items')
        inputs = batch_to_location_inputs(batch, self.yaw_key)
        truth = batch[POSITION_LABEL_KEY].to(torch.float64)
        satellite = inputs['satellite_images']
        mpp = inputs['sat_meters_per_px'].to(truth.device)
        kwargs = {k: inputs[k] for k in ('camera_height_m', 'ground_yaw_rad', 'ground_K')
                  if inputs[k] is not None}
        # one call: the loss works in pixels, each item's own resolution converts its label
        out = self.model(inputs['ground_images'], satellite,
                         sat_meters_per_px=float(mpp[0]), **kwargs)
        if hasattr(out, 'orientation_field'):
            from geodistill_core.models.ccvpe import CcvpeLossConfig, ccvpe_supervised_loss
            S = satellite.shape[-1]
            row, col = offset_en_m_to_pixel(truth[:, 0], truth[:, 1], S, S, mpp)
            true_rc = torch.stack([row, col], dim=1).to(satellite.dtype)
            return ccvpe_supervised_loss(out, true_rc, batch['yaw_rad'].to(satellite),
                                         self.ccvpe_loss or CcvpeLossConfig())
        cell_m = torch.stack([mpp * satellite.shape[-2] / s.shape[-2] for s in out.scores],
                             dim=1)
        side_m = mpp * satellite.shape[-1]
        return {'loss': gaussian_heatmap_loss(list(out.scores), cell_m, truth, side_m)}


class SupervisedObjective(ModelObjective):
    """Position-supervised training of a location model (the CCVPE teacher only)."""

    strip_labels = False

    def __init__(self, model: nn.Module, yaw_key: str = 'yaw_rad', ccvpe_loss=None) -> None:
        """ccvpe_loss: CcvpeLossConfig of the descriptor estimator (None: the defaults)."""
        super().__init__(model, SupervisedLossModule(model, yaw_key, ccvpe_loss))

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict[str, tuple[float, int]]:
        loss = self.train_module(batch, 0)['loss']
        return batch_sums({'loss': loss}, batch['ground'].shape[0])
