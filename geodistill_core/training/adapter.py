"""Dataset batches -> location estimator inputs, and the estimator run over a batch.

Readers (geodistill_core.data) deliver dict items; DataLoader's default collate stacks
them. This module is the one place that maps those keys to the estimator's keyword
arguments. It never reads the evaluation label `eval_true_offset_en_m`.

A batch may mix satellite resolutions (VIGOR cities differ by up to 17 %), while an
estimator takes one `sat_meters_per_px` per call: `location_scores` runs the estimator once
per distinct resolution and reassembles the per-item scores in batch order. In all-pairs
mode every satellite meets the ground images of each group at that group's scale, so the
matching pairs (the diagonal) are always at their true scale.
"""
from __future__ import annotations

from dataclasses import dataclass
import inspect
from typing import Any

import torch

POSITION_LABEL_KEY = 'eval_true_offset_en_m'
MPP_GROUP_RTOL = 1e-6


def batch_to_location_inputs(batch: dict[str, Any], yaw_key: str = 'yaw_rad') -> dict:
    """Map a collated reader batch to location estimator inputs.

    batch: 'ground' (B, 3, Hg, Wg), 'satellite' (B, 3, Hs, Ws) RGB in [0, 1],
        'sat_meters_per_px' (B,), 'camera_height_m' (B,), yaw_key (B,) radians, optional
        'K' (B, 3, 3) pinhole intrinsics at (Hg, Wg).
    yaw_key: 'yaw_rad' (known orientation) or 'yaw_prior_rad' (the noisy prior).
    Returns {'ground_images', 'satellite_images', 'sat_meters_per_px' (B,) float64,
    'camera_height_m' (B,), 'ground_yaw_rad' (B,), 'ground_K' (B, 3, 3) or None}.
    """
    missing = [k for k in ('ground', 'satellite', 'sat_meters_per_px', 'camera_height_m',
                           yaw_key) if k not in batch]
    if missing:
        raise KeyError(f'batch lacks {missing}; it has {sorted(batch)}')
    ground, satellite = batch['ground'], batch['satellite']
    if ground.dim() != 4 or satellite.dim() != 4 or ground.shape[0] != satellite.shape[0]:
        raise ValueError(f'ground {tuple(ground.shape)} and satellite '
                         f'{tuple(satellite.shape)} must be (B, 3, H, W) with one B')
    B = ground.shape[0]
    mpp = torch.as_tensor(batch['sat_meters_per_px'], dtype=torch.float64).reshape(-1)
    if mpp.shape != (B,):
        raise ValueError(f'sat_meters_per_px must be (B,) = ({B},), got {tuple(mpp.shape)}')
    yaw = torch.as_tensor(batch[yaw_key]).reshape(-1).to(device=ground.device)
    height = torch.as_tensor(batch['camera_height_m']).reshape(-1).to(device=ground.device)
    K = batch.get('K')
    return {'ground_images': ground, 'satellite_images': satellite, 'sat_meters_per_px': mpp,
            'camera_height_m': height.to(ground.dtype), 'ground_yaw_rad': yaw.to(ground.dtype),
            'ground_K': None if K is None else K.to(device=ground.device, dtype=ground.dtype)}


def move_batch(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors of a batch moved to `device` (non-blocking); other values unchanged."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}


@dataclass(frozen=True)
class BatchScores:
    """Location scores of a batch, possibly assembled from several estimator calls.

    scores: per level (B, H_l, W_l) (paired) or (Bs, B, H_l, W_l) (all pairs, column n =
        ground image n). cell_m: (B, L) float64 metres per heatmap cell of each ground
        item's level l (its satellite's resolution).
    """

    scores: list[torch.Tensor]
    cell_m: torch.Tensor


def supports_all_pairs(model) -> bool:
    """Whether the location model (or the estimator a LocationModel wraps) takes all_pairs."""
    estimator = getattr(model, 'estimator', model)
    return 'all_pairs' in inspect.signature(estimator.forward).parameters


def mpp_groups(mpp: torch.Tensor) -> list[torch.Tensor]:
    """Indices (long) of the items sharing each distinct resolution, first-seen order."""
    groups: list[list[int]] = []
    values: list[float] = []
    for i, value in enumerate(mpp.tolist()):
        for g, ref in enumerate(values):
            if abs(value - ref) <= MPP_GROUP_RTOL * abs(ref):
                groups[g].append(i)
                break
        else:
            values.append(value)
            groups.append([i])
    return [torch.tensor(g, dtype=torch.long) for g in groups]


def _pick(value, index: torch.Tensor):
    if value is None or not torch.is_tensor(value) or value.dim() == 0:
        return value
    return value[index.to(value.device)]


def location_scores(model, inputs: dict[str, Any],
                    ground_visible_cols: torch.Tensor | None = None,
                    all_pairs: bool = False) -> BatchScores:
    """Run a location model (LocationScores interface) on the inputs of a batch.

    inputs: from batch_to_location_inputs (ground_images may already be masked).
    ground_visible_cols: optional (B, Wg) bool, True = visible (passed to the model).
    all_pairs: score every satellite against every ground image (weak triplet loss; only
        then is `all_pairs=True` passed to the model).
    """
    ground, satellite = inputs['ground_images'], inputs['satellite_images']
    B = ground.shape[0]
    mpp = inputs['sat_meters_per_px']
    groups = mpp_groups(mpp)
    per_item = {'camera_height_m': inputs['camera_height_m'],
                'ground_yaw_rad': inputs['ground_yaw_rad'], 'ground_K': inputs.get('ground_K'),
                'ground_visible_cols': ground_visible_cols}
    outputs = []
    for index in groups:
        whole = len(groups) == 1
        kwargs = {k: (v if whole else _pick(v, index)) for k, v in per_item.items()}
        if kwargs['ground_K'] is None:
            kwargs.pop('ground_K')
        if all_pairs:  # paired-only estimators (CCVPE) do not take the argument
            kwargs['all_pairs'] = True
        out = model(ground if whole else _pick(ground, index),
                    satellite if (whole or all_pairs) else _pick(satellite, index),
                    sat_meters_per_px=float(mpp[index[0]]), **kwargs)
        outputs.append(out)
    n_levels = len(outputs[0].scores)
    cell_m = torch.zeros(B, n_levels, dtype=torch.float64)
    for index, out in zip(groups, outputs, strict=True):
        cell_m[index] = torch.tensor(out.cell_m, dtype=torch.float64)
    if len(groups) == 1:
        return BatchScores(list(outputs[0].scores), cell_m)
    dim = 1 if all_pairs else 0
    inverse = torch.argsort(torch.cat(groups))
    scores = []
    for level in range(n_levels):
        stacked = torch.cat([out.scores[level] for out in outputs], dim=dim)
        scores.append(stacked.index_select(dim, inverse.to(stacked.device)))
    return BatchScores(scores, cell_m)
