"""Orientation objective: the rotation and its label follow the readers' convention."""
import math

import pytest
import torch

from geodistill_core.models.orientation import OrientationEstimatorConfig
from geodistill_core.training import OrientationConfig, OrientationLossModule, preset
from geodistill_core.training.flat_world import FlatWorldDataset


def test_rolled_panorama_equals_a_rendering_at_the_labelled_yaw():
    ds = FlatWorldDataset('train', size=2, ground_hw=(64, 128), sat_size=64)
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ds[0]}
    module = OrientationLossModule(torch.nn.Identity(), OrientationConfig(prior_range_deg=45))
    rotated, offset_rad = module.rotated(batch, step_seed=4)
    assert offset_rad.abs().max() <= math.radians(45) and offset_rad.abs().min() > 0
    for b in range(2):
        # offset = true yaw - prior yaw (models.orientation), the prior is pi / 2
        true_yaw = math.pi / 2 + float(offset_rad[b])
        centre = ds._tile_centre_px(b)
        e, n = ds.offset_en_m[b]
        camera = (centre[0] - n / ds.sat_meters_per_px, centre[1] + e / ds.sat_meters_per_px)
        rendered = ds.render_panorama(camera, true_yaw)
        assert (rotated[b] - rendered).abs().mean() < 0.01
        wrong = ds.render_panorama(camera, math.pi / 2 - float(offset_rad[b]))
        assert (rotated[b] - wrong).abs().mean() > 2 * (rotated[b] - rendered).abs().mean()


def test_loss_is_low_for_logits_at_the_label_and_bins_checked():
    ds = FlatWorldDataset('train', size=2, ground_hw=(16, 32), sat_size=32)
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ds[0]}
    config = OrientationConfig(prior_range_deg=10.0)
    _, offset = OrientationLossModule(torch.nn.Identity(), config).rotated(batch, 0)
    label = torch.rad2deg(offset)

    class Oracle(torch.nn.Module):
        def forward(self, satellite, ground, prior_yaw_rad):
            bins = torch.arange(-10.0, 11.0)
            return -0.5 * (bins.view(1, -1) - label.float().view(-1, 1)) ** 2
    out = OrientationLossModule(Oracle(), config)(batch, 0)
    assert out['abs_error_deg'].item() == pytest.approx(0.0, abs=1e-3)

    class Wrong(torch.nn.Module):
        def forward(self, satellite, ground, prior_yaw_rad):
            return torch.zeros(2, 5)
    with pytest.raises(ValueError, match=r'\(B, 21\)'):
        OrientationLossModule(Wrong(), config)(batch, 0)


def test_synthetic_bench_orientation_preset_is_the_pretrained_lite0_cut_at_stride_16():
    conf = preset('synthetic_bench', 'orientation')
    estimator = OrientationEstimatorConfig.from_dict(conf.model.estimator)
    assert (estimator.backbone, estimator.pretrained, conf.model.pretrained) == (
        'efficientnet_lite0', True, True)
    assert (estimator.ground_feature_key, estimator.ground_channels) == (4, 112)
    assert (estimator.satellite_feature_key, estimator.satellite_channels) == (4, 112)
    assert estimator.bev_size_px == conf.data.sat_size == 256
    assert conf.data.ground_hw == (128, 256)
    assert estimator.prior_range_deg == conf.orientation.prior_range_deg == 45.0
    # the paper presets: ImageNet B0 cut after block 14 (192 channels), flatten head
    for name in ('vigor_cross', 'vigor_same', 'kitti'):
        paper = OrientationEstimatorConfig.from_dict(preset(name, 'orientation').model.estimator)
        assert (paper.backbone, paper.pretrained, paper.head) == (
            'efficientnet_b0_trunk', True, 'flatten')
        assert (paper.ground_feature_key, paper.ground_channels, paper.fusion_channels) == (
            5, 192, 192)
    other = OrientationEstimatorConfig.from_dict(preset('tiny', 'orientation').model.estimator)
    assert (other.backbone, other.pretrained, other.head) == ('tiny', False, 'pool')


def test_an_orientation_estimator_is_random_only_when_asked_for():
    """An estimator dict that does not say 'pretrained' follows model.pretrained: a B0
    estimator without a weights file is then an error naming how to get one, never a
    silent random initialisation (README: random only with model.pretrained=false)."""
    from geodistill_core.training.config import ModelConfig
    from geodistill_core.training.models import build_model
    estimator = {'backbone': 'efficientnet_b0', 'bev_size_px': 128, 'prior_range_deg': 10.0}
    with pytest.raises(FileNotFoundError, match='needs the local weights file'):
        build_model(ModelConfig(kind='orientation', ground_backbone='efficientnet_b0',
                                satellite_backbone='efficientnet_b0', estimator=estimator))
    model = build_model(ModelConfig(kind='orientation', ground_backbone='efficientnet_b0',
                                    satellite_backbone='efficientnet_b0', pretrained=False,
                                    estimator=estimator))
    assert model.config.pretrained is False
    # the synthetic_kitti preset asks for its random B0 explicitly
    conf = preset('synthetic_kitti', 'orientation')
    assert conf.model.estimator['pretrained'] is False
