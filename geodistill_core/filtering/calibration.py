"""Heatmap calibration: the per-frame likelihood a location model's heatmap stands for.

A location model's level scores s become probabilities P_tau = softmax(s / tau) over the
N cells of the heatmap (heatmap.py; tau = 0.06 for cosine scores). As a measurement of the
camera position that distribution is too sharp or too flat, and it is sometimes simply
wrong (a repeated facade, a tile it cannot read). The calibrated per-cell probability is

    q(cell) = (1 - w) * softmax(s / (tau * T))(cell) + w / N

a temperature T on top of tau and a mixture with a uniform floor of weight w (the outlier
weight: the probability that this frame's heatmap says nothing about where the camera is).
Both are fitted on data (filtering.calibration_fit, ``train/calibrate.py``) and stored in
the checkpoint's config.json under ``calibration``; ``Localizer``, evaluation and the node
use them. The identity calibration (T = 1, w = 0) reproduces P_tau.

A third number, the covariance scale s, multiplies the Gaussian summary a single frame is
published with (the calibrated heatmap's second moment around its peak; ``pose_single``,
``LocalizationResult.covariance_en_m2``). A heatmap fitted for the likelihood of the truth
spreads mass over the other places along a street where the camera could be, so its second
moment overstates the error of the many frames whose peak is right (NEES well below 2,
nearly every truth inside the 95% ellipse); s is chosen on the same validation frames so
that 95% of the truths fall inside the 95% ellipse. It never touches the probabilities:
the sequence filter fuses q itself.

Shapes: log-probabilities (B, H, W) at the base tau (each map's exp sums to 1).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
import math

import torch

CALIBRATION_KEY = 'calibration'
METHODS = ('none', 'truth', 'gnss')


@dataclass(frozen=True)
class HeatmapCalibration:
    """temperature: multiplies the base tau (> 0). outlier_weight: uniform-floor mixture
    weight in [0, 1). covariance_scale: multiplies the published single-frame covariance
    (> 0; 1 in every calibration written before it existed). method: 'none' (identity),
    'truth' (maximum likelihood of the true positions) or 'gnss' (label-free, from the
    noisy fixes). fitted_on: what data (free
    text); frames: how many frames the fit saw; stats: fit diagnostics (JSON-ready)."""

    temperature: float = 1.0
    outlier_weight: float = 0.0
    method: str = 'none'
    fitted_on: str = ''
    frames: int = 0
    stats: dict | None = None
    covariance_scale: float = 1.0

    def __post_init__(self):
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f'calibration temperature must be finite and > 0, got '
                             f'{self.temperature}')
        if not 0.0 <= self.outlier_weight < 1.0:
            raise ValueError(f'calibration outlier_weight must be in [0, 1), got '
                             f'{self.outlier_weight}')
        if not (math.isfinite(self.covariance_scale) and self.covariance_scale > 0):
            raise ValueError(f'calibration covariance_scale must be finite and > 0, got '
                             f'{self.covariance_scale}')
        if self.method not in METHODS:
            raise ValueError(f'calibration method must be one of {METHODS}, got '
                             f'{self.method!r}')

    @property
    def is_identity(self) -> bool:
        return self.temperature == 1.0 and self.outlier_weight == 0.0

    def log_prob(self, log_prob_base: torch.Tensor) -> torch.Tensor:
        """Calibrated log q (B, H, W) from base log-probabilities (B, H, W) (module doc).

        Cells with log-probability -inf (masked) stay out: they get neither mass from the
        temperature nor from the floor, and N counts the finite cells only.
        """
        if log_prob_base.dim() != 3:
            raise ValueError(f'log_prob_base must be (B, H, W), got '
                             f'{tuple(log_prob_base.shape)}')
        if self.is_identity:
            return log_prob_base
        B, H, W = log_prob_base.shape
        flat = log_prob_base.reshape(B, H * W).double()
        valid = torch.isfinite(flat)
        sharp = torch.log_softmax(flat / self.temperature, dim=1)
        if self.outlier_weight > 0.0:
            n = valid.sum(dim=1, keepdim=True).clamp(min=1).double()
            floor = torch.log(self.outlier_weight / n).expand_as(sharp)
            sharp = torch.logaddexp(sharp + math.log1p(-self.outlier_weight), floor)
            sharp = sharp.masked_fill(~valid, float('-inf'))
        return sharp.to(log_prob_base.dtype).reshape(B, H, W)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> HeatmapCalibration:
        """From a checkpoint's ``calibration`` block (None or {} = identity)."""
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'calibration block has unknown keys {unknown}; known: '
                             f'{sorted(known)}')
        return cls(**data)


def calibration_from_record(record: dict) -> HeatmapCalibration:
    """The calibration stored in a checkpoint record (config.json), identity when absent."""
    return HeatmapCalibration.from_dict(record.get(CALIBRATION_KEY))
