"""Masked cosine correlation of a BEV template slid over a satellite feature map.

For a template T (C, r, c) with valid cells V (r, c) and a satellite map S (C, h, w), the
score at position p is the cosine between T and the window of S under it, both restricted
to the template's valid cells (masked cosine normalisation):

    score[p] = sum_{q in V} <T_q, S_{p+q}> / (sqrt(sum_{q in V} |T_q|^2)
                                              * sqrt(sum_{q in V} |S_{p+q}|^2))

so cells hidden by a ground-visibility mask change neither the numerator nor either norm.
Two cross-correlations give everything: the numerator (S with T) and the window energy
(the channel-summed squared satellite with the valid mask); never a Python loop.
Backends (`method`): 'conv' (conv2d / grouped conv2d) and 'fft' (zero-padded rfft2
products, O(C h w log(h w)) whatever the template size; window energies in float64);
'auto' picks 'fft' for templates of more than AUTO_FFT_MIN_CELLS cells when every satellite
meets every template (one plain conv2d), and of more than AUTO_FFT_MIN_CELLS_PAIRED cells
in paired mode, whose grouped conv2d is slow on the CPU, above all backward (measured on one
core, forward + backward: B = 8, C = 40, 9 x 9 templates on 24 x 24 maps: paired 55 ms by
conv, 12 ms by FFT; all pairs 18 ms by conv, 23 ms by FFT; C = 16: two 25 x 25 templates on
64 x 64 maps 58 ms by conv, 7 ms by FFT; one 103 x 103 template on a 256 x 256 map 39 s by
conv, two by FFT 0.7 s). The FFT is padded only as far as no window wraps around: h + (r -
1) / 2 rows for 'same', h for 'valid' (then rounded up to a 2-3-5-smooth length).

Positions (`positions`):
- 'same': the satellite is zero-padded by (r - 1) / 2, (c - 1) / 2, so the heatmap is
  h x w and every satellite feature cell is a candidate; heatmap cell (i, j) puts the
  camera (the template centre) on satellite feature cell (i, j). Padding cells count
  as zero features (they add nothing to the numerator or the window norm). The
  template's norm is, by default, that of all its valid cells, so a window partly on the
  padding scores at most sqrt(template energy inside the map / all of it): positions
  whose template reaches out of the map are penalised. For a pinhole template (content
  ahead of the camera only) that penalty favours positions behind the truth whenever the
  view ahead reaches the map's edge. `template_energy_floor` f < 1 normalises by the
  template energy inside the map instead, floored at f times all of it:
      ||T|| -> sqrt(max(E_in(p), f * E_all)),  E_in(p) = sum_{q in V, p+q in map} |T_q|^2
  (f = 1: the full norm; f = 0: the cosine over the overlap alone, noisy where only a
  few cells overlap; f = 0.5: no penalty while at least half the energy is inside).
- 'valid': only windows wholly inside the satellite, (h - r + 1) x (w - c + 1); heatmap
  cell (i, j) puts the camera on satellite feature cell (i + (r - 1) / 2, j + (c - 1) / 2).
Both keep the heatmap frame of geometry.raster: cell (i, j) of an H x W heatmap is the
camera at ((j - (W - 1) / 2) cell_m east, -(i - (H - 1) / 2) cell_m north) of the
satellite crop centre. Templates must have odd sides so the centre is a cell.

Empty windows: a window whose energy is below EMPTY_WINDOW_REL (1e-6 in float32, 1e-12
in float64) times the energy of its whole satellite map (in practice: all zero, such as
padding) scores 0, as does an all-zero template; so both backends agree and FFT
round-off (about 1e-6 sqrt(map energy / window energy) in float32) never becomes a score.

Precision: runs in float32 (float64 if given) with autocast disabled, as the energies
overflow float16. On CUDA, cuDNN's default TF32 convolutions limit the 'conv' scores to
about 1e-3; set torch.backends.cudnn.allow_tf32 = False for full float32 precision.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

POSITIONS = ('same', 'valid')
METHODS = ('auto', 'conv', 'fft')
AUTO_FFT_MIN_CELLS = 100
AUTO_FFT_MIN_CELLS_PAIRED = 9
EMPTY_WINDOW_REL = {torch.float32: 1e-6, torch.float64: 1e-12}
DEFAULT_ENERGY_EPS = 1e-30


def _check_inputs(satellite: torch.Tensor, template: torch.Tensor, valid: torch.Tensor,
                  positions: str, all_pairs: bool, method: str) -> None:
    if positions not in POSITIONS:
        raise ValueError(f'positions must be one of {POSITIONS}, got {positions!r}')
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    if satellite.dim() != 4 or template.dim() != 4:
        raise ValueError(f'satellite must be (Bs, C, h, w) and template (Bg, C, r, c), got '
                         f'{tuple(satellite.shape)} and {tuple(template.shape)}')
    Bs, C, h, w = satellite.shape
    Bg, Ct, r, c = template.shape
    if Ct != C:
        raise ValueError(f'channel mismatch: satellite {tuple(satellite.shape)}, '
                         f'template {tuple(template.shape)}')
    if valid.shape != (Bg, r, c):
        raise ValueError(f'valid must be (Bg, r, c) = {(Bg, r, c)}, got {tuple(valid.shape)}')
    if not all_pairs and Bs != Bg:
        raise ValueError(f'paired mode needs as many satellites as templates, got '
                         f'satellite {tuple(satellite.shape)}, template {tuple(template.shape)}'
                         '; use all_pairs=True for every (satellite, ground) pair')
    if r % 2 == 0 or c % 2 == 0:
        raise ValueError(f'template sides must be odd (centre on a cell), got {(r, c)}')
    if positions == 'valid' and (r > h or c > w):
        raise ValueError(f"positions='valid' needs a template {(r, c)} no larger than the "
                         f'satellite map {(h, w)}')


def _correlate_conv(x: torch.Tensor, k: torch.Tensor, positions: str, all_pairs: bool,
                    compute_dtype: torch.dtype) -> torch.Tensor:
    """x (Bs, C, h, w) cross-correlated with k (Bg, C, r, c) -> (Bs, Bg, H, W) or (B, H, W).

    compute_dtype: ignored (conv2d runs in the inputs' dtype).
    """
    Bs, C, h, w = x.shape
    _, _, r, c = k.shape
    padding = ((r - 1) // 2, (c - 1) // 2) if positions == 'same' else (0, 0)
    if all_pairs:
        return F.conv2d(x, k, padding=padding)
    return F.conv2d(x.reshape(1, Bs * C, h, w), k, padding=padding, groups=Bs)[0]


def _fast_length(n: int) -> int:
    """Smallest 2-3-5-smooth integer >= n (fast FFT sizes)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _all_pairs_product(x_f: torch.Tensor, k_f: torch.Tensor) -> torch.Tensor:
    """(M, C, X, Y) and (N, C, X, Y) spectra -> (M, N, X, Y) channel sums of products.

    One satellite against many templates (the rotation search) is a broadcast product: the
    einsum's batched complex matrix product over X * Y frequencies of 1 x C by C x N is
    several times slower on CPUs (16 vs 2.4 ms for 21 templates of 24 x 72 x 37 spectra);
    square batches (training's all pairs) keep the einsum."""
    if x_f.shape[0] == 1:
        return (x_f * k_f).sum(1).unsqueeze(0)
    if k_f.shape[0] == 1:
        return (x_f * k_f).sum(1).unsqueeze(1)
    return torch.einsum('mcxy,ncxy->mnxy', x_f, k_f)


def _correlate_fft(x: torch.Tensor, k: torch.Tensor, positions: str, all_pairs: bool,
                   compute_dtype: torch.dtype) -> torch.Tensor:
    """As _correlate_conv, by real FFTs in compute_dtype, padded so nothing wraps around.

    The correlation is computed as the convolution with the flipped template (no complex
    conjugate: products with conjugated spectra are several times slower on CPUs, and a
    physical conjugate costs a copy): conv[i] = corr[i - (r - 1)], so the window at
    offset i ('same': centred on i) is conv[i + r - 1] (conv[i + (r - 1) / 2])."""
    _, _, h, w = x.shape
    _, _, r, c = k.shape
    # Linear convolution rows 0 .. h + r - 2; a circular one of length n wraps rows >= n to
    # row - n. 'same' reads rows (r - 1) / 2 .. h - 1 + (r - 1) / 2, 'valid' rows r - 1 ..
    # h - 1: both clear of the wrapped rows 0 .. h + r - 2 - n when n >= h + (r - 1) / 2
    # ('same') or n >= h ('valid'). The template itself needs n >= r.
    if positions == 'same':
        size = (_fast_length(max(h + (r - 1) // 2, r)), _fast_length(max(w + (c - 1) // 2, c)))
        rows, cols = slice((r - 1) // 2, (r - 1) // 2 + h), slice((c - 1) // 2, (c - 1) // 2 + w)
    else:
        size = (_fast_length(max(h, r)), _fast_length(max(w, c)))
        rows, cols = slice(r - 1, h), slice(c - 1, w)
    x_f = torch.fft.rfft2(x.to(compute_dtype), s=size)
    k_f = torch.fft.rfft2(k.to(compute_dtype).flip(-2, -1), s=size)
    product = _all_pairs_product(x_f, k_f) if all_pairs else (x_f * k_f).sum(1)
    conv = torch.fft.irfft2(product, s=size)
    return conv[..., rows, cols].to(x.dtype)


def masked_cosine_correlation(satellite: torch.Tensor, template: torch.Tensor,
                              valid: torch.Tensor, positions: str = 'same',
                              all_pairs: bool = False, method: str = 'auto',
                              eps: float = DEFAULT_ENERGY_EPS,
                              window_weight: torch.Tensor | None = None,
                              template_energy_floor: float = 1.0) -> torch.Tensor:
    """Cosine similarity of each template against each satellite window.

    satellite: (Bs, C, h, w) satellite feature map.
    template: (Bg, C, r, c) BEV template (confidence-weighted), r and c odd.
    valid: (Bg, r, c) bool template cells; the others are ignored on both sides.
    positions: 'same' (h x w heatmap) or 'valid' ((h - r + 1) x (w - c + 1)); see module doc.
    all_pairs: False pairs satellite b with template b (Bs == Bg) -> (B, H, W);
        True scores every satellite m against every template n -> (Bs, Bg, H, W).
    method: 'auto', 'conv' or 'fft' (same result to round-off; see module doc).
    eps: absolute floor on the energies; all-zero templates and empty windows score 0.
    window_weight: optional (Bg, r, c) per-cell weight of the satellite window (G2SWeakly:
        the template's confidence c, so that the score is cos(sat * c, g * c) when the
        template is g * c); None weights every valid cell 1 (cos(sat, template)).
    template_energy_floor: f in [0, 1]: the template norm counts only its cells inside the
        satellite map, floored at f times its whole energy (see module doc); 1 = the whole
        template's norm at every position (no extra correlation is computed).
    Returns scores in [-1, 1], float32 (float64 for float64 inputs).
    """
    _check_inputs(satellite, template, valid, positions, all_pairs, method)
    if not 0.0 <= template_energy_floor <= 1.0:
        raise ValueError(f'template_energy_floor must be in [0, 1], got {template_energy_floor}')
    if window_weight is not None and window_weight.shape != valid.shape:
        raise ValueError(f'window_weight must be (Bg, r, c) = {tuple(valid.shape)}, '
                         f'got {tuple(window_weight.shape)}')
    dtype = torch.float64 if torch.float64 in (satellite.dtype, template.dtype) else torch.float32
    r, c = template.shape[-2:]
    if method == 'auto':
        limit = AUTO_FFT_MIN_CELLS if all_pairs else AUTO_FFT_MIN_CELLS_PAIRED
        method = 'fft' if r * c > limit else 'conv'
    correlate = _correlate_fft if method == 'fft' else _correlate_conv
    with torch.autocast(satellite.device.type, enabled=False):
        sat = satellite.to(dtype)
        mask = valid.to(device=sat.device, dtype=dtype).unsqueeze(1)  # (Bg, 1, r, c)
        tpl = template.to(dtype) * mask
        sat_energy = (sat * sat).sum(dim=1, keepdim=True)  # (Bs, 1, h, w)
        tpl_energy = (tpl * tpl).flatten(1).sum(dim=1)  # (Bg,)
        if window_weight is None:
            dot = correlate(sat, tpl, positions, all_pairs, dtype)
            win_energy = correlate(sat_energy, mask, positions, all_pairs, torch.float64)
        else:
            weight = window_weight.to(device=sat.device, dtype=dtype).unsqueeze(1) * mask
            dot = correlate(sat, tpl * weight, positions, all_pairs, dtype)
            win_energy = correlate(sat_energy, weight * weight, positions, all_pairs,
                                   torch.float64)
        inside_energy = None
        if template_energy_floor < 1.0 and positions == 'same':
            # template energy over the cells that land on the map, per position
            cell_energy = (tpl * tpl).sum(dim=1, keepdim=True)  # (Bg, 1, r, c)
            on_map = torch.ones((1 if all_pairs else sat.shape[0], 1) + sat.shape[-2:],
                                dtype=dtype, device=sat.device)
            inside_energy = correlate(on_map, cell_energy, positions, all_pairs,
                                      torch.float64)  # (1, Bg, H, W) | (B, H, W)
        map_energy = sat_energy.detach().flatten(1).sum(1)
        empty_below = (EMPTY_WINDOW_REL[dtype] * map_energy).clamp_min(eps)
        if all_pairs:  # (Bs, Bg, H, W)
            tpl_energy = tpl_energy.view(1, -1, 1, 1)
            empty_below = empty_below.view(-1, 1, 1, 1)
        else:  # (B, H, W)
            tpl_energy = tpl_energy.view(-1, 1, 1)
            empty_below = empty_below.view(-1, 1, 1)
        if inside_energy is not None:
            tpl_energy = torch.maximum(inside_energy.to(dtype).clamp_min(0.0),
                                       template_energy_floor * tpl_energy)
        scores = (dot * torch.rsqrt(tpl_energy.clamp_min(eps))
                  * torch.rsqrt(torch.maximum(win_energy, empty_below)))
        scores = torch.where(win_energy > empty_below, scores, torch.zeros_like(scores))
    return scores.clamp(-1.0, 1.0)
