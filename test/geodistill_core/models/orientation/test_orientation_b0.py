"""The paper's orientation estimator: ImageNet EfficientNet-B0 from a local timm file, cut
after block 14 (192 channels, stride 32), the fused map flattened into the MLP; the pooled
head stays the default. A random timm B0 saved to a file stands in for the ImageNet one
(no download here): what is checked is that the file's tensors are the ones used."""
import math

import pytest
from safetensors.torch import save_file
import timm
import torch

from geodistill_core.models.orientation import (
    OrientationEstimatorConfig,
    b0_orientation_config,
    build_orientation_estimator,
    tiny_orientation_config,
)
from geodistill_core.training.config import ModelConfig
from geodistill_core.training.models import (
    build_model,
    load_trained_model,
    save_trained_model,
)

BEV_PX = 64


@pytest.fixture(scope='module')
def b0_file(tmp_path_factory):
    """(path, state dict) of a timm efficientnet_b0 state-dict file (random stand-in)."""
    torch.manual_seed(0)
    state = timm.create_model('efficientnet_b0', pretrained=False).state_dict()
    path = tmp_path_factory.mktemp('weights') / 'efficientnet_b0.safetensors'
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return str(path), state


def test_b0_block14_flatten_loads_the_file_and_flattens_192x2x2(b0_file):
    path, state = b0_file
    estimator = build_orientation_estimator(b0_orientation_config(path, bev_size_px=BEV_PX))
    for encoder in (estimator.satellite_encoder, estimator.ground_encoder):
        torch.testing.assert_close(encoder.net.conv_stem.weight, state['conv_stem.weight'])
        torch.testing.assert_close(encoder.net.blocks[5][3].conv_pwl.weight,
                                   state['blocks.5.3.conv_pwl.weight'])  # block 14
        assert len(encoder.net.blocks) == 6 and encoder.net.conv_head is None  # cut there
    assert estimator.classifier[0].in_features == 192 * 2 * 2  # 64 px / 32 = 2
    out = estimator.eval()(torch.rand(2, 3, BEV_PX, BEV_PX), torch.rand(2, 3, 32, 64),
                           torch.full((2,), math.pi / 2))
    assert out.logits.shape == (2, 91) and torch.isfinite(out.logits).all()


def test_pretrained_b0_without_a_file_is_an_error_that_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='timm'):
        build_orientation_estimator(b0_orientation_config(None, bev_size_px=BEV_PX))
    missing = str(tmp_path / 'b0.safetensors')
    with pytest.raises(FileNotFoundError, match=missing):
        build_orientation_estimator(b0_orientation_config(missing, bev_size_px=BEV_PX))
    for backbone in ('efficientnet_b0',):  # the features-only (CCVPE) encoder too
        config = OrientationEstimatorConfig(backbone=backbone, pretrained=True,
                                            bev_size_px=BEV_PX)
        with pytest.raises(FileNotFoundError, match='efficientnet_b0'):
            build_orientation_estimator(config)
    # random initialisation only when asked for explicitly
    random_init = build_orientation_estimator(b0_orientation_config(None, bev_size_px=BEV_PX,
                                                                    pretrained=False))
    assert random_init.classifier[0].in_features == 768


def test_features_only_b0_encoder_loads_the_timm_file(b0_file):
    path, state = b0_file
    config = OrientationEstimatorConfig(pretrained=True, weights=path, bev_size_px=BEV_PX)
    estimator = build_orientation_estimator(config)
    torch.testing.assert_close(estimator.ground_encoder.blocks[6][0].conv_pwl.weight,
                               state['blocks.6.0.conv_pwl.weight'])
    unloaded = build_orientation_estimator(config, load_pretrained=False)
    assert not torch.equal(unloaded.ground_encoder.conv_stem.weight, state['conv_stem.weight'])


def test_pool_head_is_the_default_and_old_configs_keep_it():
    pooled = tiny_orientation_config()
    old = {k: v for k, v in pooled.to_dict().items() if k not in ('head', 'weights')}
    assert OrientationEstimatorConfig.from_dict(old).head == 'pool'
    torch.manual_seed(0)
    a = build_orientation_estimator(pooled)
    assert a.classifier[0].in_features == 32  # fusion channels, pooled
    flat = build_orientation_estimator(tiny_orientation_config(head='flatten'))
    assert flat.classifier[0].in_features == 32 * 2 * 2  # 64 px at stride 32
    with pytest.raises(ValueError, match='head'):
        tiny_orientation_config(head='mean')
    # the flatten head sees where things are: moving one fused cell's content changes it
    fused = torch.zeros(1, 32, 2, 2)
    fused[0, :, 0, 0] = 1.0
    moved = torch.roll(fused, 1, dims=-1)
    assert not torch.allclose(flat.classifier(fused.flatten(1)),
                              flat.classifier(moved.flatten(1)))


def test_flatten_checkpoint_round_trip_never_reads_the_weights_file(tmp_path, b0_file):
    import shutil
    copy = tmp_path / 'b0.safetensors'
    shutil.copy(b0_file[0], copy)
    estimator_dict = b0_orientation_config(str(copy), bev_size_px=BEV_PX).to_dict()
    model_config = ModelConfig(kind='orientation', estimator=estimator_dict)
    model = build_model(model_config).eval()
    save_trained_model(tmp_path / 'ckpt', model, model_config, {'bev_px': BEV_PX}, None, {})
    copy.unlink()  # loading the checkpoint must not need the ImageNet file
    loaded, _, _ = load_trained_model(tmp_path / 'ckpt')
    sat, pano = torch.rand(1, 3, BEV_PX, BEV_PX), torch.rand(1, 3, 32, 64)
    yaw = torch.full((1,), math.pi / 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(sat, pano, yaw).logits, model(sat, pano, yaw).logits)
