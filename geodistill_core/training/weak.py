"""Weakly supervised objective of the correlation estimator (method.md section 3).

For every (satellite m, ground n) pair of a batch the estimator's all-pairs scores give the
best-match distance d_mn = min over positions (2 - 2 cos); the loss is the in-batch
soft-margin triplet mean softplus(alpha (d_mm - d_mn)) over m != n, averaged over levels.
Optional GNSS term: for each matching pair, the best match inside a window of
+-gnss_window_m around the noisy position (the satellite crop centre) should equal the
global best: mean |d_window - d_mm|. Optional rotated negatives: each matching pair scored
again with its BEV template turned by a few degrees (the features extracted once) is a
negative of the pair at its known yaw: mean softplus(alpha (d_mm(yaw) - d_mm(yaw + delta))).
No position label is used.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from geodistill_core.losses import best_match_distance, weak_triplet_loss
from geodistill_core.models.correlation.yaw_scorer import CorrelationYawScorer
from geodistill_core.training.adapter import (
    BatchScores,
    batch_to_location_inputs,
    location_scores,
    mpp_groups,
)
from geodistill_core.training.config import DistillConfig, WeakConfig
from geodistill_core.training.ground_masks import draw_ground_mask


def centre_window(hw: tuple[int, int], cell_m: torch.Tensor, window_m: float) -> torch.Tensor:
    """(B, H, W) bool: cells whose east and north offsets from the map centre are within
    max(window_m, cell_m / 2) (so at least the central cell(s) are inside).

    cell_m: (B,) metres per cell of each map.
    """
    H, W = hw
    cell = cell_m.to(torch.float64).view(-1, 1, 1)
    rows = torch.arange(H, dtype=torch.float64, device=cell.device).view(1, H, 1)
    cols = torch.arange(W, dtype=torch.float64, device=cell.device).view(1, 1, W)
    north = (rows - (H - 1) / 2.0).abs() * cell
    east = (cols - (W - 1) / 2.0).abs() * cell
    limit = torch.clamp(cell / 2.0, min=window_m) + 1e-9
    return (north <= limit) & (east <= limit)


def weak_location_loss(batch_scores: BatchScores, config: WeakConfig) -> dict[str, torch.Tensor]:
    """Loss terms from all-pairs scores (per level (Bs, Bg, H, W), Bs == Bg >= 2).

    Returns {'loss': total, 'triplet': mean over levels, 'gnss': mean over levels (0 when
    off)}; all scalars.
    """
    triplets, gnss = [], []
    for level, scores in enumerate(batch_scores.scores):
        if scores.dim() != 4 or scores.shape[0] != scores.shape[1]:
            raise ValueError(f'level {level}: all-pairs scores must be (B, B, H, W), got '
                             f'{tuple(scores.shape)}')
        distance = best_match_distance(scores)
        triplets.append(weak_triplet_loss(distance, config.alpha, config.symmetric))
        if config.gnss_window_m is not None:
            B, _, H, W = scores.shape
            paired = scores[torch.arange(B), torch.arange(B)]  # (B, H, W)
            window = centre_window((H, W), batch_scores.cell_m[:, level], config.gnss_window_m)
            d_window = 2.0 - 2.0 * paired.masked_fill(~window.to(paired.device),
                                                      float('-inf')).flatten(1).amax(dim=1)
            gnss.append((d_window - torch.diagonal(distance)).abs().mean())
    triplet = torch.stack(triplets).mean()
    gnss_term = torch.stack(gnss).mean() if gnss else triplet.new_zeros(())
    return {'loss': triplet + config.gnss_weight * gnss_term, 'triplet': triplet,
            'gnss': gnss_term}


def rotated_negative_loss(model: nn.Module, inputs: dict, offsets_deg: tuple[float, ...],
                          alpha: float, ground_visible_cols: torch.Tensor | None = None
                          ) -> torch.Tensor:
    """Yaw discrimination from the known training yaw, no position label (scalar).

    model: a correlation location model (LocationModel or CorrelationLocationEstimator).
    inputs: from batch_to_location_inputs; its ground_yaw_rad is the known yaw.
    For every item and level the best-match distance of the matching pair at its yaw, d0,
    and at yaw + delta for each offset, d_delta: mean of softplus(alpha (d0 - d_delta)) over
    items and offsets, then over levels. Items of each satellite resolution are scored
    together (features extracted once per group, templates projected per yaw).
    """
    offsets = torch.tensor((0.0, *offsets_deg), dtype=torch.float64).deg2rad()
    ground, satellite = inputs['ground_images'], inputs['satellite_images']
    K = inputs.get('ground_K')
    per_level: list[list[torch.Tensor]] = []
    for index in mpp_groups(inputs['sat_meters_per_px']):
        pick = index.to(ground.device)
        scorer = CorrelationYawScorer(
            model, ground[pick], satellite[pick],
            sat_meters_per_px=float(inputs['sat_meters_per_px'][index[0]]),
            camera_height_m=inputs['camera_height_m'][pick],
            ground_K=None if K is None else K[pick],
            ground_visible_cols=(None if ground_visible_cols is None
                                 else ground_visible_cols[pick]))
        yaw = inputs['ground_yaw_rad'][pick].double()
        candidates = yaw[:, None] + offsets.to(yaw.device)[None, :]
        for level, maps in enumerate(scorer.heatmaps(candidates.float())):
            distance = best_match_distance(maps)  # (b, 1 + N)
            terms = F.softplus(alpha * (distance[:, :1] - distance[:, 1:])).flatten()
            if level == len(per_level):
                per_level.append([])
            per_level[level].append(terms)
    return torch.stack([torch.cat(terms).mean() for terms in per_level]).mean()


class WeakLossModule(nn.Module):
    """forward(batch, step_seed) -> loss terms of the weak objective for `model`.

    model: a location model (LocationScores interface, all-pairs mode).
    mask: optional DistillConfig whose mask is applied to the ground images first (the
        paper's 'FoV mask as plain augmentation' control); camera_model picks FoV/stripe.
    """

    def __init__(self, model: nn.Module, config: WeakConfig, yaw_key: str = 'yaw_rad',
                 mask: DistillConfig | None = None, camera_model: str = 'panorama') -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.yaw_key = yaw_key
        self.mask = mask
        self.camera_model = camera_model

    def forward(self, batch: dict, step_seed: int = 0) -> dict[str, torch.Tensor]:
        inputs = batch_to_location_inputs(batch, self.yaw_key)
        visible_cols = None
        if self.mask is not None:
            generator = torch.Generator().manual_seed(step_seed)
            ground_mask = draw_ground_mask(self.mask, self.camera_model,
                                           inputs['ground_images'], generator)
            inputs = {**inputs, 'ground_images': ground_mask.model_input(inputs['ground_images'])}
            visible_cols = ground_mask.visible_cols
        scores = location_scores(self.model, inputs, visible_cols, all_pairs=True)
        out = weak_location_loss(scores, self.config)
        if self.config.rotated_negatives_deg:
            rotation = rotated_negative_loss(self.model, inputs,
                                             self.config.rotated_negatives_deg,
                                             self.config.alpha, visible_cols)
            out = {**out, 'loss': out['loss'] + self.config.rotation_weight * rotation,
                   'rotation': rotation}
        return out
