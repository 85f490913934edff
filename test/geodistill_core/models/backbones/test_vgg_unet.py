"""VGG16 blocks 1-3 + U-Net decoder: shapes, gradients, size, torchvision weight layout."""
import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers

from geodistill_core.models.backbones import (
    BackboneConfig,
    WeightsMismatchError,
    build_backbone,
    get_backbone_record,
)
from geodistill_core.models.backbones.vgg_unet import TINY_DIMS, VggUnet, load_vgg16_weights


def test_tiny_shapes_and_gradients(check_tiny_backbone):
    check_tiny_backbone('vgg16_unet_tiny')


def test_levels_are_eighth_quarter_half_coarse_to_fine():
    record = get_backbone_record('vgg16_unet')
    assert record.strides_px == (8, 4, 2)
    assert record.channels == (256, 128, 64)


def test_full_size_parameter_count_about_2_4_million():
    model = build_backbone(BackboneConfig('vgg16_unet', weights=None, pretrained=False))
    encoder = sum(p.numel() for p in model.features.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert encoder == 1_735_488  # VGG16 conv1_1 .. conv3_3
    assert total == 2_473_152


def test_encoder_matches_torchvision_vgg16_features_layout():
    model = VggUnet()
    torchvision_features = make_layers(cfgs['D']).state_dict()
    ours = model.features.state_dict()
    assert all(int(k.split('.')[0]) <= 16 for k in ours)
    assert {k: v.shape for k, v in ours.items()} == {
        k: v.shape for k, v in torchvision_features.items() if int(k.split('.')[0]) <= 16}


def _torchvision_layout_file(tmp_path, extra=None, drop=None):
    """A torchvision-style vgg state dict for the tiny widths (blocks 1-5 + classifier)."""
    c1, c2, c3 = TINY_DIMS.block_channels
    layers = make_layers([c1, c1, 'M', c2, c2, 'M', c3, c3, c3, 'M', 8, 8, 8, 'M'])
    state_dict = {f'features.{k}': v for k, v in layers.state_dict().items()}
    state_dict['classifier.0.weight'] = torch.zeros(3, 4)
    state_dict.update(extra or {})
    state_dict.pop(drop, None)
    path = tmp_path / 'vgg16.pth'
    torch.save(state_dict, path)
    return str(path), state_dict


def test_loads_torchvision_layout_and_ignores_only_blocks_4_5_and_classifier(tmp_path, caplog):
    path, state_dict = _torchvision_layout_file(tmp_path)
    model = VggUnet(TINY_DIMS)
    decoder_before = {k: v.clone() for k, v in model.decode_2.state_dict().items()}
    with caplog.at_level('INFO'):
        load_vgg16_weights(model, path)
    torch.testing.assert_close(model.features[14].weight, state_dict['features.14.weight'],
                               rtol=0, atol=0)
    for key, value in model.decode_2.state_dict().items():
        assert torch.equal(value, decoder_before[key])  # the decoder keeps its random init
    assert 'classifier.0.weight' in caplog.text and 'features.17.weight' in caplog.text


@pytest.mark.parametrize('change', [
    {'extra': {'decoder.weight': torch.zeros(1)}},  # unknown key: not silently dropped
    {'drop': 'features.12.bias'},  # missing encoder tensor
    {'extra': {'features.14.weight': torch.zeros(16, 16, 1, 1)}},  # wrong shape
])
def test_mismatched_file_is_refused(tmp_path, change):
    path, _ = _torchvision_layout_file(tmp_path, **change)
    with pytest.raises(WeightsMismatchError, match='vgg16.pth'):
        load_vgg16_weights(VggUnet(TINY_DIMS), path)


def test_missing_weights_file_names_path_and_how_to_get_it(tmp_path):
    missing = str(tmp_path / 'nowhere' / 'vgg16.pth')
    with pytest.raises(FileNotFoundError, match='nowhere/vgg16.pth') as error:
        build_backbone(BackboneConfig('vgg16_unet', weights=missing, pretrained=True))
    assert "torchvision.models.vgg16(weights='IMAGENET1K_V1')" in str(error.value)
    with pytest.raises(FileNotFoundError, match='needs BackboneConfig.weights'):
        build_backbone(BackboneConfig('vgg16_unet', weights=None, pretrained=True))


def test_g2s_variant_has_g2sweakly_decoder_widths_and_the_same_encoder():
    """vgg16_unet_g2s: decoder 64 (1/4) and 16 (1/2) channels as G2SWeakly; parameter count
    by hand: decode_4 (256 + 128 -> 64, 64 -> 64) and decode_2 (64 + 64 -> 16, 16 -> 16),
    3x3 convolutions with bias, on top of VGG16 conv1_1 .. conv3_3."""
    record = get_backbone_record('vgg16_unet_g2s')
    assert record.channels == (256, 64, 16) and record.strides_px == (8, 4, 2)
    model = build_backbone(BackboneConfig('vgg16_unet_g2s', weights=None, pretrained=False))
    decoder = (384 * 64 * 9 + 64) + (64 * 64 * 9 + 64) + (128 * 16 * 9 + 16) + (16 * 16 * 9 + 16)
    assert sum(p.numel() for p in model.parameters()) == 1_735_488 + decoder
    levels = model(torch.randn(1, 3, 32, 64))
    assert [tuple(x.shape) for x in levels] == [(1, 256, 4, 8), (1, 64, 8, 16), (1, 16, 16, 32)]
    assert record.load_weights is load_vgg16_weights  # the same torchvision file
