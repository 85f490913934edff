"""FoV masks: exact visible fractions, contiguity with wrap-around, ranges, seeding, BEV."""
import math

import pytest
import torch

from geodistill_core.geometry import (
    BevGrid,
    ImageSamplingGrid,
    panorama_bev_grid,
    pinhole_bev_grid,
)
from geodistill_core.masking import (
    apply_image_mask,
    bev_visibility,
    bev_visibility_from_columns,
    bev_visibility_from_pixels,
    fov_mask_panorama,
    fov_masked_fraction,
    max_activation_mask,
    panorama_band_mask,
    random_patch_mask,
    resize_column_mask,
    stripe_mask_pinhole,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def n_runs(mask_row: torch.Tensor, circular: bool) -> int:
    """Number of contiguous runs of True (on a circle if circular)."""
    m = mask_row.to(torch.int8)
    prev = torch.roll(m, 1) if circular else torch.cat([m.new_zeros(1), m[:-1]])
    starts = int(((m == 1) & (prev == 0)).sum())
    if circular and bool(m.all()):
        return 1
    return starts


@pytest.mark.parametrize('fov_deg, width', [(180.0, 512), (200.0, 640), (237.3, 100)])
def test_fixed_fov_gives_exact_column_count(fov_deg, width):
    mask = fov_mask_panorama(64, width, (fov_deg, fov_deg), gen(1))
    assert mask.shape == (64, width) and mask.dtype == torch.bool
    expected = fov_deg / 360.0 * width
    assert torch.all((mask.sum(dim=1) - expected).abs() <= 1)


def test_band_is_contiguous_with_wrap_around_and_positions_are_spread():
    width = 96
    mask = fov_mask_panorama(400, width, (180.0, 240.0), gen(2))
    assert all(n_runs(row, circular=True) == 1 for row in mask)
    # the invisible part is one contiguous run too
    assert all(n_runs(~row, circular=True) == 1 for row in mask)
    # some bands cross the seam (visible at both column 0 and column W-1, not at the middle)
    wraps = mask[:, 0] & mask[:, -1]
    assert wraps.any()
    # every column is invisible for some draw (uniform position)
    assert (~mask).any(dim=0).all()


def test_fov_range_respected_over_many_draws():
    width = 360  # one column per degree
    lo, hi = 180.0, 240.0
    counts = fov_mask_panorama(2000, width, (lo, hi), gen(3)).sum(dim=1).float()
    assert counts.min() >= lo - 1 and counts.max() <= hi + 1
    assert counts.min() < lo + 5 and counts.max() > hi - 5  # the whole range is used
    assert abs(counts.mean().item() - (lo + hi) / 2) < 3.0  # uniform: mean at the middle
    assert fov_masked_fraction((lo, hi)) == pytest.approx(1 - 210 / 360)


def test_seeded_generator_is_deterministic():
    a = fov_mask_panorama(8, 128, generator=gen(7))
    b = fov_mask_panorama(8, 128, generator=gen(7))
    c = fov_mask_panorama(8, 128, generator=gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(stripe_mask_pinhole(8, 128, generator=gen(7)),
                       stripe_mask_pinhole(8, 128, generator=gen(7)))
    assert torch.equal(random_patch_mask(2, 64, 64, generator=gen(7)),
                       random_patch_mask(2, 64, 64, generator=gen(7)))


def test_band_mask_by_hand():
    m = panorama_band_mask(8, torch.tensor([6, 1]), torch.tensor([4, 3]))
    assert m.int().tolist() == [[1, 1, 0, 0, 0, 0, 1, 1], [0, 1, 1, 1, 0, 0, 0, 0]]


def test_pinhole_stripe_one_blank_run_inside_the_image():
    width = 200
    mask = stripe_mask_pinhole(500, width, (0.17, 0.25), gen(4))
    blanked = (~mask).sum(dim=1).float()
    assert blanked.min() >= 0.17 * width - 1 and blanked.max() <= 0.25 * width + 1
    assert all(n_runs(~row, circular=False) == 1 for row in mask)
    assert mask[:, 0].any() and (~mask[:, 0]).any()  # stripes can touch the left edge...
    assert (~mask[:, -1]).any()  # ...and the right edge


def test_random_patch_mask_fraction_and_shape():
    mask = random_patch_mask(200, 64, 96, masked_frac=0.4, patch_px=(16, 16), generator=gen(5))
    assert mask.shape == (200, 64, 96)
    n_tiles = 4 * 6
    frac = (~mask).float().mean(dim=(1, 2))
    assert torch.allclose(frac, torch.full_like(frac, round(0.4 * n_tiles) / n_tiles))
    # masked pixels come in whole 16x16 tiles
    tiles = (~mask).view(200, 4, 16, 6, 16)
    assert torch.all(tiles.all(dim=(2, 4)) | (~tiles).all(dim=(2, 4)))
    # default fraction equals the FoV mask's mean blanked share
    default = random_patch_mask(400, 64, 64, patch_px=(8, 8), generator=gen(6))
    assert (~default).float().mean().item() == pytest.approx(fov_masked_fraction(), abs=0.01)


def test_apply_image_mask_columns_and_pixels():
    image = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5) + 1
    cols = torch.tensor([[True, False, True, True, False], [False] * 5])
    out = apply_image_mask(image, cols, fill=-1.0)
    assert torch.all(out[0, :, :, 1] == -1) and torch.all(out[0, :, :, 4] == -1)
    assert torch.equal(out[0, :, :, 0], image[0, :, :, 0]) and torch.all(out[1] == -1)
    pix = torch.zeros(2, 4, 5, dtype=torch.bool)
    pix[:, 1, 2] = True
    out = apply_image_mask(image, pix)
    assert out.count_nonzero() == 2 * 3
    with pytest.raises(ValueError, match=r'\(2, 4\)'):
        apply_image_mask(image, torch.ones(2, 4, dtype=torch.bool))


def test_resize_column_mask():
    m = torch.tensor([[True, True, False, False, True, True, True, True]])
    assert resize_column_mask(m, 4).int().tolist() == [[1, 0, 1, 1]]
    assert resize_column_mask(m, 16).int().tolist() == [[1] * 4 + [0] * 4 + [1] * 8]


def test_bev_mask_north_facing_panorama_front_half_visible():
    H, W = 64, 128
    grid = BevGrid(rows=21, cols=21, cell_m=1.0)
    g = panorama_bev_grid(grid, torch.tensor([math.pi / 2]), 2.0, (H, W))  # facing north
    # front 180 deg: relative azimuth in (-90, 90) deg = columns W/4 .. 3W/4 - 1
    visible = torch.zeros(1, W, dtype=torch.bool)
    visible[0, W // 4: 3 * W // 4] = True
    cells = bev_visibility_from_columns(visible, g)[0]
    centre = 10
    assert cells[:centre - 1].all()  # every cell north of the camera is visible
    assert not cells[centre + 2:].any()  # every cell south of it is masked
    assert cells[2, centre] and not cells[18, centre]
    # counter-example pin: facing south flips it
    g_s = panorama_bev_grid(grid, torch.tensor([-math.pi / 2]), 2.0, (H, W))
    cells_s = bev_visibility_from_columns(visible, g_s)[0]
    assert not cells_s[2, centre] and cells_s[18, centre]
    # a lower-resolution mask (feature map width) gives the same answer
    coarse = resize_column_mask(visible, W // 8)
    assert torch.equal(bev_visibility_from_columns(coarse, g)[0, :centre - 1],
                       cells[:centre - 1])


def test_bev_mask_wraps_for_panoramas_and_respects_grid_validity():
    H, W = 32, 64
    grid = BevGrid(rows=15, cols=15, cell_m=1.0)
    g = panorama_bev_grid(grid, torch.tensor([math.pi / 2]), 2.0, (H, W))
    back = torch.zeros(1, W, dtype=torch.bool)
    back[0, :4] = True   # the seam (straight behind) is visible on both sides
    back[0, -4:] = True
    cells = bev_visibility_from_columns(back, g)[0]
    assert cells[13, 7] and not cells[1, 7]  # south (behind) visible, north not
    # pinhole: cells outside the view are never visible
    K = torch.tensor([[32.0, 0.0, 31.5], [0.0, 32.0, 15.5], [0.0, 0.0, 1.0]])
    gp = pinhole_bev_grid(grid, torch.tensor([math.pi / 2]), 1.65, K, (H, W))
    all_cols = torch.ones(1, W, dtype=torch.bool)
    assert torch.equal(bev_visibility_from_columns(all_cols, gp), gp.valid)
    left_half = torch.zeros(1, W, dtype=torch.bool)
    left_half[0, : W // 2] = True  # image left = west for a north-facing camera
    cells = bev_visibility_from_columns(left_half, gp)[0]
    assert cells[:, :7].any() and not cells[:, 8:].any()


@pytest.mark.parametrize('wrap', [True, False])
def test_bev_mask_takes_the_nearest_column_by_hand(wrap):
    """Cells sampling u = 2.4, 2.6, -0.4, 7.45 of an 8-column image (pixel centres at ints)."""
    u = torch.tensor([[[2.4, 2.6, -0.4, 7.45]]])
    uv = torch.stack([u, torch.zeros_like(u)], dim=-1)
    valid = torch.tensor([[[True, True, True, False]]])
    g = ImageSamplingGrid(uv, valid, (4, 8), wrap)
    only2 = torch.zeros(1, 8, dtype=torch.bool)
    only2[0, 2] = True
    assert bev_visibility_from_columns(only2, g)[0, 0].tolist() == [True, False, False, False]
    only0 = torch.zeros(1, 8, dtype=torch.bool)
    only0[0, 0] = True
    assert bev_visibility_from_columns(only0, g)[0, 0].tolist() == [False, False, True, False]
    # a 4-column (feature-map) mask: image columns 2k and 2k + 1 fall in mask column k
    m4 = torch.tensor([[False, True, False, False]])
    assert bev_visibility_from_columns(m4, g)[0, 0].tolist() == [True, True, False, False]


def test_random_patch_share_drawn_per_image_in_the_paper_range():
    """14 px tiles on a 70 x 140 image: 5 x 10 = 50 tiles; the paper draws the blanked
    share per image in [1/3, 1/2), so 17..25 whole tiles are blanked, and not always the
    same count."""
    mask = random_patch_mask(300, 70, 140, patch_px=(14, 14), generator=gen(2),
                             masked_frac_range=(1 / 3, 1 / 2))
    tiles = (~mask).view(300, 5, 14, 10, 14)
    whole = tiles.all(dim=(2, 4))
    assert torch.all(whole | (~tiles).all(dim=(2, 4)))  # whole 14 px tiles only
    counts = whole.sum(dim=(1, 2))
    assert counts.min().item() >= 17 and counts.max().item() <= 25
    assert len(set(counts.tolist())) >= 6  # drawn, not fixed
    assert counts.float().mean().item() == pytest.approx(0.5 * (50 / 3 + 25), abs=0.6)
    with pytest.raises(ValueError, match='masked_frac_range'):
        random_patch_mask(1, 14, 14, masked_frac_range=(0.6, 0.5))


def test_bev_visibility_from_pixels_takes_the_nearest_pixel_by_hand():
    """Cells sampling (u, v) = (2.4, 1.6), (2.4, 0.4), (-0.6, 1.0) of a 4 x 8 image."""
    uv = torch.tensor([[[[2.4, 1.6], [2.4, 0.4], [-0.6, 1.0]]]])
    valid = torch.tensor([[[True, True, True]]])
    hidden_21 = torch.ones(1, 4, 8, dtype=torch.bool)
    hidden_21[0, 2, 2] = False  # row 2, column 2
    for wrap, third in ((True, True), (False, True)):
        g = ImageSamplingGrid(uv, valid, (4, 8), wrap)
        assert bev_visibility_from_pixels(hidden_21, g)[0, 0].tolist() == [False, True, third]
    hidden_last = torch.ones(1, 4, 8, dtype=torch.bool)
    hidden_last[0, 1, 7] = False  # u = -0.6 wraps to column 7 only on a panorama
    wrapped = ImageSamplingGrid(uv, valid, (4, 8), True)
    clamped = ImageSamplingGrid(uv, valid, (4, 8), False)
    assert bev_visibility_from_pixels(hidden_last, wrapped)[0, 0].tolist() == [True, True, False]
    assert bev_visibility_from_pixels(hidden_last, clamped)[0, 0].tolist() == [True, True, True]
    # a 2 x 4 (feature-map) mask: image pixel (r, c) falls in mask cell (r // 2, c // 2)
    coarse = torch.ones(1, 2, 4, dtype=torch.bool)
    coarse[0, 0, 1] = False
    assert bev_visibility_from_pixels(coarse, clamped)[0, 0].tolist() == [True, False, True]
    # a pixel mask hiding whole columns agrees with the column mask
    cols = torch.tensor([[True, True, False, True, True, True, True, True]])
    assert torch.equal(bev_visibility(cols[:, None, :].expand(1, 4, 8), wrapped),
                       bev_visibility_from_columns(cols, wrapped))


def test_max_activation_mask_hides_the_top_cells_by_hand():
    features = torch.zeros(2, 3, 2, 4)
    features[0, :, 0, 1] = 5.0   # image 0: cells (0, 1) and (1, 3) most active
    features[0, :, 1, 3] = 4.0
    features[0, 0, 1, 0] = 3.0   # channel mean 1.0: third
    features[1, :, 1, 0] = -1.0  # image 1: all 0 but one negative cell
    mask = max_activation_mask(features, (4, 8), masked_frac=2 / 8)
    assert mask.shape == (2, 4, 8)
    expected0 = torch.ones(4, 8, dtype=torch.bool)
    expected0[0:2, 2:4] = False  # cell (0, 1) -> rows 0-1, cols 2-3
    expected0[2:4, 6:8] = False  # cell (1, 3) -> rows 2-3, cols 6-7
    assert torch.equal(mask[0], expected0)
    assert (~mask[1]).sum().item() == 2 * 4 and mask[1, 2:4, 0:2].all()  # never the lowest
    assert torch.equal(max_activation_mask(features, (4, 8), 0.0), torch.ones(2, 4, 8).bool())
