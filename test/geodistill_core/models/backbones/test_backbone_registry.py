"""Registry records, BackboneConfig validation and the pretrained/random choice."""
import dataclasses

import pytest

from geodistill_core.models.backbones import (
    BackboneConfig,
    build_backbone,
    get_backbone_record,
    list_backbones,
    register_backbone,
)
from geodistill_core.models.backbones.preprocess import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB

FULL = ('vgg16_unet', 'efficientnet_b0', 'efficientnet_lite0', 'dinov2_vitb14_dpt')
TINY = ('vgg16_unet_tiny', 'efficientnet_b0_tiny', 'efficientnet_lite0_tiny', 'dinov2_dpt_tiny')


def test_every_backbone_and_tiny_variant_is_registered():
    assert set(FULL + TINY) <= set(list_backbones())


@pytest.mark.parametrize(('name', 'mean', 'std', 'multiple'), [
    ('vgg16_unet', IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, 8),
    ('efficientnet_b0', IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, 32),
    ('efficientnet_lite0', (127 / 255,) * 3, (128 / 255,) * 3, 32),
    ('dinov2_vitb14_dpt', IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, 8),
])
def test_preprocessing_records(name, mean, std, multiple):
    for variant in (name, TINY[FULL.index(name)]):
        preprocess = get_backbone_record(variant).preprocess
        assert preprocess.mean_rgb == pytest.approx(mean)
        assert preprocess.std_rgb == pytest.approx(std)
        assert preprocess.input_multiple_px == multiple
    assert IMAGENET_MEAN_RGB == (0.485, 0.456, 0.406)
    assert IMAGENET_STD_RGB == (0.229, 0.224, 0.225)


def test_only_the_lite0_record_has_default_weights():
    assert [n for n in FULL + TINY if get_backbone_record(n).default_weights] == [
        'efficientnet_lite0']
    assert all(get_backbone_record(n).load_weights is None for n in TINY)


@pytest.mark.parametrize('name', [n for n in FULL + TINY if n != 'dinov2_vitb14_dpt'])
def test_pretrained_false_builds_random_weights(name):
    """Full-size DINOv2 construction is tested on the meta device (test_dinov2_dpt.py)."""
    assert build_backbone(BackboneConfig(name, weights=None, pretrained=False)) is not None


def test_config_requires_an_explicit_bool_choice():
    with pytest.raises(TypeError):
        BackboneConfig('vgg16_unet')  # no silent default to random weights
    with pytest.raises(TypeError, match='bool'):
        BackboneConfig('vgg16_unet', weights=None, pretrained='False')
    with pytest.raises(ValueError, match='pretrained=False'):
        BackboneConfig('vgg16_unet', weights='vgg16.pth', pretrained=False)
    config = BackboneConfig('vgg16_unet', weights='vgg16.pth', pretrained=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.pretrained = False


def test_config_dict_round_trip_and_architecture_only():
    config = BackboneConfig('efficientnet_lite0', weights='/w/lite0.pth', pretrained=True)
    assert BackboneConfig.from_dict(config.to_dict()) == config
    assert config.architecture_only() == BackboneConfig('efficientnet_lite0', None, False)
    with pytest.raises(ValueError, match='exactly the keys'):
        BackboneConfig.from_dict({'name': 'vgg16_unet', 'pretrained': False})


def test_tiny_variants_refuse_pretrained():
    with pytest.raises(ValueError, match='random weights only'):
        build_backbone(BackboneConfig('vgg16_unet_tiny', weights=None, pretrained=True))


def test_unknown_name_lists_registered_ones():
    with pytest.raises(KeyError, match='vgg16_unet'):
        get_backbone_record('resnet50')


def test_a_name_cannot_be_registered_twice():
    record = get_backbone_record('vgg16_unet')
    register_backbone(record)  # the same record again: harmless
    with pytest.raises(ValueError, match='already registered'):
        register_backbone(dataclasses.replace(record, weights_hint='other'))
