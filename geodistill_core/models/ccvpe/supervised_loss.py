"""Supervised loss of the CCVPE-style estimator (the GeoDistill teacher's pre-training only).

Three terms (method.md section 3), with the true camera pixel (row, col) on the
satellite image (S x S) and the true map-frame yaw:
- heatmap: cross-entropy of softmax(logits) over all cells to a normalised Gaussian at
  the true position, sigma = 4 px at a 512-px satellite image scaled to each level
  (sigma_l = 4 s_l / 512 cells: the same ground distance at every level); averaged over
  the levels ('all') or on the finest one only ('finest', as the reference);
- InfoNCE (temperature 0.1) on every level's matching volume: per cell the best
  orientation's cosine, softmax over the cells, positive = the cell holding the true
  position; averaged over the levels;
- orientation: squared L2 distance between the orientation field at the true pixel and
  (cos yaw, sin yaw).
Pixel-centre convention: pixel p of the S-px image lies at (p + 0.5) s_l / S - 0.5 on
level s_l.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from geodistill_core.losses import gaussian_target, heatmap_cross_entropy
from geodistill_core.models.ccvpe.estimator import DescriptorScores

HEATMAP_LEVELS = ('all', 'finest')


@dataclass(frozen=True)
class CcvpeLossConfig:
    """Weights and constants of ccvpe_supervised_loss (TrainConfig.supervised).

    The defaults weight the three terms equally (1/1/1, heatmap CE on every level);
    CCVPE_PAPER_LOSS is CCVPE's own setting: InfoNCE x1e4, orientation x10, heatmap CE on
    the finest level.
    """

    sigma_px_at_512: float = 4.0
    infonce_temperature: float = 0.1
    heatmap_weight: float = 1.0
    infonce_weight: float = 1.0
    orientation_weight: float = 1.0
    heatmap_levels: str = 'all'

    def __post_init__(self):
        if self.heatmap_levels not in HEATMAP_LEVELS:
            raise ValueError(f'heatmap_levels must be one of {HEATMAP_LEVELS}, '
                             f'got {self.heatmap_levels!r}')
        if not (self.sigma_px_at_512 > 0 and self.infonce_temperature > 0):
            raise ValueError('sigma_px_at_512 and infonce_temperature must be > 0')
        if min(self.heatmap_weight, self.infonce_weight, self.orientation_weight) < 0:
            raise ValueError('loss weights must be >= 0')


CCVPE_PAPER_LOSS = CcvpeLossConfig(infonce_weight=1e4, orientation_weight=10.0,
                                   heatmap_levels='finest')


def level_position(true_rc_px: torch.Tensor, satellite_size_px: int,
                   level_size_px: int) -> torch.Tensor:
    """(B, 2) sub-pixel (row, col) on the S-px satellite -> (B, 2) on an s_l-cell level."""
    scale = level_size_px / satellite_size_px
    return (true_rc_px + 0.5) * scale - 0.5


def info_nce(matching: torch.Tensor, true_rc_px: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """matching (B, N, h, w) cosines, true_rc_px (B, 2) on this level -> scalar InfoNCE."""
    B, _, h, w = matching.shape
    best = matching.amax(dim=1).reshape(B, h * w) / temperature
    cell = torch.round(true_rc_px).long()
    row = cell[:, 0].clamp(0, h - 1)
    col = cell[:, 1].clamp(0, w - 1)
    return F.cross_entropy(best, row * w + col)


def ccvpe_supervised_loss(output: DescriptorScores, true_rc_px: torch.Tensor,
                          true_yaw_rad: torch.Tensor,
                          config: CcvpeLossConfig = CcvpeLossConfig()) -> dict:
    """Supervised CCVPE objective.

    output: DescriptorScores of DescriptorEstimator.forward.
    true_rc_px: (B, 2) true camera pixel (row, col), sub-pixel, on the S x S satellite image
        (S = the finest level's size).
    true_yaw_rad: (B,) true map-frame yaw of the ground camera (0 = east, counter-clockwise;
        pi / 2 for north-aligned VIGOR panoramas).
    Returns {'loss': weighted sum, 'heatmap': CE, 'infonce': InfoNCE, 'orientation': L2},
    each a scalar tensor.
    """
    finest = output.scores[-1]
    if true_rc_px.dim() != 2 or true_rc_px.shape != (finest.shape[0], 2):
        raise ValueError(f'true_rc_px must be (B, 2) = ({finest.shape[0]}, 2), '
                         f'got {tuple(true_rc_px.shape)}')
    if true_yaw_rad.shape != (finest.shape[0],):
        raise ValueError(f'true_yaw_rad must be (B,) = ({finest.shape[0]},), '
                         f'got {tuple(true_yaw_rad.shape)}')
    S = finest.shape[-1]
    rc = true_rc_px.to(finest.dtype)
    levels = output.scores if config.heatmap_levels == 'all' else [finest]
    ce_terms = []
    for logits in levels:
        s = logits.shape[-1]
        target = gaussian_target(s, s, level_position(rc, S, s),
                                 config.sigma_px_at_512 * s / 512.0)
        ce_terms.append(heatmap_cross_entropy(target, logits))
    heatmap = torch.stack(ce_terms).mean()
    infonce = torch.stack([
        info_nce(m, level_position(rc, S, m.shape[-1]), config.infonce_temperature)
        for m in output.matching_scores]).mean()
    pixel = torch.round(rc).long().clamp(0, S - 1)
    batch = torch.arange(finest.shape[0], device=finest.device)
    predicted = output.orientation_field[batch, :, pixel[:, 0], pixel[:, 1]]  # (B, 2)
    yaw = true_yaw_rad.to(predicted)
    target_cs = torch.stack([torch.cos(yaw), torch.sin(yaw)], dim=1)
    orientation = (predicted - target_cs).square().sum(dim=1).mean()
    loss = (config.heatmap_weight * heatmap + config.infonce_weight * infonce
            + config.orientation_weight * orientation)
    return {'loss': loss, 'heatmap': heatmap, 'infonce': infonce, 'orientation': orientation}
