"""Losses: GeoDistill distillation, weak triplet, heatmap and orientation supervision.

Heatmaps are scores (B, H, W) as in heatmap.py; probabilities are
softmax(scores / tau) over all valid cells (tau = 0.06 in GeoDistill; `sharpen=False`
means tau = 1, a plain softmax). Masked cells have probability 0 and contribute nothing.

Orientation bins (method.md section 5): centres at -range + i * bin_deg, i = 0..n-1
(n = 2 range / bin_deg + 1, so 0 deg is a bin centre). The float bin of an angle a is
(a - centre_0) / bin_deg. Labels are Gaussians over that float bin and decoding maps the
refined bin back with the SAME formula, so label and decoder agree to float precision.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from geodistill_core.heatmap import DEFAULT_TAU, parabola_vertex_offset, sharpened_log_softmax


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
    """

    tau: float = DEFAULT_TAU
    sharpen: bool = True
    divergence: str = 'ce'
    target: str = 'soft'

    def __post_init__(self):
        if self.divergence not in ('ce', 'kl'):
            raise ValueError(f"divergence must be 'ce' or 'kl', got {self.divergence!r}")
        if self.target not in ('soft', 'single_mode'):
            raise ValueError(f"target must be 'soft' or 'single_mode', got {self.target!r}")
        if self.divergence == 'kl' and self.target != 'soft':
            raise ValueError('the KL variant needs the soft target')
        if not self.tau > 0:
            raise ValueError(f'tau must be > 0, got {self.tau}')


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


def yaw_bins(prior_range_deg: float = 45.0, bin_deg: float = 1.0, device=None,
             dtype=torch.float32) -> torch.Tensor:
    """Bin centres (n,) in degrees: -range, -range + bin, ..., +range (0 is a centre)."""
    half = prior_range_deg / bin_deg
    if not bin_deg > 0 or abs(half - round(half)) > 1e-9 or round(half) < 1:
        raise ValueError(f'prior_range_deg ({prior_range_deg}) must be a positive multiple '
                         f'of bin_deg ({bin_deg})')
    k = torch.arange(-round(half), round(half) + 1, device=device, dtype=torch.float64)
    return (k * bin_deg).to(dtype)


def angle_to_bin(angle_deg: torch.Tensor, bin_centers_deg: torch.Tensor) -> torch.Tensor:
    """Float bin index (B,) of angles (B,): (angle - centre_0) / bin_deg."""
    step = bin_centers_deg[1] - bin_centers_deg[0]
    return (angle_deg - bin_centers_deg[0]) / step


def bin_to_angle(bin_float: torch.Tensor, bin_centers_deg: torch.Tensor) -> torch.Tensor:
    """Inverse of angle_to_bin: degrees (B,)."""
    step = bin_centers_deg[1] - bin_centers_deg[0]
    return bin_centers_deg[0] + bin_float * step


def orientation_target(n_bins: int, target_bin_float: torch.Tensor,
                       sigma_bins: float = 1.0) -> torch.Tensor:
    """Gaussian-smoothed labels (B, n_bins) centred at float bins (B,), rows sum to 1."""
    if target_bin_float.dim() != 1:
        raise ValueError(f'target_bin_float must be (B,), got {tuple(target_bin_float.shape)}')
    t = target_bin_float if target_bin_float.is_floating_point() else target_bin_float.float()
    i = torch.arange(n_bins, device=t.device, dtype=t.dtype).view(1, -1)
    return torch.softmax((-0.5 / sigma_bins ** 2) * (i - t.view(-1, 1)) ** 2, dim=1)


def orientation_ce_loss(logits: torch.Tensor, target_bin_float: torch.Tensor,
                        sigma_bins: float = 1.0) -> torch.Tensor:
    """CE of softmax(logits) (B, n_bins) to Gaussian labels at target_bin_float (B,)."""
    if logits.dim() != 2 or target_bin_float.shape != logits.shape[:1]:
        raise ValueError(f'logits must be (B, n_bins) and target (B,), got '
                         f'{tuple(logits.shape)} and {tuple(target_bin_float.shape)}')
    target = orientation_target(logits.shape[1], target_bin_float.to(logits), sigma_bins)
    return soft_cross_entropy(target, F.log_softmax(logits, dim=1))


def decode_orientation(logits: torch.Tensor, bin_centers_deg: torch.Tensor) -> torch.Tensor:
    """Yaw (B,) degrees from logits (B, n_bins) over bin_centers_deg (n_bins,).

    The argmax bin i is refined by the vertex of the parabola through the
    log-probabilities of three consecutive bins centred on i (on bin 1 or n - 2 when i is
    an end bin), kept within i +- 0.5, and mapped back with bin_to_angle. Exact for
    Gaussian labels (their log is a parabola), also between bins and at the range ends.
    """
    n = bin_centers_deg.shape[0]
    if logits.dim() != 2 or logits.shape[1] != n or n < 3:
        raise ValueError(f'logits (B, n_bins) must match {tuple(bin_centers_deg.shape)} '
                         f'bin centres (at least 3), got {tuple(logits.shape)}')
    log_p = F.log_softmax(logits.detach().to(torch.float64), dim=1)
    i = log_p.argmax(dim=1)
    c = i.clamp(1, n - 2)
    b = torch.arange(log_p.shape[0], device=log_p.device)
    delta = parabola_vertex_offset(log_p[b, c - 1], log_p[b, c], log_p[b, c + 1], limit=1.5)
    bin_float = torch.minimum(torch.maximum(c + delta, i - 0.5), i + 0.5)
    return bin_to_angle(bin_float, bin_centers_deg.to(bin_float)).to(logits.dtype)


def orientation_std_deg(logits: torch.Tensor, bin_centers_deg: torch.Tensor,
                        around_deg: torch.Tensor | None = None) -> torch.Tensor:
    """Spread (B,) degrees of softmax(logits) around around_deg (default its mean),
    with the bin-width quantisation floor bin_deg^2 / 12 added to the variance."""
    p = F.softmax(logits.detach(), dim=1)
    centres = bin_centers_deg.to(p).view(1, -1)
    mu = (p * centres).sum(dim=1) if around_deg is None else around_deg.to(p)
    step = float(bin_centers_deg[1] - bin_centers_deg[0])
    var = (p * (centres - mu.view(-1, 1)) ** 2).sum(dim=1) + step * step / 12.0
    return var.sqrt()
