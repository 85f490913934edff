"""LocationScores: what every location estimator returns (architecture.md, interfaces).

GeoDistill, the losses and heatmap.py use only this: one score map per level over the
satellite crop and each level's cell size. Frame (geometry.raster / heatmap.py): cell
(i, j) of an H x W map is the camera at

    east_m  =  (j - (W - 1) / 2) * cell_m
    north_m = -(i - (H - 1) / 2) * cell_m

from the satellite crop centre (row grows south, column grows east).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LocationScores:
    """Heatmap scores per level, coarse to fine as the estimator's config lists them.

    scores: list of (B, H_l, W_l) maps (cosine similarity in [-1, 1] for the correlation
        estimator), or (Bs, Bg, H_l, W_l) for every (satellite m, ground n) pair when the
        estimator ran in all-pairs mode.
    cell_m: list of metres per heatmap cell, one float per level.
    """

    scores: list[torch.Tensor]
    cell_m: list[float]

    def __post_init__(self):
        if len(self.scores) != len(self.cell_m):
            raise ValueError(f'{len(self.scores)} score levels but {len(self.cell_m)} cell sizes')
