"""Masked cosine correlation: plain sliding-window reference, masks, pairs, errors, devices."""
import pytest
import torch
import torch.nn.functional as F

from geodistill_core.models.correlation import masked_cosine_correlation


def reference_scores(sat: torch.Tensor, tpl: torch.Tensor, valid: torch.Tensor,
                     positions: str) -> torch.Tensor:
    """Plain loops: sat (C, h, w), tpl (C, r, c), valid (r, c) -> (H, W) in float64."""
    sat, tpl = sat.double(), tpl.double()
    C, h, w = sat.shape
    _, r, c = tpl.shape
    if positions == 'same':
        pr, pc = (r - 1) // 2, (c - 1) // 2
        sat = F.pad(sat, (pc, pc, pr, pr))
        H, W = h, w
    else:
        H, W = h - r + 1, w - c + 1
    out = torch.zeros(H, W, dtype=torch.float64)
    t = tpl[:, valid]  # (C, n_valid)
    for i in range(H):
        for j in range(W):
            s = sat[:, i:i + r, j:j + c][:, valid]
            t_norm, s_norm = float(t.norm()), float(s.norm())
            out[i, j] = float((t * s).sum()) / (t_norm * s_norm) if t_norm and s_norm else 0.0
    return out


def random_case(bs=2, bg=2, C=3, h=9, w=11, r=5, c=3, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    sat = torch.randn(bs, C, h, w, generator=g, dtype=torch.float64).to(dtype)
    tpl = torch.randn(bg, C, r, c, generator=g, dtype=torch.float64).to(dtype)
    valid = torch.rand(bg, r, c, generator=g) > 0.3
    valid[:, (r - 1) // 2, (c - 1) // 2] = True
    return sat, tpl, valid


@pytest.mark.parametrize('method', ['conv', 'fft'])
@pytest.mark.parametrize('positions', ['same', 'valid'])
@pytest.mark.parametrize('dtype, atol', [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_paired_agrees_with_sliding_window_reference(method, positions, dtype, atol):
    sat, tpl, valid = random_case(dtype=dtype)
    scores = masked_cosine_correlation(sat, tpl, valid, positions, method=method)
    expected_hw = (9, 11) if positions == 'same' else (9 - 5 + 1, 11 - 3 + 1)
    assert scores.shape == (2, *expected_hw)
    assert scores.dtype == dtype
    for b in range(2):
        ref = reference_scores(sat[b], tpl[b], valid[b], positions)
        torch.testing.assert_close(scores[b].double(), ref, atol=atol, rtol=0)


@pytest.mark.parametrize('method', ['conv', 'fft'])
@pytest.mark.parametrize('positions', ['same', 'valid'])
def test_all_pairs_agrees_with_reference_and_its_diagonal_is_the_paired_mode(method,
                                                                            positions):
    sat, tpl, valid = random_case(bs=3, bg=3, seed=1)
    pairs = masked_cosine_correlation(sat, tpl, valid, positions, all_pairs=True,
                                      method=method)
    H, W = pairs.shape[-2:]
    assert pairs.shape == (3, 3, H, W)
    for m in range(3):
        for n in range(3):
            ref = reference_scores(sat[m], tpl[n], valid[n], positions)
            torch.testing.assert_close(pairs[m, n].double(), ref, atol=1e-4, rtol=0)
    paired = masked_cosine_correlation(sat, tpl, valid, positions, method=method)
    torch.testing.assert_close(torch.diagonal(pairs, dim1=0, dim2=1).permute(2, 0, 1), paired,
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize('bs, bg', [(1, 4), (4, 1), (1, 1)])
@pytest.mark.parametrize('positions', ['same', 'valid'])
def test_all_pairs_with_one_side_single_agrees_with_the_reference(bs, bg, positions):
    """One satellite against many templates (the rotation search) and the reverse take the
    broadcast product instead of the einsum; both agree with the plain loops."""
    sat, tpl, valid = random_case(bs=bs, bg=bg, seed=3)
    pairs = masked_cosine_correlation(sat, tpl, valid, positions, all_pairs=True,
                                      method='fft')
    assert pairs.shape[:2] == (bs, bg)
    for m in range(bs):
        for n in range(bg):
            ref = reference_scores(sat[m], tpl[n], valid[n], positions)
            torch.testing.assert_close(pairs[m, n].double(), ref, atol=1e-4, rtol=0)


def test_all_pairs_allows_different_batch_sizes():
    sat, tpl, valid = random_case(bs=2, bg=3, seed=2)
    assert masked_cosine_correlation(sat, tpl, valid, all_pairs=True).shape == (2, 3, 9, 11)


@pytest.mark.parametrize('positions', ['same', 'valid'])
def test_fft_and_conv_agree_on_large_templates_and_empty_windows(positions):
    """'auto' takes the FFT path here; an all-zero satellite region scores 0 in both."""
    sat, tpl, valid = random_case(bs=2, bg=3, C=5, h=40, w=36, r=15, c=13, seed=8)
    sat[0, :, :20] = 0.0  # windows wholly inside score 0, not FFT round-off
    sat[1] *= 1e3  # scale does not matter
    conv = masked_cosine_correlation(sat, tpl, valid, positions, True, method='conv')
    fft = masked_cosine_correlation(sat, tpl, valid, positions, True, method='fft')
    auto = masked_cosine_correlation(sat, tpl, valid, positions, True)
    torch.testing.assert_close(fft, conv, atol=1e-5, rtol=0)
    assert torch.equal(auto, fft)
    empty = conv[0, :, :2] if positions == 'same' else conv[0, :, :1]
    assert empty.abs().max() == 0 and (fft[0, :, :empty.shape[1]] == 0).all()
    for m, n in [(0, 1), (1, 2)]:
        ref = reference_scores(sat[m], tpl[n], valid[n], positions)
        torch.testing.assert_close(fft[m, n].double(), ref, atol=1e-4, rtol=0)


def test_self_match_scores_one_and_is_the_unique_maximum():
    """A satellite window equal to the template (on its valid cells) scores exactly 1."""
    sat, tpl, valid = random_case(bs=1, bg=1, h=12, w=12, r=5, c=5, seed=3)
    i0, j0 = 7, 4  # camera cell; the template spans rows 5..9, cols 2..6
    window = sat[0, :, i0 - 2:i0 + 3, j0 - 2:j0 + 3]
    window[:, valid[0]] = 0.5 * tpl[0][:, valid[0]]  # positive scale: cosine stays 1
    scores = masked_cosine_correlation(sat, tpl, valid)[0]
    assert scores[i0, j0].item() == pytest.approx(1.0, abs=1e-6)
    assert torch.nonzero(scores == scores.max()).tolist() == [[i0, j0]]
    assert scores.abs().max() <= 1.0


def test_invalid_cells_drop_out_of_both_normalisations():
    """Changing the template or the satellite under invalid cells changes nothing."""
    sat, tpl, valid = random_case(bs=1, bg=1, h=8, w=8, r=3, c=3, seed=4)
    valid[0] = torch.tensor([[True, False, True], [True, True, False], [False, True, True]])
    base = masked_cosine_correlation(sat, tpl, valid)
    tpl2 = tpl.clone()
    tpl2[:, :, ~valid[0]] = 100.0
    torch.testing.assert_close(masked_cosine_correlation(sat, tpl2, valid), base)
    # satellite cell (4, 4) lies under template cell (0, 1) (invalid) for camera (5, 4)
    sat2 = sat.clone()
    sat2[0, :, 4, 4] = 100.0
    changed = masked_cosine_correlation(sat2, tpl, valid)
    assert changed[0, 5, 4] == pytest.approx(base[0, 5, 4].item(), abs=1e-6)
    # counter-example: the same cell is valid for camera (5, 5) (template cell (0, 0))
    assert abs(changed[0, 5, 5] - base[0, 5, 5]) > 1e-3


def test_zero_template_or_window_scores_zero_with_finite_gradients():
    sat, tpl, valid = random_case(bs=1, bg=1, h=6, w=6, r=3, c=3, seed=5)
    sat[:, :, :, :3] = 0.0
    sat.requires_grad_(True)
    tpl = tpl.detach().requires_grad_(True)
    scores = masked_cosine_correlation(sat, tpl, valid, 'valid')
    assert scores[0, :, 0].abs().max() == 0  # windows wholly in the zero part
    zero_tpl = masked_cosine_correlation(sat, torch.zeros_like(tpl), valid)
    assert zero_tpl.abs().max() == 0
    scores.sum().backward()
    assert torch.isfinite(sat.grad).all() and torch.isfinite(tpl.grad).all()


@pytest.mark.parametrize('method', ['conv', 'fft'])
def test_gradcheck_float64(method):
    sat, tpl, valid = random_case(bs=2, bg=2, C=2, h=5, w=5, r=3, c=3, dtype=torch.float64)
    sat.requires_grad_(True)
    tpl.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda s, t: masked_cosine_correlation(s, t, valid, all_pairs=True, method=method),
        (sat, tpl), fast_mode=True)


@pytest.mark.parametrize('kwargs, message', [
    ({'sat': (2, 3, 8, 8), 'tpl': (2, 4, 3, 3)}, r'channel mismatch.*\(2, 3, 8, 8\)'),
    ({'sat': (2, 3, 8, 8), 'tpl': (3, 3, 3, 3)}, r'paired mode.*\(3, 3, 3, 3\)'),
    ({'sat': (2, 3, 8, 8), 'tpl': (2, 3, 4, 3)}, r'odd.*\(4, 3\)'),
    ({'sat': (3, 8, 8), 'tpl': (2, 3, 3, 3)}, r'\(Bs, C, h, w\).*\(3, 8, 8\)'),
    ({'sat': (2, 3, 8, 8), 'tpl': (2, 3, 3, 3), 'valid': (2, 3, 4)}, r'valid.*\(2, 3, 4\)'),
    ({'sat': (2, 3, 4, 4), 'tpl': (2, 3, 5, 5), 'positions': 'valid'}, r'no larger.*\(4, 4\)'),
    ({'sat': (2, 3, 4, 4), 'tpl': (2, 3, 3, 3), 'positions': 'full'}, r"'full'"),
    ({'sat': (2, 3, 4, 4), 'tpl': (2, 3, 3, 3), 'method': 'fftw'}, r"'fftw'"),
])
def test_shape_errors_print_the_bad_shape(kwargs, message):
    sat = torch.zeros(kwargs['sat'])
    tpl = torch.zeros(kwargs['tpl'])
    valid_shape = kwargs.get('valid', (tpl.shape[0], *tpl.shape[-2:]))
    valid = torch.ones(valid_shape, dtype=torch.bool)
    with pytest.raises(ValueError, match=message):
        masked_cosine_correlation(sat, tpl, valid, kwargs.get('positions', 'same'),
                                  method=kwargs.get('method', 'auto'))


def test_half_precision_inputs_are_correlated_in_float32():
    sat, tpl, valid = random_case(seed=6)
    scores = masked_cosine_correlation(sat.to(torch.bfloat16), tpl.to(torch.bfloat16), valid)
    assert scores.dtype == torch.float32
    ref = masked_cosine_correlation(sat.to(torch.bfloat16).float(),
                                    tpl.to(torch.bfloat16).float(), valid)
    torch.testing.assert_close(scores, ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_cuda_matches_cpu():
    sat, tpl, valid = random_case(bs=3, bg=3, dtype=torch.float64, seed=7)
    cpu = masked_cosine_correlation(sat, tpl, valid, all_pairs=True)
    gpu = masked_cosine_correlation(sat.cuda(), tpl.cuda(), valid.cuda(), all_pairs=True)
    assert gpu.device.type == 'cuda'
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-10, rtol=0)
    gpu32 = masked_cosine_correlation(sat.float().cuda(), tpl.float().cuda(), valid.cuda())
    # cuDNN may use TF32 for float32 convolutions (about 1e-3, see the module docstring)
    torch.testing.assert_close(gpu32.cpu().double(), torch.diagonal(cpu, 0, 0, 1).permute(2, 0, 1),
                               atol=5e-3, rtol=0)


@pytest.mark.parametrize('positions,h,w,r,c', [
    ('same', 9, 11, 23, 3),  # template taller than the map: the FFT length is at least r
    ('same', 16, 16, 31, 31),
    ('same', 7, 30, 5, 29),
    ('same', 24, 24, 9, 9),
    ('valid', 24, 20, 23, 19),
    ('valid', 10, 10, 1, 1),
])
def test_fft_padding_never_wraps_a_window_around(positions, h, w, r, c):
    """The FFT is padded to h + (r - 1) / 2 ('same') or h ('valid'), not h + r - 1: still
    the plain sliding-window scores, near the borders too, paired and all pairs."""
    sat, tpl, valid = random_case(bs=2, bg=2, C=4, h=h, w=w, r=r, c=c, seed=11)
    pairs = masked_cosine_correlation(sat, tpl, valid, positions, True, method='fft')
    paired = masked_cosine_correlation(sat, tpl, valid, positions, False, method='fft')
    for m in range(2):
        for n in range(2):
            ref = reference_scores(sat[m], tpl[n], valid[n], positions)
            torch.testing.assert_close(pairs[m, n].double(), ref, atol=1e-4, rtol=0)
        torch.testing.assert_close(paired[m].double(),
                                   reference_scores(sat[m], tpl[m], valid[m], positions),
                                   atol=1e-4, rtol=0)


def test_auto_takes_the_fft_for_paired_templates_above_nine_cells():
    """Paired mode (a grouped conv2d, slow on the CPU) switches to the FFT from 5 x 5 on,
    all-pairs mode (one conv2d) only above 100 cells."""
    sat, tpl, valid = random_case(bs=2, bg=2, C=4, h=12, w=12, r=5, c=5, seed=12)
    auto = masked_cosine_correlation(sat, tpl, valid)
    assert torch.equal(auto, masked_cosine_correlation(sat, tpl, valid, method='fft'))
    assert not torch.equal(auto, masked_cosine_correlation(sat, tpl, valid, method='conv'))
    pairs = masked_cosine_correlation(sat, tpl, valid, all_pairs=True)
    assert torch.equal(pairs, masked_cosine_correlation(sat, tpl, valid, all_pairs=True,
                                                        method='conv'))


def _loop(sat, g, conf, positions):
    """cos(sat * c, g * c) window by window, written out (G2SWeakly's confidence on both
    sides): sat (C, h, w), g (C, r, c) ground features, conf (r, c), 0 on invalid cells."""
    sat, g, conf = sat.double(), g.double(), conf.double()
    C, h, w = sat.shape
    _, r, c = g.shape
    if positions == 'same':
        sat = F.pad(sat, ((c - 1) // 2, (c - 1) // 2, (r - 1) // 2, (r - 1) // 2))
        H, W = h, w
    else:
        H, W = h - r + 1, w - c + 1
    out = torch.zeros(H, W, dtype=torch.float64)
    for i in range(H):
        for j in range(W):
            a = (sat[:, i:i + r, j:j + c] * conf).flatten()
            b = (g * conf).flatten()
            na, nb = float(a.norm()), float(b.norm())
            out[i, j] = float(a @ b) / (na * nb) if na and nb else 0.0
    return out


@pytest.mark.parametrize('method', ['conv', 'fft'])
@pytest.mark.parametrize('positions', ['same', 'valid'])
@pytest.mark.parametrize('all_pairs', [False, True])
def test_window_weight_scores_cos_of_both_sides_weighted(method, positions, all_pairs):
    sat, g, valid = random_case(seed=4)
    conf = torch.rand(valid.shape, generator=torch.Generator().manual_seed(5)) * valid
    scores = masked_cosine_correlation(sat, g * conf[:, None], valid, positions, all_pairs,
                                       method, window_weight=conf)
    for m in range(2):
        for n in range(2):
            if not all_pairs and m != n:
                continue
            got = scores[m, n] if all_pairs else scores[m]
            torch.testing.assert_close(got.double(), _loop(sat[m], g[n], conf[n], positions),
                                       atol=1e-4, rtol=0)
    # the counter-example: without the window weight it is cos(sat, g * c), which differs
    plain = masked_cosine_correlation(sat, g * conf[:, None], valid, positions, all_pairs,
                                      method)
    assert (plain - scores).abs().max() > 1e-2
    # a constant confidence gives the unweighted score (cosine is scale-invariant)
    ones = valid.double().float()
    torch.testing.assert_close(
        masked_cosine_correlation(sat, g, valid, positions, all_pairs, method,
                                  window_weight=0.5 * ones),
        masked_cosine_correlation(sat, g, valid, positions, all_pairs, method), atol=1e-5,
        rtol=0)
    with pytest.raises(ValueError, match='window_weight'):
        masked_cosine_correlation(sat, g, valid, positions, window_weight=conf[:, :1])


def overlap_reference(sat, tpl, valid, floor):
    """Loops, 'same' positions: the template norm over its valid cells on the map, floored
    at `floor` times the whole valid norm."""
    sat, tpl = sat.double(), tpl.double()
    C, h, w = sat.shape
    _, r, c = tpl.shape
    pr, pc = (r - 1) // 2, (c - 1) // 2
    padded = F.pad(sat, (pc, pc, pr, pr))
    on_map = F.pad(torch.ones(h, w, dtype=torch.bool), (pc, pc, pr, pr))
    whole = float((tpl[:, valid] ** 2).sum())
    out = torch.zeros(h, w, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            cells = valid & on_map[i:i + r, j:j + c]
            s = padded[:, i:i + r, j:j + c][:, valid]
            inside = float((tpl[:, cells] ** 2).sum())
            t_norm = max(inside, floor * whole) ** 0.5
            s_norm = float(s.norm())
            dot = float((tpl[:, valid] * s).sum())
            out[i, j] = dot / (t_norm * s_norm) if t_norm and s_norm else 0.0
    return out


@pytest.mark.parametrize('method', ['conv', 'fft'])
@pytest.mark.parametrize('floor', [0.0, 0.5])
@pytest.mark.parametrize('all_pairs', [False, True])
def test_template_energy_floor_normalises_by_the_template_on_the_map(method, floor, all_pairs):
    sat, tpl, valid = random_case(dtype=torch.float64, h=7, w=8, r=5, c=7)
    scores = masked_cosine_correlation(sat, tpl, valid, 'same', all_pairs=all_pairs,
                                       method=method, template_energy_floor=floor)
    for m in range(2):
        for n in range(2):
            if not all_pairs and m != n:
                continue
            got = scores[m, n] if all_pairs else scores[m]
            torch.testing.assert_close(got, overlap_reference(sat[m], tpl[n], valid[n], floor),
                                       atol=1e-10, rtol=0)


def test_floor_one_is_the_whole_norm_and_an_edge_match_is_no_longer_penalised():
    """A template whose content lies ahead (top rows) matched at a map position where that
    content is half off the map: the whole norm scores it at sqrt(inside / whole); the
    floor 0.5 scores the exact match 1, like the same match in the middle of the map."""
    g = torch.Generator().manual_seed(3)
    C, r, c = 4, 9, 9
    sat = torch.randn(1, C, 15, 15, generator=g, dtype=torch.float64)
    valid = torch.zeros(1, r, c, dtype=torch.bool)
    valid[0, :5] = True  # rows 0-4: ahead of the centre row 4
    i0, j0 = 2, 7  # camera at row 2: template rows 0-1 fall above the map
    tpl = torch.zeros(1, C, r, c, dtype=torch.float64)
    tpl[0, :, 2:5] = sat[0, :, 0:3, j0 - 4:j0 + 5]  # its on-map rows copy the satellite
    tpl[0, :, 0:2] = torch.randn(C, 2, c, generator=g, dtype=torch.float64)  # off the map
    inside = float((tpl[0, :, 2:5] ** 2).sum())
    whole = float((tpl[0, :, 0:5] ** 2).sum())
    assert inside / whole > 0.5
    default = masked_cosine_correlation(sat, tpl, valid, 'same')
    floored = masked_cosine_correlation(sat, tpl, valid, 'same', template_energy_floor=0.5)
    assert float(default[0, i0, j0]) == pytest.approx((inside / whole) ** 0.5, abs=1e-9)
    assert float(floored[0, i0, j0]) == pytest.approx(1.0, abs=1e-9)
    assert torch.equal(masked_cosine_correlation(sat, tpl, valid, 'same',
                                                 template_energy_floor=1.0), default)
    with pytest.raises(ValueError, match='template_energy_floor'):
        masked_cosine_correlation(sat, tpl, valid, 'same', template_energy_floor=1.5)
