"""A batch whose items have different yaws scores each item as if it ran alone (issue 15:
the mixed-yaw batch path), for both cameras and every correlation method, in the paired
and the shared-satellite (yaw candidates) layouts."""
import math

import pytest
import torch

from geodistill_core.models.correlation import (
    CorrelationEstimatorConfig,
    CorrelationLevel,
    CorrelationLocationEstimator,
)

PINHOLE_K = torch.tensor([[24.0, 0.0, 31.5], [0.0, 24.0, 15.5], [0.0, 0.0, 1.0]])
YAWS = torch.tensor([0.3, 2.1, -1.2, math.pi, 0.3001])


def estimator(tiny_conv_extractor, camera_model, method):
    torch.manual_seed(0)
    config = CorrelationEstimatorConfig(
        levels=(CorrelationLevel('coarse', 6), CorrelationLevel('fine', 4)),
        camera_model=camera_model, correlation_method=method)
    return CorrelationLocationEstimator(config, tiny_conv_extractor(), tiny_conv_extractor())


def kwargs(camera_model, yaw, batch):
    out = {'sat_meters_per_px': 0.5, 'camera_height_m': 1.65, 'ground_yaw_rad': yaw}
    if camera_model == 'pinhole':
        out['ground_K'] = PINHOLE_K.expand(batch, 3, 3)
    return out


@pytest.mark.parametrize('camera_model', ['panorama', 'pinhole'])
@pytest.mark.parametrize('method', ['conv', 'fft', 'auto'])
def test_mixed_yaw_batch_equals_items_run_alone(tiny_conv_extractor, camera_model, method):
    est = estimator(tiny_conv_extractor, camera_model, method)
    generator = torch.Generator().manual_seed(1)
    B = len(YAWS)
    ground = torch.randn(B, 3, 32, 64, generator=generator)
    satellite = torch.randn(B, 3, 64, 64, generator=generator)
    with torch.no_grad():
        batched = est(ground, satellite, **kwargs(camera_model, YAWS, B))
        for index in range(B):
            alone = est(ground[index:index + 1], satellite[index:index + 1],
                        **kwargs(camera_model, YAWS[index:index + 1], 1))
            for level_batched, level_alone in zip(batched.scores, alone.scores, strict=True):
                torch.testing.assert_close(level_batched[index:index + 1], level_alone,
                                           atol=1e-5, rtol=0)
        # counter-example: the yaw matters (one yaw for the whole batch gives other scores)
        same = est(ground, satellite, **kwargs(camera_model, YAWS[:1].expand(B), B))
    assert (same.scores[-1][1] - batched.scores[-1][1]).abs().max() > 1e-3


@pytest.mark.parametrize('camera_model', ['panorama', 'pinhole'])
def test_yaw_candidates_of_one_image_against_one_crop(tiny_conv_extractor, camera_model):
    """One ground image at several yaws against one shared crop (all_pairs with Bs = 1):
    candidate k equals the image run alone at yaw k."""
    est = estimator(tiny_conv_extractor, camera_model, 'auto')
    generator = torch.Generator().manual_seed(2)
    ground = torch.randn(1, 3, 32, 64, generator=generator)
    satellite = torch.randn(1, 3, 64, 64, generator=generator)
    B = len(YAWS)
    with torch.no_grad():
        candidates = est(ground.expand(B, -1, -1, -1), satellite, all_pairs=True,
                         **kwargs(camera_model, YAWS, B))
        for index in range(B):
            alone = est(ground, satellite, **kwargs(camera_model, YAWS[index:index + 1], 1))
            torch.testing.assert_close(candidates.scores[-1][0, index], alone.scores[-1][0],
                                       atol=1e-5, rtol=0)
