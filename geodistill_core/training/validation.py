"""Localisation error on a VALIDATION batch (reads the evaluation position label).

Used only when LoopConfig.select_metric == 'mean_error_m' (checkpoint selection on the
held-out validation split carved out of the training data) or report_val_error (the same
figures logged for the learning curve, not selected on); never on training batches and
never on a test split (DataConfig refuses a validation split named test*). The position
comes from the finest heatmap level through heatmap.heatmap_to_pose, as in evaluation.
"""
from __future__ import annotations

import torch
from torch import nn

from geodistill_core.heatmap import DEFAULT_TAU, heatmap_to_pose
from geodistill_core.metrics import lateral_longitudinal_m, localization_errors_m
from geodistill_core.training.adapter import (
    POSITION_LABEL_KEY,
    batch_to_location_inputs,
    location_scores,
)


@torch.no_grad()
def predicted_offsets_en_m(model: nn.Module, batch: dict, yaw_key: str = 'yaw_rad',
                           tau: float = DEFAULT_TAU) -> torch.Tensor:
    """(B, 2) east/north metres of the camera from the satellite centre (finest level)."""
    scores = location_scores(model, batch_to_location_inputs(batch, yaw_key))
    finest = scores.scores[-1].float()
    offsets = []
    for b in range(finest.shape[0]):
        pose = heatmap_to_pose(finest[b:b + 1], float(scores.cell_m[b, -1]), tau)
        offsets.append(pose.offset_en_m[0])
    return torch.stack(offsets)


@torch.no_grad()
def validation_errors(model: nn.Module, batch: dict,
                      yaw_key: str = 'yaw_rad') -> dict[str, tuple[float, int]]:
    """Sums and counts for a labelled validation batch: 'mean_error_m', the recall within
    1 m and 5 m ('r1_m', 'r5_m'), and, when the batch has the true 'yaw_rad', the lateral and
    longitudinal recall within 1 m ('lateral_r1_m', 'longitudinal_r1_m')."""
    if POSITION_LABEL_KEY not in batch:
        raise KeyError(f"select_metric 'mean_error_m' needs {POSITION_LABEL_KEY!r} in the "
                       'validation items; this reader does not provide it')
    pred = predicted_offsets_en_m(model, batch, yaw_key).cpu()
    truth = batch[POSITION_LABEL_KEY].cpu()
    errors = localization_errors_m(pred, truth)
    n = int(errors.numel())
    out = {'mean_error_m': (float(errors.sum()), n),
           'r1_m': (float((errors <= 1.0).sum()), n),
           'r5_m': (float((errors <= 5.0).sum()), n)}
    if 'yaw_rad' in batch:
        parts = lateral_longitudinal_m(pred, truth, batch['yaw_rad'].cpu())
        out['lateral_r1_m'] = (float((parts.lateral_m.abs() <= 1.0).sum()), n)
        out['longitudinal_r1_m'] = (float((parts.longitudinal_m.abs() <= 1.0).sum()), n)
    return out
