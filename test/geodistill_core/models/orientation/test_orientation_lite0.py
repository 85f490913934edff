"""OrientationEstimator on ImageNet EfficientNet-Lite0 encoders cut at stride 16.

Shapes, gradients, the bundled ImageNet weights really loaded, the cut (no deeper stage in
the checkpoint), and a checkpoint round trip that never reads the weights file.
"""
import math

import pytest
import torch

from geodistill_core.geometry import roll_panorama
from geodistill_core.models.backbones import registry
from geodistill_core.models.backbones.efficientnet_lite0 import (
    bundled_lite0_weights,
    lite0_to_timm_keys,
)
from geodistill_core.models.backbones.preprocess import TF_LITE_MEAN_RGB, TF_LITE_STD_RGB
from geodistill_core.models.backbones.weights import read_state_dict
from geodistill_core.models.orientation import (
    OrientationEstimatorConfig,
    build_orientation_estimator,
    lite0_orientation_config,
)
from geodistill_core.training.config import ModelConfig
from geodistill_core.training.models import load_trained_model, save_trained_model

BEV_PX = 64
PANO_HW = (32, 64)
NORTH = math.pi / 2
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
MAX_CHECKPOINT_BYTES = 25e6


@pytest.fixture(scope='module')
def lite0_state_dict():
    """The bundled ImageNet file, renamed to timm's keys."""
    return lite0_to_timm_keys(read_state_dict(bundled_lite0_weights(), 'bundled Lite0'),
                              LITE0_STAGE_DEPTHS)


def _inputs(batch=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    sat = torch.rand(batch, 3, BEV_PX, BEV_PX, generator=generator)
    pano = torch.rand(batch, 3, *PANO_HW, generator=generator)
    return sat, pano, torch.full((batch,), NORTH)


def _model(load_pretrained=True, **overrides):
    torch.manual_seed(0)
    config = lite0_orientation_config(BEV_PX, fusion_channels=16, mlp_hidden=32, **overrides)
    return build_orientation_estimator(config, load_pretrained=load_pretrained)


def test_config_describes_the_stride_16_cut_and_its_normalisation():
    config = lite0_orientation_config()
    assert (config.backbone, config.pretrained, config.bev_size_px) == (
        'efficientnet_lite0', True, 256)
    assert (config.ground_feature_key, config.ground_channels) == (4, 112)
    assert (config.mean_rgb, config.std_rgb) == (TF_LITE_MEAN_RGB, TF_LITE_STD_RGB)
    assert OrientationEstimatorConfig.from_dict(config.to_dict()) == config
    assert OrientationEstimatorConfig().mean_rgb != TF_LITE_MEAN_RGB  # B0: ImageNet's
    with pytest.raises(ValueError, match='no pretrained weights'):
        OrientationEstimatorConfig(backbone='tiny', pretrained=True)
    with pytest.raises(ValueError, match='level 4 .* 112 channels, the config says 320'):
        build_orientation_estimator(lite0_orientation_config(BEV_PX, ground_channels=320),
                                    load_pretrained=False)


def test_shapes_and_stride_16_features():
    model = _model().eval()
    sat, pano, prior = _inputs()
    with torch.no_grad():
        levels = model.satellite_encoder(model.normalise(sat))
        out = model(sat, pano, prior)
    assert len(levels) == 5 and levels[4].shape == (2, 112, BEV_PX // 16, BEV_PX // 16)
    assert out.logits.shape == (2, 91)
    assert out.offset_rad.shape == out.std_rad.shape == out.yaw_rad.shape == (2,)
    assert torch.isfinite(out.logits).all() and (out.offset_rad.abs() <= math.radians(45.5)).all()


def test_gradients_reach_every_trainable_parameter():
    model = _model().train()
    sat, pano, prior = _inputs()
    yaws = torch.tensor([0.3, -0.5])
    out = model(sat, roll_panorama(pano, yaws), prior)
    model.loss(out, yaws).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == len(list(model.parameters()))
    for name, parameter in trainable:
        assert parameter.grad is not None, f'{name} got no gradient'
        assert parameter.grad.abs().sum() > 0, f'{name} got a zero gradient'


def test_the_bundled_imagenet_weights_are_loaded_in_both_encoders(lite0_state_dict):
    model = _model()
    for encoder in (model.satellite_encoder, model.ground_encoder):
        for key in ('conv_stem.weight', 'blocks.4.2.conv_pwl.weight',
                    'blocks.4.2.bn3.running_var'):
            torch.testing.assert_close(encoder.net.state_dict()[key], lite0_state_dict[key],
                                       rtol=0, atol=0)
    random = _model(load_pretrained=False)
    assert not torch.equal(random.ground_encoder.net.conv_stem.weight,
                           lite0_state_dict['conv_stem.weight'])


def test_deeper_stages_are_cut_off_and_the_bench_model_fits_25_mb():
    model = _model(load_pretrained=False)
    keys = model.state_dict().keys()
    assert any(k.startswith('ground_encoder.net.blocks.4.') for k in keys)
    assert not any(k.startswith(('ground_encoder.net.blocks.5.', 'ground_encoder.net.conv_head'))
                   for k in keys)
    bench = build_orientation_estimator(lite0_orientation_config(256), load_pretrained=False)
    n_bytes = sum(t.numel() * t.element_size() for t in bench.state_dict().values())
    assert n_bytes < 0.5 * MAX_CHECKPOINT_BYTES, n_bytes


def test_checkpoint_round_trip_needs_no_weights_file(tmp_path, monkeypatch):
    config = lite0_orientation_config(BEV_PX, fusion_channels=16, mlp_hidden=32)
    model_config = ModelConfig(kind='orientation', ground_backbone='efficientnet_lite0',
                               satellite_backbone='efficientnet_lite0',
                               estimator=config.to_dict())
    torch.manual_seed(0)
    model = build_orientation_estimator(config).eval()
    with torch.no_grad():  # move the weights off ImageNet's so the comparison can fail
        model.satellite_encoder.net.conv_stem.weight.mul_(0.5)
        model.classifier[-1].bias.add_(torch.linspace(-1.0, 1.0, 91))
    path = save_trained_model(tmp_path / 'orientation', model, model_config,
                              {'satellite_hw': [BEV_PX, BEV_PX]}, None, {'test': True})

    def no_weights_file(config):
        raise AssertionError(f'loading a checkpoint read the pretrained weights ({config})')

    monkeypatch.setattr(registry, 'resolve_weights_path', no_weights_file)
    loaded, loaded_config, _ = load_trained_model(path)
    assert loaded_config.estimator['pretrained'] is True  # recorded, not re-applied
    sat, pano, prior = _inputs()
    with torch.no_grad():
        expected, got = model(sat, pano, prior), loaded(sat, pano, prior)
    torch.testing.assert_close(got.logits, expected.logits)
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
