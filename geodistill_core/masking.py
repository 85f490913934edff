"""GeoDistill field-of-view masks (method.md section 4) and the ablation masks.

All masks are bool tensors where True = VISIBLE. Randomness comes only from the
torch.Generator passed in (drawn on the generator's device, then moved to `device`), so
a seeded generator reproduces a mask exactly.

- Panorama (B, W): one contiguous visible band of round(fov W / 360) columns, fov drawn
  uniformly in [fov_lo, fov_hi) degrees, first visible column uniform in 0..W-1, the
  band wrapping around the panorama's seam.
- Pinhole (B, W): one blanked vertical stripe of round(frac W) columns, frac uniform in
  [frac_lo, frac_hi), placed uniformly so that it lies wholly inside the image.
- Random patches (B, H, W): the image tiled by patch_px rectangles; a uniformly random
  subset of round(frac n_patches) tiles is blanked, frac fixed or drawn per image
  uniformly in a range (the paper's ablation: 14 px patches, frac in [1/3, 1/2)).
- Max activation (B, H, W): the image regions under the feature cells of highest mean
  activation blanked (the paper's second ablation, Table 3).

A column or pixel mask reaches the BEV through the ImageSamplingGrid of the projection:
a BEV cell is visible iff its grid is valid there and the image column (pixel) nearest to
where it samples is visible, which lets masked cells drop out of the cosine normalisation.
"""
from __future__ import annotations

import torch

from geodistill_core.geometry import ImageSamplingGrid

PANORAMA_FOV_RANGE_DEG = (180.0, 240.0)
PINHOLE_STRIPE_FRAC_RANGE = (0.17, 0.25)
PATCH_PX = (14, 14)
PATCH_FRAC_RANGE = (1.0 / 3.0, 0.5)


def _draw_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device('cpu')


def _uniform(batch: int, lo: float, hi: float, generator) -> torch.Tensor:
    """(batch,) float64 uniform in [lo, hi) (lo == hi allowed: a fixed value)."""
    if not lo <= hi:
        raise ValueError(f'range must have lo <= hi, got ({lo}, {hi})')
    u = torch.rand(batch, generator=generator, device=_draw_device(generator),
                   dtype=torch.float64)
    return lo + (hi - lo) * u


def _randint(batch: int, high: torch.Tensor | int, generator) -> torch.Tensor:
    """(batch,) int64 uniform in 0..high-1 (high may be a (batch,) tensor)."""
    u = torch.rand(batch, generator=generator, device=_draw_device(generator),
                   dtype=torch.float64)
    high = torch.as_tensor(high, device=u.device)
    return torch.minimum((u * high).floor().long(), high - 1)


def panorama_band_mask(width: int, start_col: torch.Tensor,
                       visible_cols: torch.Tensor) -> torch.Tensor:
    """(B, W) bool: columns start_col .. start_col + visible_cols - 1 (mod W) visible.

    start_col, visible_cols: (B,) integers (visible_cols in 0..W).
    """
    if start_col.dim() != 1 or start_col.shape != visible_cols.shape:
        raise ValueError(f'start_col {tuple(start_col.shape)} and visible_cols '
                         f'{tuple(visible_cols.shape)} must both be (B,)')
    cols = torch.arange(width, device=start_col.device).view(1, width)
    rel = torch.remainder(cols - start_col.view(-1, 1), width)
    return rel < visible_cols.view(-1, 1)


def fov_mask_panorama(batch: int, width: int,
                      fov_range_deg: tuple[float, float] = PANORAMA_FOV_RANGE_DEG,
                      generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """Random visible FoV band per panorama: (B, W) bool, True = visible column.

    fov_range_deg: (lo, hi) in [0, 360]; the paper's default (180, 240).
    """
    lo, hi = fov_range_deg
    if not 0.0 <= lo <= hi <= 360.0:
        raise ValueError(f'fov_range_deg must satisfy 0 <= lo <= hi <= 360, got {fov_range_deg}')
    fov = _uniform(batch, lo, hi, generator)
    visible = torch.round(fov * (width / 360.0)).long().clamp(0, width)
    start = _randint(batch, width, generator)
    return panorama_band_mask(width, start, visible).to(device or start.device)


def stripe_mask_pinhole(batch: int, width: int,
                        frac_range: tuple[float, float] = PINHOLE_STRIPE_FRAC_RANGE,
                        generator: torch.Generator | None = None,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """One blanked vertical stripe per image: (B, W) bool, True = visible column.

    frac_range: (lo, hi) fraction of the width blanked; default (0.17, 0.25).
    """
    lo, hi = frac_range
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f'frac_range must satisfy 0 <= lo <= hi <= 1, got {frac_range}')
    frac = _uniform(batch, lo, hi, generator)
    blanked = torch.round(frac * width).long().clamp(0, width)
    start = _randint(batch, width - blanked + 1, generator)
    cols = torch.arange(width, device=start.device).view(1, width)
    inside = (cols >= start.view(-1, 1)) & (cols < (start + blanked).view(-1, 1))
    return (~inside).to(device or start.device)


def fov_masked_fraction(fov_range_deg: tuple[float, float] = PANORAMA_FOV_RANGE_DEG) -> float:
    """Mean blanked fraction of fov_mask_panorama (5/12 for the default range)."""
    return 1.0 - 0.5 * (fov_range_deg[0] + fov_range_deg[1]) / 360.0


def random_patch_mask(batch: int, height: int, width: int,
                      masked_frac: float | None = None,
                      patch_px: tuple[int, int] = PATCH_PX,
                      generator: torch.Generator | None = None,
                      device: torch.device | str | None = None,
                      masked_frac_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Ablation: random rectangles blanked, (B, H, W) bool, True = visible pixel.

    The image is tiled by patch_px (h, w) rectangles (the last row/column of tiles may
    be cut by the border); per image, round(frac n_tiles) tiles, chosen uniformly without
    replacement, are blanked. frac: masked_frac_range given: drawn per image uniformly in
    [lo, hi) (the paper's (1/3, 1/2) with 14 px patches); else masked_frac, which
    defaults to the FoV mask's mean blanked fraction (fov_masked_fraction()).
    """
    ph, pw = patch_px
    if ph <= 0 or pw <= 0:
        raise ValueError(f'patch_px must be positive, got {patch_px}')
    gh, gw = -(-height // ph), -(-width // pw)
    n_tiles = gh * gw
    if masked_frac_range is not None:
        lo, hi = masked_frac_range
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f'masked_frac_range must satisfy 0 <= lo <= hi <= 1, '
                             f'got {masked_frac_range}')
        frac = _uniform(batch, lo, hi, generator)
    else:
        masked_frac = fov_masked_fraction() if masked_frac is None else masked_frac
        if not 0.0 <= masked_frac <= 1.0:
            raise ValueError(f'masked_frac must be in [0, 1], got {masked_frac}')
        frac = torch.full((batch,), float(masked_frac), dtype=torch.float64,
                          device=_draw_device(generator))
    n_masked = torch.round(frac * n_tiles).long().view(batch, 1)
    scores = torch.rand(batch, n_tiles, generator=generator, device=_draw_device(generator))
    rank = scores.argsort(dim=1).argsort(dim=1)
    tiles_visible = (rank >= n_masked).view(batch, gh, gw)
    full = tiles_visible.repeat_interleave(ph, dim=1).repeat_interleave(pw, dim=2)
    return full[:, :height, :width].to(device or full.device)


def max_activation_mask(features: torch.Tensor, image_hw: tuple[int, int],
                        masked_frac: float) -> torch.Tensor:
    """Ablation: hide the most activated regions, (B, H, W) bool, True = visible pixel.

    features: (B, C, h, w) ground feature map (the teacher's, on the full image); the
    round(masked_frac h w) cells of highest channel-mean activation are hidden, and each
    image pixel takes the cell under its centre (image_hw = (H, W), any multiple of h, w
    or not). Deterministic given the features (ties broken by torch.topk).
    """
    if features.dim() != 4:
        raise ValueError(f'features must be (B, C, h, w), got {tuple(features.shape)}')
    if not 0.0 <= masked_frac <= 1.0:
        raise ValueError(f'masked_frac must be in [0, 1], got {masked_frac}')
    B, _, h, w = features.shape
    activation = features.detach().float().mean(dim=1).reshape(B, h * w)
    k = int(round(masked_frac * h * w))
    cells = torch.ones(B, h * w, dtype=torch.bool, device=features.device)
    if k > 0:
        cells.scatter_(1, torch.topk(activation, k, dim=1).indices, False)
    H, W = image_hw
    rows = torch.floor((torch.arange(H, device=features.device) + 0.5) * (h / H)).long()
    cols = torch.floor((torch.arange(W, device=features.device) + 0.5) * (w / W)).long()
    cells = cells.view(B, h, w)
    return cells[:, rows.clamp(0, h - 1)][:, :, cols.clamp(0, w - 1)]


def apply_image_mask(image: torch.Tensor, visible: torch.Tensor,
                     fill: float = 0.0) -> torch.Tensor:
    """Blank the invisible part of image (B, C, H, W) with `fill`.

    visible: (B, W) column mask or (B, H, W) pixel mask, True = keep. Apply after input
    normalisation to fill with the mean colour (fill = 0). Returns a new tensor.
    """
    if image.dim() != 4:
        raise ValueError(f'image must be (B, C, H, W), got {tuple(image.shape)}')
    B, _, H, W = image.shape
    if visible.shape == (B, W):
        keep = visible.view(B, 1, 1, W)
    elif visible.shape == (B, H, W):
        keep = visible.view(B, 1, H, W)
    else:
        raise ValueError(f'visible must be (B, W) = ({B}, {W}) or (B, H, W) = ({B}, {H}, {W}), '
                         f'got {tuple(visible.shape)}')
    keep = keep.to(device=image.device, dtype=torch.bool)
    return torch.where(keep, image, image.new_tensor(fill))


def resize_column_mask(visible_cols: torch.Tensor, width: int) -> torch.Tensor:
    """(B, W_in) -> (B, width): each new column takes the old column under its centre."""
    if visible_cols.dim() != 2:
        raise ValueError(f'visible_cols must be (B, W), got {tuple(visible_cols.shape)}')
    w_in = visible_cols.shape[1]
    centres = (torch.arange(width, device=visible_cols.device, dtype=torch.float64) + 0.5)
    src = torch.floor(centres * (w_in / width)).long().clamp(0, w_in - 1)
    return visible_cols[:, src]


def bev_visibility_from_columns(visible_cols: torch.Tensor,
                                grid: ImageSamplingGrid) -> torch.Tensor:
    """BEV cell visibility (B, h, w) bool from an image column mask (B, W_mask).

    grid: the projection (panorama_bev_grid / pinhole_bev_grid) of the unmasked image;
    its uv_px refer to grid.image_hw, the mask may have any width (pixel-centre scaling).
    A cell is visible iff grid.valid and the nearest image column to its u is visible.
    """
    B, h, w, _ = grid.uv_px.shape
    if visible_cols.dim() != 2 or visible_cols.shape[0] != B:
        raise ValueError(f'visible_cols must be (B, W) with B = {B}, '
                         f'got {tuple(visible_cols.shape)}')
    w_mask = visible_cols.shape[1]
    u = (grid.uv_px[..., 0].to(torch.float64) + 0.5) * (w_mask / grid.image_hw[1])
    col = torch.floor(u).long()  # nearest column under the pixel-centre convention
    col = torch.remainder(col, w_mask) if grid.wrap_columns else col.clamp(0, w_mask - 1)
    vis = visible_cols.to(device=col.device, dtype=torch.bool)
    seen = torch.gather(vis, 1, col.reshape(B, h * w)).reshape(B, h, w)
    return seen & grid.valid.to(torch.bool)


def bev_visibility_from_pixels(visible_px: torch.Tensor,
                               grid: ImageSamplingGrid) -> torch.Tensor:
    """BEV cell visibility (B, h, w) bool from an image pixel mask (B, H_mask, W_mask).

    As bev_visibility_from_columns, with the nearest pixel (row and column, pixel-centre
    scaling from grid.image_hw to the mask size) to where each cell samples.
    """
    B, h, w, _ = grid.uv_px.shape
    if visible_px.dim() != 3 or visible_px.shape[0] != B:
        raise ValueError(f'visible_px must be (B, H, W) with B = {B}, '
                         f'got {tuple(visible_px.shape)}')
    h_mask, w_mask = visible_px.shape[1:]
    uv = grid.uv_px.to(torch.float64)
    col = torch.floor((uv[..., 0] + 0.5) * (w_mask / grid.image_hw[1])).long()
    row = torch.floor((uv[..., 1] + 0.5) * (h_mask / grid.image_hw[0])).long()
    col = torch.remainder(col, w_mask) if grid.wrap_columns else col.clamp(0, w_mask - 1)
    row = row.clamp(0, h_mask - 1)
    vis = visible_px.to(device=col.device, dtype=torch.bool).reshape(B, h_mask * w_mask)
    seen = torch.gather(vis, 1, (row * w_mask + col).reshape(B, h * w)).reshape(B, h, w)
    return seen & grid.valid.to(torch.bool)


def bev_visibility(visible: torch.Tensor, grid: ImageSamplingGrid) -> torch.Tensor:
    """BEV cell visibility (B, h, w) from a (B, W) column or (B, H, W) pixel mask."""
    if visible.dim() == 3:
        return bev_visibility_from_pixels(visible, grid)
    return bev_visibility_from_columns(visible, grid)
