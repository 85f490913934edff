"""Score yaw candidates with a correlation location model (rotation search, no extra network).

The satellite features and the ground features (before projection) do not depend on the
yaw; only the BEV projection does. CorrelationYawScorer therefore runs both extractors
once per frame and, for every batch of yaw candidates, only projects the ground features
at those yaws and correlates every template with its own frame's satellite features (one
all-pairs correlation per frame: the satellite map meets all its candidates at once).

The correlation is the estimator's own (masked cosine, with its confidence weighting).
A yaw's score is, per level, either the best cosine over positions ('max') or the
heatmap's log marginal likelihood ('logsumexp': log mean over cells of exp(score / tau),
tau the level's heatmap temperature, e.g. GeoDistill's 0.06 times the calibration
temperature), then either the finest level's or the mean over levels ('finest' | 'mean').

Frames: yaw is map-frame (0 = east, counter-clockwise) of the panorama centre column or
the pinhole optical axis, as in the estimator.
"""
from __future__ import annotations

import math

import torch

from geodistill_core.models.backbones.preprocess import preprocess_images
from geodistill_core.models.correlation.estimator import CorrelationLocationEstimator
from geodistill_core.models.correlation.location_scores import LocationScores
from geodistill_core.models.correlation.sliding_correlation import masked_cosine_correlation

REDUCTIONS = ('max', 'logsumexp')
LEVEL_MODES = ('finest', 'mean')


def correlation_estimator_of(model: torch.nn.Module) -> CorrelationLocationEstimator | None:
    """The CorrelationLocationEstimator inside `model` (itself, or a LocationModel's
    .estimator), None for other location models (CCVPE, ONNX runners)."""
    if isinstance(model, CorrelationLocationEstimator):
        return model
    estimator = getattr(model, 'estimator', None)
    return estimator if isinstance(estimator, CorrelationLocationEstimator) else None


class CorrelationYawScorer:
    """Yaw -> score for B frames, features extracted once.

    model: a CorrelationLocationEstimator, or a LocationModel around one (its
        ground/satellite preprocessing is applied here, as its forward would).
    ground_rgb: (B, 3, Hg, Wg) RGB in [0, 1] at the model's ground size (a
        CorrelationLocationEstimator given directly takes preprocessed images).
    satellite_rgb: (B, 3, Hs, Ws) likewise. sat_meters_per_px: of satellite_rgb as given.
    camera_height_m: float or (B,). ground_K: (B, 3, 3) or (3, 3) (pinhole only).
    reduce: 'max' | 'logsumexp'; levels: 'finest' | 'mean'; tau: the heatmap temperature
        of 'logsumexp' (ignored by 'max'). chunk: most candidates projected at once per frame.
    ground_visible_cols: optional (B, Wg) bool, True = visible column (a training mask): the
        hidden columns are blanked and their BEV cells left out, as in the estimator.
    The features keep their autograd graph when built with gradients enabled (the rotated
    negatives of the weak objective train through heatmaps()).
    """

    def __init__(self, model: torch.nn.Module, ground_rgb: torch.Tensor,
                 satellite_rgb: torch.Tensor, *, sat_meters_per_px: float, camera_height_m,
                 ground_K: torch.Tensor | None = None, reduce: str = 'max',
                 levels: str = 'finest', tau: float = 0.06, chunk: int = 32,
                 ground_visible_cols: torch.Tensor | None = None) -> None:
        estimator = correlation_estimator_of(model)
        if estimator is None:
            raise TypeError(f'rotation search needs a correlation location model, got '
                            f'{type(model).__name__}')
        if reduce not in REDUCTIONS or levels not in LEVEL_MODES:
            raise ValueError(f'reduce must be one of {REDUCTIONS} and levels one of '
                             f'{LEVEL_MODES}, got {reduce!r}, {levels!r}')
        if not (tau > 0 and math.isfinite(tau)) or chunk < 1:
            raise ValueError(f'need tau > 0 and chunk >= 1, got {tau}, {chunk}')
        if ground_rgb.dim() != 4 or satellite_rgb.dim() != 4 or (
                ground_rgb.shape[0] != satellite_rgb.shape[0]):
            raise ValueError(f'need ground (B, 3, Hg, Wg) and satellite (B, 3, Hs, Ws) with '
                             f'the same B, got {tuple(ground_rgb.shape)} and '
                             f'{tuple(satellite_rgb.shape)}')
        if estimator is not model:
            if getattr(model, 'ground_preprocess', None) is not None:
                ground_rgb = preprocess_images(ground_rgb, model.ground_preprocess,
                                               check_range=False)
            if getattr(model, 'satellite_preprocess', None) is not None:
                satellite_rgb = preprocess_images(satellite_rgb, model.satellite_preprocess,
                                                  check_range=False)
        self.estimator = estimator
        self.batch = int(ground_rgb.shape[0])
        self.reduce, self.levels, self.tau, self.chunk = reduce, levels, float(tau), int(chunk)
        self.ground_hw = tuple(ground_rgb.shape[-2:])
        self.camera_height_m = camera_height_m
        self.ground_K = ground_K
        self.ground_visible_cols = ground_visible_cols
        self.sat_features = estimator.satellite_levels(satellite_rgb)
        self.geometry = estimator.level_geometry(tuple(satellite_rgb.shape[-2:]),
                                                 self.sat_features, sat_meters_per_px)
        self.ground_levels = estimator.ground_levels(ground_rgb, ground_visible_cols)

    @property
    def cell_m(self) -> list[float]:
        return [geo.cell_m for geo in self.geometry]

    def _repeat(self, value, n: int):
        """Per-frame value (B, ...) -> (B * n, ...) frame-major; floats stay floats."""
        if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == self.batch:
            return value.repeat_interleave(n, dim=0)
        return value

    def heatmaps(self, yaw_rad: torch.Tensor, finest_only: bool = False) -> list[torch.Tensor]:
        """yaw_rad (B, N) -> per level the score maps (B, N, H_l, W_l) (cosine); with
        finest_only, only the finest level's (a one-element list: what levels='finest'
        scores, without projecting and correlating the coarser levels)."""
        if yaw_rad.dim() != 2 or yaw_rad.shape[0] != self.batch:
            raise ValueError(f'yaw_rad must be (B, N) = ({self.batch}, N), '
                             f'got {tuple(yaw_rad.shape)}')
        n = yaw_rad.shape[1]
        first = len(self.ground_levels) - 1 if finest_only else 0
        levels = [(f.repeat_interleave(n, 0), c.repeat_interleave(n, 0))
                  for f, c in self.ground_levels[first:]]
        K = self.ground_K
        if K is not None and K.dim() == 3:
            K = K.repeat_interleave(n, 0)
        templates = self.estimator.project_ground_levels(
            levels, self.ground_hw, self.geometry[first:], self._repeat(self.camera_height_m, n),
            yaw_rad.reshape(-1), K, self._repeat(self.ground_visible_cols, n))
        config = self.estimator.config
        both = getattr(config, 'confidence_weighting', 'ground') == 'both'
        out = []
        for sat, tpl in zip(self.sat_features[first:], templates, strict=True):
            weighted = tpl.weighted()
            rows = [slice(b * n, (b + 1) * n) for b in range(self.batch)]
            maps = [masked_cosine_correlation(
                sat[b:b + 1], weighted[r], tpl.valid[r], config.positions, True,
                config.correlation_method,
                window_weight=tpl.confidence[r, 0] if both else None,
                template_energy_floor=getattr(config, 'template_energy_floor', 1.0))
                for b, r in enumerate(rows)]
            out.append(torch.cat(maps, 0))
        return out

    def _reduce(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Per-level (B, N, H, W) maps -> (B, N) scores."""
        per_level = []
        for scores in maps:
            flat = scores.float().flatten(-2)
            if self.reduce == 'max':
                per_level.append(flat.amax(-1))
            else:
                per_level.append(torch.logsumexp(flat / self.tau, -1) - math.log(flat.shape[-1]))
        if self.levels == 'finest':
            return per_level[-1]
        return torch.stack(per_level, 0).mean(0)

    def __call__(self, yaw_rad: torch.Tensor) -> torch.Tensor:
        """yaw_rad (B, N) -> scores (B, N) float32, candidates in chunks of self.chunk."""
        if yaw_rad.dim() != 2 or yaw_rad.shape[0] != self.batch:
            raise ValueError(f'yaw_rad must be (B, N) = ({self.batch}, N), '
                             f'got {tuple(yaw_rad.shape)}')
        finest = self.levels == 'finest'
        parts = [self._reduce(self.heatmaps(yaw_rad[:, i:i + self.chunk], finest))
                 for i in range(0, yaw_rad.shape[1], self.chunk)]
        return torch.cat(parts, 1)

    def location_scores(self, yaw_rad: torch.Tensor) -> LocationScores:
        """yaw_rad (B,) -> the model's LocationScores (B, H_l, W_l) at that yaw."""
        maps = self.heatmaps(yaw_rad.reshape(self.batch, 1))
        return LocationScores([m[:, 0] for m in maps], self.cell_m)
