"""Rotation search: yaw and its variance from a location model's score over yaw candidates.

Orientation without an extra network (issue 12, option a): inside the prior's range
(prior +- range_deg) score every coarse candidate (coarse_step_deg apart, one batch), then
a fine grid (fine_step_deg) around the best coarse one. The yaw is the best fine candidate,
refined by a parabola through it and its two neighbours; its variance comes from the
posterior over all scored candidates,

    p(yaw_i) ~ (1 - w) exp(score_i / temperature) width_i / Z + w width_i / (2 range),

width_i being the candidate's share of the yaw axis (half the gap to each neighbour, the
range's ends closing the first and last), as a piecewise-constant density, and w the
outlier weight (a uniform floor over the range, for frames whose peak is wrong); the
variance about the estimate is sum_i p_i ((yaw_i - yaw)^2 + width_i^2 / 12). `temperature`
and w are fitted on validation drives (bench/bench_yaw_search.py: maximum likelihood of the
true yaw) and checked on test drives by NEES. With coarse_step_deg == fine_step_deg the
search is a brute-force grid.

The scorer is any callable yaw_rad (B, N) -> scores (B, N), higher = better (the
correlation model's: models.correlation.yaw_scorer.CorrelationYawScorer). Yaw: radians,
map frame (0 = east, counter-clockwise); offsets from the prior never wrap (range <= 180).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
import math

import torch

YAW_SEARCH_MODES = ('none', 'rotation')


@dataclass(frozen=True)
class RotationSearchConfig:
    """range_deg: half-width of the searched interval around the prior (the prior's range,
    e.g. 10 pinhole, 45 panorama). coarse_step_deg / fine_step_deg: grid steps (fine <=
    coarse). reduce / levels: how a candidate is scored (yaw_scorer: 'max' | 'logsumexp',
    'finest' | 'mean'). temperature: of the posterior over candidates, in score units.
    outlier_weight: the posterior's uniform floor over the range, in [0, 1).
    chunk: most candidates scored in one batch per frame."""

    range_deg: float = 10.0
    coarse_step_deg: float = 2.0
    fine_step_deg: float = 0.25
    reduce: str = 'max'
    levels: str = 'finest'
    temperature: float = 0.01
    outlier_weight: float = 0.0
    chunk: int = 32

    def __post_init__(self):
        values = (self.range_deg, self.coarse_step_deg, self.fine_step_deg, self.temperature)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ValueError(f'rotation search: range, steps and temperature must be finite '
                             f'numbers, got {values}')
        if not 0 < self.range_deg <= 180:
            raise ValueError(f'rotation search range_deg must be in (0, 180], got '
                             f'{self.range_deg}')
        if not 0 < self.fine_step_deg <= self.coarse_step_deg:
            raise ValueError(f'rotation search needs 0 < fine_step_deg <= coarse_step_deg, got '
                             f'{self.fine_step_deg} and {self.coarse_step_deg}')
        if not self.temperature > 0:
            raise ValueError(f'rotation search temperature must be > 0, got {self.temperature}')
        if not 0 <= self.outlier_weight < 1:
            raise ValueError(f'rotation search outlier_weight must be in [0, 1), got '
                             f'{self.outlier_weight}')
        if self.chunk < 1:
            raise ValueError(f'rotation search chunk must be >= 1, got {self.chunk}')

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class YawSearchResult:
    """B frames, N scored candidates (coarse and fine, sorted by yaw).

    yaw_rad (B,): the estimate; yaw_var_rad2 (B,): its variance.
    candidates_rad (B, N): the scored yaws; scores (B, N): their scores;
    posterior (B, N): p_i (sums to 1); width_rad (B, N): each candidate's share of the axis.
    """

    yaw_rad: torch.Tensor
    yaw_var_rad2: torch.Tensor
    candidates_rad: torch.Tensor
    scores: torch.Tensor
    posterior: torch.Tensor
    width_rad: torch.Tensor


def coarse_offsets_rad(config: RotationSearchConfig) -> torch.Tensor:
    """(Nc,) offsets from the prior covering [-range, range] with steps <= coarse_step."""
    n = 2 * math.ceil(config.range_deg / config.coarse_step_deg) + 1
    return torch.linspace(-config.range_deg, config.range_deg, n, dtype=torch.float64).deg2rad()


def _fine_offsets_rad(best_rad: torch.Tensor, config: RotationSearchConfig) -> torch.Tensor:
    """(B,) best coarse offsets -> (B, Nf) fine offsets around them, kept inside the range."""
    coarse_step = 2 * config.range_deg / (coarse_offsets_rad(config).numel() - 1)
    half = math.ceil(coarse_step / config.fine_step_deg - 1e-9)
    steps = torch.arange(-half, half + 1, dtype=torch.float64) * config.fine_step_deg
    limit = math.radians(config.range_deg - half * config.fine_step_deg)
    if limit < 0:  # the fine window is wider than the range: search all of it
        return torch.arange(-config.range_deg, config.range_deg + 1e-9, config.fine_step_deg,
                            dtype=torch.float64).deg2rad().expand(best_rad.shape[0], -1)
    centre = best_rad.to(torch.float64).clamp(-limit, limit)
    return centre[:, None] + steps.deg2rad()[None, :]


def _widths(sorted_rad: torch.Tensor, range_rad: float) -> torch.Tensor:
    """(B, N) sorted candidates in [-range, range] -> each one's share of the axis."""
    lo = sorted_rad.new_full(sorted_rad.shape[:1] + (1,), -range_rad)
    hi = sorted_rad.new_full(sorted_rad.shape[:1] + (1,), range_rad)
    edges = torch.cat([lo, sorted_rad, hi], 1)
    mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
    mids[:, 0], mids[:, -1] = -range_rad, range_rad
    return (mids[:, 1:] - mids[:, :-1]).clamp(min=0)


def _parabola_peak(offsets: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """(B, Nf) evenly spaced fine offsets and scores -> (B,) argmax refined by a parabola
    through it and its neighbours (at the grid's ends, or if not a peak: the argmax)."""
    B, n = scores.shape
    best = scores.argmax(1)
    x0 = offsets.gather(1, best[:, None])[:, 0]
    if n < 3:
        return x0
    inner = best.clamp(1, n - 2)
    s = torch.stack([scores.gather(1, (inner + k)[:, None])[:, 0] for k in (-1, 0, 1)], 1)
    s = s.double()
    curvature = s[:, 0] - 2 * s[:, 1] + s[:, 2]
    step = offsets[:, 1] - offsets[:, 0]
    shift = 0.5 * (s[:, 0] - s[:, 2]) / curvature.where(curvature < 0, -1.0) * step
    ok = (best == inner) & (curvature < 0)
    return torch.where(ok, x0 + shift.clamp(-0.5 * step, 0.5 * step), x0)


def posterior_from_scores(offsets_rad: torch.Tensor, scores: torch.Tensor, range_deg: float,
                          temperature: float, outlier_weight: float = 0.0
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Candidate offsets (B, N) (any order, duplicates allowed) and scores (B, N) ->
    (sorted offsets, sorted scores, posterior p (B, N), widths (B, N)); module doc."""
    order = offsets_rad.argsort(1)
    x = offsets_rad.gather(1, order).double()
    s = scores.gather(1, order).double()
    widths = _widths(x, math.radians(range_deg))
    log_p = s / temperature + widths.clamp(min=1e-300).log()
    log_p = log_p.masked_fill(widths <= 0, float('-inf'))
    p = torch.softmax(log_p, 1)
    if outlier_weight > 0:
        p = (1 - outlier_weight) * p + outlier_weight * widths / widths.sum(1, keepdim=True)
    return x, s, p, widths


def posterior_variance(x: torch.Tensor, p: torch.Tensor, widths: torch.Tensor,
                       estimate_rad: torch.Tensor) -> torch.Tensor:
    """E[(yaw - estimate)^2] under the piecewise-constant posterior, (B,)."""
    return (p * ((x - estimate_rad[:, None]) ** 2 + widths ** 2 / 12)).sum(1)


def search_yaw(scorer: Callable[[torch.Tensor], torch.Tensor], yaw_prior_rad: torch.Tensor,
               config: RotationSearchConfig) -> YawSearchResult:
    """Coarse-to-fine rotation search around yaw_prior_rad (B,) with scorer (B, N) -> (B, N).

    Returns a YawSearchResult (float64 on the prior's device; candidates absolute yaws)."""
    prior = torch.as_tensor(yaw_prior_rad)
    if prior.dim() != 1:
        raise ValueError(f'yaw_prior_rad must be (B,), got {tuple(prior.shape)}')
    if not torch.isfinite(prior).all():
        raise ValueError(f'yaw_prior_rad must be finite, got {prior.tolist()}')
    prior = prior.to(torch.float64)
    B, device = prior.shape[0], prior.device

    def score(offsets: torch.Tensor) -> torch.Tensor:
        yaw = (prior[:, None] + offsets.to(device)).float()
        out = scorer(yaw)
        if tuple(out.shape) != tuple(yaw.shape):
            raise ValueError(f'scorer returned {tuple(out.shape)} for candidates '
                             f'{tuple(yaw.shape)}')
        return out.detach().double().to(device)

    coarse = coarse_offsets_rad(config).to(device).expand(B, -1)
    coarse_scores = score(coarse)
    if config.fine_step_deg < config.coarse_step_deg:
        best = coarse.gather(1, coarse_scores.argmax(1, keepdim=True))[:, 0]
        fine = _fine_offsets_rad(best, config).to(device)
        fine_scores = score(fine)
        offsets = torch.cat([coarse, fine], 1)
        scores = torch.cat([coarse_scores, fine_scores], 1)
    else:
        fine, fine_scores, offsets, scores = coarse, coarse_scores, coarse, coarse_scores
    estimate = _parabola_peak(fine, fine_scores)
    x, s, p, widths = posterior_from_scores(offsets, scores, config.range_deg,
                                            config.temperature, config.outlier_weight)
    variance = posterior_variance(x, p, widths, estimate)
    return YawSearchResult(yaw_rad=prior + estimate, yaw_var_rad2=variance,
                           candidates_rad=prior[:, None] + x, scores=s, posterior=p,
                           width_rad=widths)
