"""Yaw-offset bins: centres, Gaussian labels, decoding and loss, all on one mapping.

Bin k has its centre at c_k = -prior_range + k * bin_deg degrees (k = 0 .. n - 1,
n = 2 prior_range / bin_deg + 1; 0 is the centre of the middle bin). An offset a degrees
sits at the fractional bin t = (a - c_0) / bin_deg, and t maps back to c_0 + t * bin_deg:
labels and decoding use this one mapping, so a distribution equal to the labels decodes to
the labelled angle (the reference mixes two mappings and has a ~1 degree floor).

Labels: softmax over k of -(k - t)^2 / (2 sigma^2), sigma = 1 bin. Decoding: the argmax
bin refined by the vertex of the parabola through the log-probabilities of three
consecutive bins (exact for these labels, whose log is a parabola in k).

Sign: offsets are map-frame yaw differences (counter-clockwise positive): a positive
offset means the camera's yaw is counter-clockwise of the prior, true yaw = prior + offset.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from geodistill_core.geodesy import wrap_angle_rad
from geodistill_core.heatmap import parabola_vertex_offset


def yaw_bin_centers_deg(prior_range_deg: float = 45.0, bin_deg: float = 1.0, device=None,
                        dtype=torch.float32) -> torch.Tensor:
    """(n,) bin centres in degrees: -range, -range + bin, ..., +range."""
    half = prior_range_deg / bin_deg
    if not bin_deg > 0 or round(half) < 1 or abs(half - round(half)) > 1e-9:
        raise ValueError(f'prior_range_deg ({prior_range_deg}) must be a positive multiple of '
                         f'bin_deg ({bin_deg})')
    k = torch.arange(-round(half), round(half) + 1, device=device, dtype=torch.float64)
    return (k * bin_deg).to(dtype)


def _step_deg(centers_deg: torch.Tensor) -> float:
    if centers_deg.dim() != 1 or centers_deg.shape[0] < 3:
        raise ValueError(f'need (n,) bin centres with n >= 3, got {tuple(centers_deg.shape)}')
    return float(centers_deg[1] - centers_deg[0])


def offset_to_bin(offset_deg: torch.Tensor, centers_deg: torch.Tensor) -> torch.Tensor:
    """Fractional bin index (B,) of offsets (B,) degrees."""
    return (offset_deg - centers_deg[0].to(offset_deg)) / _step_deg(centers_deg)


def bin_to_offset(bin_float: torch.Tensor, centers_deg: torch.Tensor) -> torch.Tensor:
    """Inverse of offset_to_bin: degrees (B,)."""
    return centers_deg[0].to(bin_float) + bin_float * _step_deg(centers_deg)


def yaw_offset_labels(offset_deg: torch.Tensor, centers_deg: torch.Tensor,
                      sigma_bins: float = 1.0) -> torch.Tensor:
    """Gaussian-smoothed labels (B, n), rows summing to 1, for offsets (B,) in degrees.

    Offsets beyond the range get the truncated Gaussian (mass piles up at the end bin).
    """
    if offset_deg.dim() != 1:
        raise ValueError(f'offset_deg must be (B,), got {tuple(offset_deg.shape)}')
    t = offset_to_bin(offset_deg, centers_deg.to(offset_deg))
    k = torch.arange(centers_deg.shape[0], device=t.device, dtype=t.dtype)
    return torch.softmax((-0.5 / sigma_bins ** 2) * (k.view(1, -1) - t.view(-1, 1)) ** 2, dim=1)


def yaw_offset_loss(logits: torch.Tensor, offset_rad: torch.Tensor, centers_deg: torch.Tensor,
                    sigma_bins: float = 1.0) -> torch.Tensor:
    """Cross-entropy of softmax(logits) (B, n) to the labels of offsets (B,) radians."""
    if logits.dim() != 2 or logits.shape[1] != centers_deg.shape[0] or \
            offset_rad.shape != logits.shape[:1]:
        raise ValueError(f'logits must be (B, {centers_deg.shape[0]}) and offsets (B,), got '
                         f'{tuple(logits.shape)} and {tuple(offset_rad.shape)}')
    labels = yaw_offset_labels(torch.rad2deg(offset_rad.to(logits)), centers_deg.to(logits),
                               sigma_bins)
    return -(labels * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def decode_yaw_offset_deg(logits: torch.Tensor, centers_deg: torch.Tensor) -> torch.Tensor:
    """Offsets (B,) degrees from logits (B, n): argmax bin + parabolic refinement.

    The parabola goes through the log-probabilities of bins c - 1, c, c + 1 with c the
    argmax i moved off the end bins; its vertex is kept within i +- 0.5 bins (so the end
    bins can decode up to half a bin beyond the range). Exact for Gaussian labels (their
    log is a parabola), invariant to the scale and shift of the logits. Not differentiable.
    """
    n = centers_deg.shape[0]
    if logits.dim() != 2 or logits.shape[1] != n or n < 3:
        raise ValueError(f'logits must be (B, {n}) over {n} bin centres (at least 3), '
                         f'got {tuple(logits.shape)}')
    log_p = F.log_softmax(logits.detach().to(torch.float64), dim=1)
    i = log_p.argmax(dim=1)
    c = i.clamp(1, n - 2)
    rows = torch.arange(log_p.shape[0], device=log_p.device)
    delta = parabola_vertex_offset(log_p[rows, c - 1], log_p[rows, c], log_p[rows, c + 1],
                                   limit=1.5)
    bin_float = torch.minimum(torch.maximum(c + delta, i - 0.5), i + 0.5)
    return bin_to_offset(bin_float, centers_deg.to(bin_float)).to(logits.dtype)


def yaw_spread_deg(logits: torch.Tensor, centers_deg: torch.Tensor,
                   around_deg: torch.Tensor | None = None,
                   bin_width_floor: bool = False) -> torch.Tensor:
    """Standard deviation (B,) degrees of the bin distribution softmax(logits) (B, n)
    around around_deg (B,) (the decoded offset; default the distribution's mean). It
    includes the label width (sigma = 1 bin), so a confident, well-trained estimator
    reports about one bin. bin_width_floor adds the quantisation variance bin_deg^2 / 12."""
    p = F.softmax(logits.detach(), dim=1)
    centres = centers_deg.to(p).view(1, -1)
    mu = (p * centres).sum(dim=1) if around_deg is None else around_deg.to(p)
    var = (p * (centres - mu.view(-1, 1)) ** 2).sum(dim=1)
    if bin_width_floor:
        step = _step_deg(centers_deg)
        var = var + step * step / 12.0
    return var.sqrt()


def yaw_offset_rad(true_yaw_rad: torch.Tensor, prior_yaw_rad: torch.Tensor) -> torch.Tensor:
    """Training target (B,): wrapped true - prior (positive: camera counter-clockwise of
    the prior)."""
    return wrap_angle_rad(true_yaw_rad - prior_yaw_rad)
