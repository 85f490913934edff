"""Localizer with yaw_search='rotation': yaw, variance and source on a flat world; errors."""
import math

import numpy as np
import pytest
from test_localizer import identity_localizer
import torch

from geodistill_core.localizer import DEFAULT_YAW_SEARCH, Localizer
from geodistill_core.rotation_search import RotationSearchConfig
from geodistill_core.training.flat_world import FlatWorldDataset


def flat_world(yaw_noise_deg: float, size: int = 3) -> FlatWorldDataset:
    return FlatWorldDataset('test', size=size, ground_hw=(64, 128), sat_size=96,
                            sat_meters_per_px=0.25, world_px=384, yaw_noise_deg=yaw_noise_deg)


def searching_localizer(range_deg: float) -> Localizer:
    """Raw colours score close to 1 everywhere: a low posterior temperature."""
    localizer = identity_localizer(96, (64, 128))
    localizer.yaw_search = 'rotation'
    localizer.yaw_search_config = RotationSearchConfig(
        range_deg=range_deg, coarse_step_deg=3.0, fine_step_deg=0.5, temperature=2e-4)
    return localizer


def test_rotation_search_recovers_the_yaw_and_the_position_from_a_wrong_prior():
    data = flat_world(40.0)
    localizer = searching_localizer(45.0)
    for index in range(len(data)):
        item = data[index]
        args = (item['ground'][None], item['satellite'][None], item['sat_meters_per_px'])
        prior = float(item['yaw_prior_rad'])
        truth = float(item['yaw_rad'])
        assert abs(prior - truth) > math.radians(3)  # the prior alone is wrong
        found = localizer.localize(*args, yaw_prior_rad=prior)
        assert found.yaw_source == 'rotation_search'
        assert abs(float(found.yaw_rad[0]) - truth) < math.radians(1.0)
        assert float(found.yaw_std_rad[0]) < math.radians(3.0)
        assert found.yaw_search_result.candidates_rad.shape[0] == 1
        true_offset = item['eval_true_offset_en_m'].numpy()
        assert np.linalg.norm(found.offset_en_m[0].numpy() - true_offset) < 0.75
        # the location result is the plain pipeline's at the searched yaw
        again = localizer.localize(*args, yaw_prior_rad=found.yaw_rad, use_yaw_search=False)
        assert again.yaw_source == 'prior'
        assert torch.allclose(again.heatmap_prob, found.heatmap_prob, atol=1e-5)
        assert torch.allclose(again.offset_en_m, found.offset_en_m, atol=1e-6)


def test_batch_equals_one_frame_at_a_time():
    data = flat_world(30.0)
    localizer = searching_localizer(45.0)
    items = [data[i] for i in range(len(data))]
    batched = localizer.localize(torch.stack([it['ground'] for it in items]),
                                 torch.stack([it['satellite'] for it in items]), 0.25,
                                 yaw_prior_rad=torch.stack([it['yaw_prior_rad']
                                                            for it in items]))
    for i, item in enumerate(items):
        alone = localizer.localize(item['ground'][None], item['satellite'][None], 0.25,
                                   yaw_prior_rad=float(item['yaw_prior_rad']))
        assert float(alone.yaw_rad[0]) == pytest.approx(float(batched.yaw_rad[i]), abs=1e-6)
        assert float(alone.yaw_std_rad[0]) == pytest.approx(float(batched.yaw_std_rad[i]),
                                                            rel=1e-4)
        assert torch.allclose(alone.offset_en_m[0], batched.offset_en_m[i], atol=1e-5)


def test_without_search_the_yaw_is_the_prior_with_its_spread():
    item = flat_world(0.0, size=1)[0]
    result = identity_localizer(96, (64, 128)).localize(
        item['ground'][None], item['satellite'][None], 0.25, yaw_prior_rad=1.0)
    assert result.yaw_source == 'prior' and result.yaw_search_result is None
    assert float(result.yaw_rad[0]) == pytest.approx(1.0)
    assert result.item()['yaw_source'] == 'prior'


def test_bad_yaw_search_settings_and_priors_are_clear_errors():
    localizer = searching_localizer(10.0)
    item = flat_world(0.0, size=1)[0]
    with pytest.raises(ValueError, match='yaw_prior_rad must be finite'):
        localizer.localize(item['ground'][None], item['satellite'][None], 0.25,
                           yaw_prior_rad=float('nan'))
    model = localizer.location_model
    with pytest.raises(ValueError, match="yaw_search must be one of"):
        Localizer(model, kind='correlation', ground_hw=(64, 128), sat_size_px=96,
                  camera_model='panorama', camera_height_m=2.0, device='cpu',
                  yaw_search='learned')
    with pytest.raises(ValueError, match='needs a correlation location model'):
        Localizer(model, kind='ccvpe', ground_hw=(64, 128), sat_size_px=96,
                  camera_model='panorama', camera_height_m=2.0, device='cpu',
                  yaw_search='rotation')
    with pytest.raises(ValueError, match=r'range_deg must be in \(0, 180\]'):
        RotationSearchConfig(range_deg=0.0)


@pytest.mark.parametrize('camera', sorted(DEFAULT_YAW_SEARCH))
def test_embedded_defaults_take_the_measured_search_settings(camera):
    mode, config = DEFAULT_YAW_SEARCH[camera]
    localizer = Localizer.default(camera, device='cpu')
    assert localizer.yaw_search == mode and localizer.yaw_search_config == config
    searching = Localizer.default(camera, device='cpu', yaw_search='rotation')
    assert searching.yaw_search == 'rotation'


def test_per_call_prior_range_bounds_the_search_and_zero_means_known_yaw():
    data = flat_world(40.0, size=1)
    localizer = searching_localizer(5.0)  # the config alone cannot reach a 40 deg error
    item = data[0]
    args = (item['ground'][None], item['satellite'][None], item['sat_meters_per_px'])
    prior, truth = float(item['yaw_prior_rad']), float(item['yaw_rad'])
    narrow = localizer.localize(*args, yaw_prior_rad=prior)
    assert abs(float(narrow.yaw_rad[0]) - prior) <= math.radians(5.0) + 1e-6
    wide = localizer.localize(*args, yaw_prior_rad=prior, yaw_prior_range_deg=45.0)
    assert abs(float(wide.yaw_rad[0]) - truth) < math.radians(1.0)
    candidates = wide.yaw_search_result.candidates_rad
    assert float((candidates - prior).abs().max()) > math.radians(5.0)
    known = localizer.localize(*args, yaw_prior_rad=prior, yaw_prior_range_deg=0.0)
    assert known.yaw_source == 'prior' and float(known.yaw_rad[0]) == pytest.approx(prior)
    with pytest.raises(ValueError, match='yaw_prior_range_deg must be finite and >= 0'):
        localizer.localize(*args, yaw_prior_rad=prior, yaw_prior_range_deg=-1.0)
