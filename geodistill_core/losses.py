"""Losses: GeoDistill distillation, weak triplet and Gaussian heatmap supervision.

Heatmaps are scores (B, H, W) as in heatmap.py; probabilities are
softmax(scores / tau) over all valid cells (tau = 0.06 in GeoDistill; `sharpen=False`
means tau = 1, a plain softmax). Masked cells have probability 0 and contribute nothing.

The orientation bins, their Gaussian labels, loss and decoding live with the orientation
estimator (models/orientation/yaw_bins.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from geodistill_core.heatmap import DEFAULT_TAU, sharpened_log_softmax


def _check_pair(teacher: torch.Tensor, student: torch.Tensor) -> None:
    if teacher.dim() != 3 or teacher.shape != student.shape:
        raise ValueError(f'teacher and student scores must be equal (B, H, W), got '
                         f'{tuple(teacher.shape)} and {tuple(student.shape)}')


def soft_cross_entropy(target_prob: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """-sum_i q_i log p_i per map, batch mean. (B, ...) each; cells with q = 0 add 0."""
    safe_log = torch.where(target_prob > 0, log_prob, torch.zeros_like(log_prob))
    return -(target_prob * safe_log).flatten(1).sum(dim=1).mean()


def heatmap_cross_entropy(target_prob: torch.Tensor, scores: torch.Tensor, tau: float = 1.0,
                          valid: torch.Tensor | None = None) -> torch.Tensor:
    """CE of softmax(scores / tau) (B, H, W) to a target distribution (B, H, W); scalar."""
    _check_pair(target_prob, scores)
    return soft_cross_entropy(target_prob, sharpened_log_softmax(scores, tau, valid))


def _teacher_target(teacher_scores, tau, valid, single_mode):
    """Detached teacher distribution (B, H, W): sharpened softmax or one-hot at argmax."""
    t = teacher_scores.detach()
    log_p = sharpened_log_softmax(t, tau, valid)
    if not single_mode:
        return log_p.exp()
    B, H, W = t.shape
    idx = log_p.reshape(B, H * W).argmax(dim=1)
    return F.one_hot(idx, H * W).to(t.dtype).reshape(B, H, W)


def distillation_cross_entropy(teacher_scores: torch.Tensor, student_scores: torch.Tensor,
                               tau: float = DEFAULT_TAU, valid: torch.Tensor | None = None,
                               sharpen: bool = True,
                               single_mode: bool = False) -> torch.Tensor:
    """GeoDistill loss for one level: -sum_i P_t(i) log P_s(i), batch mean (scalar).

    teacher_scores, student_scores: (B, H, W); the teacher is detached here, so no
    gradient ever reaches it. P = softmax(scores / tau) (tau = 1 when sharpen=False).
    valid: optional (B, H, W) or (H, W) bool cells (both distributions exclude the rest).
    single_mode: the target is one-hot at the teacher's argmax (paper ablation).
    """
    _check_pair(teacher_scores, student_scores)
    tau = tau if sharpen else 1.0
    target = _teacher_target(teacher_scores, tau, valid, single_mode)
    return soft_cross_entropy(target, sharpened_log_softmax(student_scores, tau, valid))


def distillation_kl(teacher_scores: torch.Tensor, student_scores: torch.Tensor,
                    tau: float = DEFAULT_TAU, valid: torch.Tensor | None = None,
                    sharpen: bool = True) -> torch.Tensor:
    """KL(P_t || P_s) = CE - H(P_t), batch mean (scalar); arguments as the CE."""
    _check_pair(teacher_scores, student_scores)
    tau = tau if sharpen else 1.0
    log_t = sharpened_log_softmax(teacher_scores.detach(), tau, valid)
    log_s = sharpened_log_softmax(student_scores, tau, valid)
    p_t = log_t.exp()
    log_ratio = torch.where(p_t > 0, log_t - log_s, torch.zeros_like(log_s))
    return (p_t * log_ratio).flatten(1).sum(dim=1).mean()


@dataclass(frozen=True)
class DistillationLossConfig:
    """The distillation objective and its paper ablations.

    divergence: 'ce' (GeoDistill) or 'kl'. target: 'soft' or 'single_mode' (one-hot at
    the teacher's argmax; CE only). sharpen: softmax(score / tau) if True, else tau = 1.
    tau applies to cosine scores (in [-1, 1]: the correlation estimator). logits_tau
    applies instead to estimators whose scores are already logits (`scores_are_logits`,
    CCVPE): their training scales them for softmax at temperature 1, which is how
    inference reads them, so 1.0 (the default) makes the target the teacher's own
    inference distribution; tau 0.06 there would multiply the logit gaps by 16.7 and
    collapse the targets towards one-hot. Values below 1 sharpen relative to inference.
    """

    tau: float = DEFAULT_TAU
    sharpen: bool = True
    divergence: str = 'ce'
    target: str = 'soft'
    logits_tau: float = 1.0

    def __post_init__(self):
        if self.divergence not in ('ce', 'kl'):
            raise ValueError(f"divergence must be 'ce' or 'kl', got {self.divergence!r}")
        if self.target not in ('soft', 'single_mode'):
            raise ValueError(f"target must be 'soft' or 'single_mode', got {self.target!r}")
        if self.divergence == 'kl' and self.target != 'soft':
            raise ValueError('the KL variant needs the soft target')
        if not (self.tau > 0 and self.logits_tau > 0):
            raise ValueError(f'tau and logits_tau must be > 0, got {self.tau}, '
                             f'{self.logits_tau}')


def distillation_loss(teacher_levels: list[torch.Tensor], student_levels: list[torch.Tensor],
                      config: DistillationLossConfig = DistillationLossConfig(),
                      valid_levels: list[torch.Tensor | None] | None = None) -> torch.Tensor:
    """Mean over heatmap levels of the configured per-level loss (scalar).

    teacher_levels, student_levels: lists of (B, H_l, W_l); valid_levels: optional list
    of per-level masks (None entries allowed).
    """
    if len(teacher_levels) != len(student_levels) or not teacher_levels:
        raise ValueError(f'{len(teacher_levels)} teacher levels vs {len(student_levels)} '
                         'student levels')
    valid_levels = valid_levels or [None] * len(teacher_levels)
    if len(valid_levels) != len(teacher_levels):
        raise ValueError(f'{len(valid_levels)} masks for {len(teacher_levels)} levels')
    losses = []
    for t, s, v in zip(teacher_levels, student_levels, valid_levels, strict=True):
        if config.divergence == 'kl':
            losses.append(distillation_kl(t, s, config.tau, v, config.sharpen))
        else:
            losses.append(distillation_cross_entropy(t, s, config.tau, v, config.sharpen,
                                                     config.target == 'single_mode'))
    return torch.stack(losses).mean()


def best_match_distance(cosine_maps: torch.Tensor,
                        valid: torch.Tensor | None = None) -> torch.Tensor:
    """d_mn = min over positions of (2 - 2 cos): cosine_maps (Bs, Bg, H, W) -> (Bs, Bg).

    valid: optional (H, W) or (Bs, Bg, H, W) bool positions to search.
    """
    if cosine_maps.dim() != 4:
        raise ValueError(f'cosine_maps must be (Bs, Bg, H, W), got {tuple(cosine_maps.shape)}')
    c = cosine_maps
    if valid is not None:
        c = c.masked_fill(~valid.to(device=c.device, dtype=torch.bool), float('-inf'))
    return 2.0 - 2.0 * c.flatten(2).amax(dim=2)


def weak_triplet_loss(distance: torch.Tensor, alpha: float = 10.0,
                      symmetric: bool = False) -> torch.Tensor:
    """In-batch soft-margin triplet over best-match distances (scalar).

    distance: (B, B), d[m, n] between satellite m and ground n; the diagonal pairs match.
    Loss = mean over m != n of softplus(alpha (d_mm - d_mn)) (satellite-anchored, as in
    method.md section 3). symmetric=True averages it with the ground-anchored term
    softplus(alpha (d_nn - d_mn)).
    """
    if distance.dim() != 2 or distance.shape[0] != distance.shape[1] or distance.shape[0] < 2:
        raise ValueError('distance must be square (B, B) with B >= 2, '
                         f'got {tuple(distance.shape)}')
    B = distance.shape[0]
    pos = torch.diagonal(distance)
    off = ~torch.eye(B, dtype=torch.bool, device=distance.device)
    sat_anchor = F.softplus(alpha * (pos.view(B, 1) - distance))[off].mean()
    if not symmetric:
        return sat_anchor
    grd_anchor = F.softplus(alpha * (pos.view(1, B) - distance))[off].mean()
    return 0.5 * (sat_anchor + grd_anchor)


def gaussian_target(height: int, width: int, center_px: torch.Tensor,
                    sigma_px: float) -> torch.Tensor:
    """Normalised Gaussian heatmaps (B, H, W) centred at center_px (B, 2) (row, col)."""
    if center_px.dim() != 2 or center_px.shape[1] != 2:
        raise ValueError(f'center_px must be (B, 2) (row, col), got {tuple(center_px.shape)}')
    c = center_px if center_px.is_floating_point() else center_px.float()
    rows = torch.arange(height, device=c.device, dtype=c.dtype).view(1, height, 1)
    cols = torch.arange(width, device=c.device, dtype=c.dtype).view(1, 1, width)
    d2 = (rows - c[:, 0].view(-1, 1, 1)) ** 2 + (cols - c[:, 1].view(-1, 1, 1)) ** 2
    log_g = (-0.5 / sigma_px ** 2) * d2
    return torch.softmax(log_g.flatten(1), dim=1).view_as(d2)
