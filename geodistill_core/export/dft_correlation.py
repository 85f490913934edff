"""Masked cosine correlation by real DFTs written as matrix products (export path).

Computes exactly what sliding_correlation.masked_cosine_correlation computes (same
positions, same masked normalisation, same empty-window rule), for fixed map and template
sizes, with the 2-D DFTs as products with constant cosine/sine matrices instead of
rfft2/irfft2 or a conv2d whose weights are the template:

- ONNX has no complex type and onnxruntime's DFT kernel is slow at these sizes, while a
  Conv whose weight is the template runs as an im2col of C r c x h w values (61 M MACs
  and about 250 MB of traffic for the panorama default model's 25 x 25 template on a
  64 x 64 map with 24 channels); the matrix DFT is about 35 M MACs of plain MatMul;
- templates are paired with satellites in the frequency domain through an index
  (template b with satellite pair[b]), so the cost is linear in the batch whether every
  ground image has its crop or all share one (yaw candidates);
- window energies run in float64, as in the FFT path (sliding_correlation.py).

Transform length per axis: n >= h + (r - 1) / 2 for 'same' (and >= r), n >= h for 'valid'
(no window wraps around; any length works, there is no FFT).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from geodistill_core.models.correlation.sliding_correlation import (
    DEFAULT_ENERGY_EPS,
    EMPTY_WINDOW_REL,
    POSITIONS,
)


def _length(n: int, k: int, positions: str) -> int:
    return max(n + (k - 1) // 2, k) if positions == 'same' else n


def _forward_matrices(n_in: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (n_freq, n_in) of the length-n DFT of a length-n_in signal (zero padded)."""
    angle = 2 * math.pi * torch.outer(torch.arange(n, dtype=torch.float64),
                                      torch.arange(n_in, dtype=torch.float64)) / n
    return torch.cos(angle), torch.sin(angle)


class DftCorrelation(nn.Module):
    """Masked cosine scores of templates (B, C, r, c) on satellite maps (Bs, C, h, w).

    map_hw: (h, w); template_hw: (r, c), odd; positions: 'same' | 'valid'.
    """

    def __init__(self, map_hw: tuple[int, int], template_hw: tuple[int, int],
                 positions: str = 'same') -> None:
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(f'positions must be one of {POSITIONS}, got {positions!r}')
        (h, w), (r, c) = map_hw, template_hw
        if r % 2 == 0 or c % 2 == 0:
            raise ValueError(f'template sides must be odd (centre on a cell), got {(r, c)}')
        self.map_hw, self.template_hw, self.positions = (h, w), (r, c), positions
        n_rows, n_cols = _length(h, r, positions), _length(w, c, positions)
        n_freq = n_cols // 2 + 1
        if positions == 'same':
            rows = (torch.arange(h) - (r - 1) // 2) % n_rows
            cols = (torch.arange(w) - (c - 1) // 2) % n_cols
        else:
            rows, cols = torch.arange(h - r + 1), torch.arange(w - c + 1)
        matrices = {}
        for name, (n_in_rows, n_in_cols) in (('map', (h, w)), ('tpl', (r, c))):
            cos_c, sin_c = _forward_matrices(n_in_cols, n_cols)
            matrices[f'{name}_col_cos'] = cos_c[:n_freq].T.contiguous()  # (n_in_cols, F)
            matrices[f'{name}_col_sin'] = sin_c[:n_freq].T.contiguous()
            matrices[f'{name}_row_cos'], matrices[f'{name}_row_sin'] = _forward_matrices(
                n_in_rows, n_rows)  # (N, n_in_rows)
        angle_rows = 2 * math.pi * torch.outer(rows.double(),
                                               torch.arange(n_rows, dtype=torch.float64)) / n_rows
        matrices['inv_row_cos'], matrices['inv_row_sin'] = torch.cos(angle_rows), \
            torch.sin(angle_rows)  # (H, N)
        weight = torch.full((n_freq,), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if n_cols % 2 == 0:
            weight[-1] = 1.0
        angle_cols = 2 * math.pi * torch.outer(torch.arange(n_freq, dtype=torch.float64),
                                               cols.double()) / n_cols
        scale = weight[:, None] / (n_rows * n_cols)
        matrices['inv_col_cos'] = torch.cos(angle_cols) * scale  # (F, W)
        matrices['inv_col_sin'] = torch.sin(angle_cols) * scale
        for name, value in matrices.items():
            self.register_buffer(f'{name}_64', value, persistent=False)
            self.register_buffer(f'{name}_32', value.float(), persistent=False)

    def _m(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        return getattr(self, f'{name}_{64 if dtype == torch.float64 else 32}')

    def _spectrum(self, x: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary parts (..., N, F) of the 2-D DFT of x (..., n_rows, n_cols)."""
        a_re = x @ self._m(f'{name}_col_cos', x.dtype)
        a_im = -(x @ self._m(f'{name}_col_sin', x.dtype))
        row_cos, row_sin = self._m(f'{name}_row_cos', x.dtype), self._m(f'{name}_row_sin',
                                                                          x.dtype)
        return row_cos @ a_re + row_sin @ a_im, row_cos @ a_im - row_sin @ a_re

    def correlate(self, x: torch.Tensor, k: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
        """Sum over channels of map pair[b] of x (Bs, C, h, w) cross-correlated with k[b]
        (B, C, r, c), at the module's positions -> (B, H, W), in x's dtype."""
        x_re, x_im = self._spectrum(x, 'map')
        k_re, k_im = self._spectrum(k, 'tpl')
        x_re, x_im = x_re[pair], x_im[pair]
        p_re = (x_re * k_re + x_im * k_im).sum(1)  # X conj(K), summed over channels
        p_im = (x_im * k_re - x_re * k_im).sum(1)
        row_cos, row_sin = self._m('inv_row_cos', x.dtype), self._m('inv_row_sin', x.dtype)
        q_re = row_cos @ p_re - row_sin @ p_im
        q_im = row_sin @ p_re + row_cos @ p_im
        return q_re @ self._m('inv_col_cos', x.dtype) - q_im @ self._m('inv_col_sin', x.dtype)

    def forward(self, satellite: torch.Tensor, template: torch.Tensor, valid: torch.Tensor,
                pair: torch.Tensor, eps: float = DEFAULT_ENERGY_EPS,
                window_weight: torch.Tensor | None = None,
                template_energy_floor: float = 1.0) -> torch.Tensor:
        """Cosine scores (B, H, W) in [-1, 1] of template b (B, C, r, c) with valid cells
        (B, r, c) on satellite map pair[b] of satellite (Bs, C, h, w); float32.
        window_weight, template_energy_floor: as in masked_cosine_correlation."""
        if satellite.shape[-2:] != self.map_hw or template.shape[-2:] != self.template_hw:
            raise ValueError(f'built for maps {self.map_hw} and templates {self.template_hw}, '
                             f'got {tuple(satellite.shape)} and {tuple(template.shape)}')
        sat = satellite.float()
        mask = valid.float().unsqueeze(1)  # (B, 1, r, c)
        tpl = template.float() * mask
        sat_energy = (sat * sat).sum(dim=1, keepdim=True)  # (Bs, 1, h, w)
        tpl_energy = (tpl * tpl).flatten(1).sum(dim=1).view(-1, 1, 1)  # (B, 1, 1)
        if window_weight is None:
            dot = self.correlate(sat, tpl, pair)
            win_energy = self.correlate(sat_energy.double(), mask.double(), pair).float()
        else:
            weight = window_weight.float().unsqueeze(1) * mask
            dot = self.correlate(sat, tpl * weight, pair)
            win_energy = self.correlate(sat_energy.double(), (weight * weight).double(),
                                        pair).float()
        if template_energy_floor < 1.0 and self.positions == 'same':
            # the template's energy over the cells that land on the map, per position
            cell_energy = (tpl * tpl).sum(dim=1, keepdim=True).double()  # (B, 1, r, c)
            on_map = torch.ones_like(sat_energy[:1]).double()  # (1, 1, h, w)
            inside = self.correlate(on_map, cell_energy, torch.zeros_like(pair)).float()
            tpl_energy = torch.maximum(inside.clamp_min(0.0),
                                       template_energy_floor * tpl_energy)
        map_energy = sat_energy.flatten(1).sum(1)[pair]
        empty_below = (EMPTY_WINDOW_REL[torch.float32] * map_energy).clamp_min(eps)
        empty_below = empty_below.view(-1, 1, 1)
        scores = (dot * torch.rsqrt(tpl_energy.clamp_min(eps))
                  * torch.rsqrt(torch.maximum(win_energy, empty_below)))
        scores = torch.where(win_energy > empty_below, scores, torch.zeros_like(scores))
        return scores.clamp(-1.0, 1.0)
