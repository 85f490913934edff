"""CorrelationYawScorer: candidates batched equal one forward per yaw; rotation search on
rendered flat-world pairs (both cameras) finds the yaw, and a featureless pair is uncertain."""
import math

import pytest
from test_correlation_estimator import (
    heatmap_offset_en_m,
    render_panorama,
    render_pinhole,
    smooth_texture,
)
import torch

from geodistill_core.geometry import NorthUpCrop
from geodistill_core.models.correlation import (
    CorrelationEstimatorConfig,
    CorrelationLevel,
    CorrelationLocationEstimator,
)
from geodistill_core.models.correlation.yaw_scorer import CorrelationYawScorer
from geodistill_core.rotation_search import RotationSearchConfig, search_yaw

DEG = math.pi / 180
PINHOLE_K = torch.tensor([[40.0, 0.0, 63.5], [0.0, 40.0, 31.5], [0.0, 0.0, 1.0]])


def camera_kwargs(camera_model):
    if camera_model == 'pinhole':
        return {'camera_height_m': 1.65, 'ground_K': PINHOLE_K}
    return {'camera_height_m': 2.0}


@pytest.mark.parametrize('camera_model', ['panorama', 'pinhole'])
@pytest.mark.parametrize('reduce, levels, weighting', [
    ('max', 'finest', 'ground'), ('logsumexp', 'mean', 'ground'), ('max', 'mean', 'both')])
def test_batched_candidates_equal_one_forward_per_yaw(tiny_conv_extractor, camera_model,
                                                      reduce, levels, weighting):
    torch.manual_seed(0)
    config = CorrelationEstimatorConfig(
        levels=(CorrelationLevel('coarse', 6), CorrelationLevel('fine', 4)),
        camera_model=camera_model, confidence_weighting=weighting)
    est = CorrelationLocationEstimator(config, tiny_conv_extractor(), tiny_conv_extractor())
    ground, sat = torch.rand(2, 3, 64, 128), torch.rand(2, 3, 64, 64)
    yaws = torch.tensor([[0.1, 0.5, 0.9, 1.3, 1.7], [2.0, -1.0, 0.0, 0.3, 3.0]])
    kwargs = camera_kwargs(camera_model)
    scorers = [CorrelationYawScorer(est, ground, sat, sat_meters_per_px=0.5, reduce=reduce,
                                    levels=levels, tau=0.06, chunk=chunk, **kwargs)
               for chunk in (2, 32)]
    batched = [s(yaws) for s in scorers]
    assert torch.allclose(batched[0], batched[1], atol=1e-6)
    for k in range(yaws.shape[1]):
        out = est(ground, sat, sat_meters_per_px=0.5, ground_yaw_rad=yaws[:, k], **kwargs)
        per_level = []
        for scores in out.scores:
            flat = scores.flatten(1)
            per_level.append(flat.amax(1) if reduce == 'max' else
                             torch.logsumexp(flat / 0.06, 1) - math.log(flat.shape[1]))
        expected = per_level[-1] if levels == 'finest' else torch.stack(per_level).mean(0)
        assert torch.allclose(batched[1][:, k], expected, atol=1e-5)
        at_yaw = scorers[1].location_scores(yaws[:, k])
        for got, want in zip(at_yaw.scores, out.scores, strict=True):
            assert torch.allclose(got, want, atol=1e-5)
        assert at_yaw.cell_m == out.cell_m


@pytest.mark.parametrize('camera_model', ['panorama', 'pinhole'])
def test_a_column_mask_scores_as_the_estimators_masked_forward(tiny_conv_extractor,
                                                               camera_model):
    """A training mask (hidden columns) given to the scorer blanks the same image part and
    drops the same BEV cells as the estimator's own masked forward, at every yaw."""
    torch.manual_seed(0)
    config = CorrelationEstimatorConfig(
        levels=(CorrelationLevel('coarse', 6), CorrelationLevel('fine', 4)),
        camera_model=camera_model)
    est = CorrelationLocationEstimator(config, tiny_conv_extractor(), tiny_conv_extractor())
    ground, sat = torch.rand(2, 3, 64, 128), torch.rand(2, 3, 64, 64)
    visible = torch.ones(2, 128, dtype=torch.bool)
    visible[0, 20:70], visible[1, 90:] = False, False
    yaws = torch.tensor([[0.1, 0.6], [2.0, -1.0]])
    kwargs = camera_kwargs(camera_model)
    scorer = CorrelationYawScorer(est, ground, sat, sat_meters_per_px=0.5,
                                  ground_visible_cols=visible, **kwargs)
    unmasked = CorrelationYawScorer(est, ground, sat, sat_meters_per_px=0.5, **kwargs)
    for k in range(yaws.shape[1]):
        out = est(ground, sat, sat_meters_per_px=0.5, ground_yaw_rad=yaws[:, k],
                  ground_visible_cols=visible, **kwargs)
        got = scorer.location_scores(yaws[:, k])
        for g, want in zip(got.scores, out.scores, strict=True):
            assert torch.allclose(g, want, atol=1e-5)
        assert not torch.allclose(unmasked.location_scores(yaws[:, k]).scores[-1],
                                  out.scores[-1], atol=1e-3)


def rendered_pair(camera_model, texture):
    """A ground image of a flat textured world at a known position and yaw 1.1 rad."""
    crop = NorthUpCrop(96, 96, 0.25)
    camera_en_m = heatmap_offset_en_m(31, 17, (48, 48), 0.5)
    if camera_model == 'panorama':
        ground = render_panorama(texture, crop, camera_en_m, 1.1, 2.0, (64, 256))
    else:
        ground = render_pinhole(texture, crop, camera_en_m, 1.1, 1.65, PINHOLE_K.double(),
                                (64, 128))
    return ground


def identity_estimator(pool_extractor, camera_model):
    config = CorrelationEstimatorConfig(levels=(CorrelationLevel('fine', 4),),
                                        camera_model=camera_model, learned_confidence=False)
    return CorrelationLocationEstimator(config, pool_extractor({'fine': 1}),
                                        pool_extractor({'fine': 2}))


@pytest.mark.parametrize('camera_model, range_deg, prior_offset_deg, coarse, fine', [
    ('pinhole', 10.0, 7.0, 2.0, 0.25), ('panorama', 45.0, -31.0, 3.0, 0.5)])
def test_rotation_search_finds_the_yaw_of_a_rendered_pair(pool_extractor, camera_model,
                                                          range_deg, prior_offset_deg,
                                                          coarse, fine):
    """Identity features of a ray-cast ground image: the score peaks at the true yaw
    (1.1 rad) from a prior degrees away; a featureless pair (uniform ground) returns a far
    larger variance."""
    est = identity_estimator(pool_extractor, camera_model)
    texture = smooth_texture(4, (96, 96), sigma_px=2.0, seed=1)
    config = RotationSearchConfig(range_deg=range_deg, coarse_step_deg=coarse,
                                  fine_step_deg=fine, temperature=0.01)
    prior = torch.tensor([1.1 + prior_offset_deg * DEG])
    kwargs = camera_kwargs(camera_model)
    results = {}
    for name, tex in (('textured', texture), ('featureless', torch.ones_like(texture))):
        ground = rendered_pair(camera_model, tex)
        scorer = CorrelationYawScorer(est, ground, tex, sat_meters_per_px=0.25, **kwargs)
        results[name] = search_yaw(scorer, prior, config)
    textured = results['textured']
    assert abs(float(textured.yaw_rad[0]) - 1.1) < 0.5 * DEG
    assert math.sqrt(float(textured.yaw_var_rad2[0])) < 2 * DEG
    assert float(results['featureless'].yaw_var_rad2[0]) > 25 * float(textured.yaw_var_rad2[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_search_on_cuda_matches_the_cpu(pool_extractor):
    texture = smooth_texture(4, (96, 96), sigma_px=2.0, seed=1)
    ground = rendered_pair('panorama', texture)
    config = RotationSearchConfig(range_deg=45.0, coarse_step_deg=3.0, fine_step_deg=0.5)
    prior = torch.tensor([1.1 - 31 * DEG])
    found = {}
    for device in ('cpu', 'cuda'):
        est = identity_estimator(pool_extractor, 'panorama').to(device)
        scorer = CorrelationYawScorer(est, ground.to(device), texture.to(device),
                                      sat_meters_per_px=0.25, camera_height_m=2.0)
        found[device] = search_yaw(scorer, prior.to(device), config)
    assert found['cuda'].yaw_rad.device.type == 'cuda'
    assert float(found['cuda'].yaw_rad[0]) == pytest.approx(float(found['cpu'].yaw_rad[0]),
                                                            abs=1e-3)
