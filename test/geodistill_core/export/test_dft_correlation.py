"""DftCorrelation (the export's matrix-product DFT correlation) against the estimator's
sliding correlation (conv path) and a brute-force window sum: same scores, borders,
masks, empty templates, shared and paired satellites."""
import pytest
import torch

from geodistill_core.export.dft_correlation import DftCorrelation
from geodistill_core.models.correlation.sliding_correlation import masked_cosine_correlation

CASES = [('same', 64, 64, 25, 25), ('same', 48, 48, 19, 19), ('same', 9, 11, 23, 3),
         ('same', 16, 30, 5, 29), ('same', 7, 8, 1, 1), ('valid', 24, 20, 23, 19),
         ('valid', 10, 10, 3, 5)]


def random_case(B, C, h, w, r, c, seed):
    generator = torch.Generator().manual_seed(seed)
    satellite = torch.randn(B, C, h, w, generator=generator)
    template = torch.randn(B, C, r, c, generator=generator)
    valid = torch.rand(B, r, c, generator=generator) > 0.4
    return satellite, template, valid


@pytest.mark.parametrize('positions,h,w,r,c', CASES)
def test_paired_scores_equal_the_sliding_correlation(positions, h, w, r, c):
    satellite, template, valid = random_case(3, 6, h, w, r, c, seed=1)
    valid[1] = False  # an empty template scores 0 everywhere
    module = DftCorrelation((h, w), (r, c), positions)
    scores = module(satellite, template, valid, torch.arange(3))
    reference = masked_cosine_correlation(satellite, template, valid, positions, method='conv')
    torch.testing.assert_close(scores, reference, atol=1e-5, rtol=0)
    assert torch.all(scores[1] == 0)


@pytest.mark.parametrize('positions,h,w,r,c', CASES[:3])
def test_a_shared_satellite_equals_all_pairs_row(positions, h, w, r, c):
    satellite, template, valid = random_case(4, 5, h, w, r, c, seed=2)
    module = DftCorrelation((h, w), (r, c), positions)
    shared = module(satellite[:1], template, valid, torch.zeros(4, dtype=torch.long))
    reference = masked_cosine_correlation(satellite[:1], template, valid, positions,
                                          all_pairs=True, method='conv')[0]
    torch.testing.assert_close(shared, reference, atol=1e-5, rtol=0)


def test_one_window_by_hand_and_the_pairing_is_used():
    """Score at a cell = cosine of the template with the window under it (brute force);
    swapping the pairing changes the scores (counter-example)."""
    satellite, template, valid = random_case(2, 4, 12, 12, 5, 5, seed=3)
    valid[:] = True
    module = DftCorrelation((12, 12), (5, 5), 'same')
    scores = module(satellite, template, valid, torch.arange(2))
    i, j = 6, 4  # window rows 4..8, cols 2..6
    window = satellite[1, :, i - 2:i + 3, j - 2:j + 3]
    expected = torch.nn.functional.cosine_similarity(window.flatten(), template[1].flatten(),
                                                     dim=0)
    assert scores[1, i, j].item() == pytest.approx(expected.item(), abs=1e-5)
    swapped = module(satellite, template, valid, torch.tensor([1, 0]))
    assert (swapped[1] - scores[1]).abs().max() > 1e-2


def test_sizes_are_checked():
    module = DftCorrelation((12, 12), (5, 5))
    satellite, template, valid = random_case(1, 2, 12, 14, 5, 5, seed=4)
    with pytest.raises(ValueError, match='built for maps'):
        module(satellite, template, valid, torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match='odd'):
        DftCorrelation((12, 12), (4, 5))


@pytest.mark.parametrize('positions,h,w,r,c', [CASES[0], CASES[5]])
def test_window_weight_equals_the_sliding_correlation(positions, h, w, r, c):
    satellite, template, valid = random_case(2, 4, h, w, r, c, seed=3)
    weight = torch.rand(valid.shape, generator=torch.Generator().manual_seed(4))
    module = DftCorrelation((h, w), (r, c), positions)
    scores = module(satellite, template, valid, torch.arange(2), window_weight=weight)
    reference = masked_cosine_correlation(satellite, template, valid, positions, method='conv',
                                          window_weight=weight)
    torch.testing.assert_close(scores, reference, atol=1e-5, rtol=0)
    assert (scores - module(satellite, template, valid, torch.arange(2))).abs().max() > 1e-2


@pytest.mark.parametrize('floor', [0.0, 0.5])
def test_template_energy_floor_equals_the_sliding_correlation(floor):
    positions, h, w, r, c = 'same', 12, 14, 9, 11  # templates reach far off the map
    satellite, template, valid = random_case(2, 4, h, w, r, c, seed=5)
    module = DftCorrelation((h, w), (r, c), positions)
    scores = module(satellite, template, valid, torch.arange(2), template_energy_floor=floor)
    reference = masked_cosine_correlation(satellite, template, valid, positions, method='conv',
                                          template_energy_floor=floor)
    torch.testing.assert_close(scores, reference, atol=1e-5, rtol=0)
    assert (scores - module(satellite, template, valid, torch.arange(2))).abs().max() > 1e-2
