"""EfficientNet-B0 (timm architecture `efficientnet_b0`), every stage as a feature level.

Weights: a timm-format state dict file (safetensors or torch). The classifier is the only
key allowed to go unused.
"""
from __future__ import annotations

from timm.models.efficientnet import _gen_efficientnet  # timm pinned in requirements.txt

from geodistill_core.models.backbones.efficientnet_trunk import (
    EFFICIENTNET_STRIDES_PX,
    EfficientNetTrunk,
)
from geodistill_core.models.backbones.preprocess import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    Preprocess,
)
from geodistill_core.models.backbones.record import BackboneRecord
from geodistill_core.models.backbones.weights import load_state_dict_strict, read_state_dict

B0_HINT = (
    'Save timm\'s ImageNet EfficientNet-B0 once on a connected machine: python -c "import timm; '
    'from safetensors.torch import save_file; save_file(timm.create_model(\'efficientnet_b0.'
    'ra_in1k\', pretrained=True).state_dict(), \'efficientnet_b0.safetensors\')" and pass its '
    'path as BackboneConfig.weights')


def build_efficientnet_b0(channel_multiplier: float = 1.0,
                          depth_multiplier: float = 1.0) -> EfficientNetTrunk:
    """EfficientNet-B0 trunk (multipliers < 1 give the tiny test variant), random weights."""
    return EfficientNetTrunk(_gen_efficientnet(
        'efficientnet_b0', channel_multiplier=channel_multiplier,
        depth_multiplier=depth_multiplier, pretrained=False, num_classes=0))


def load_efficientnet_b0_weights(model: EfficientNetTrunk, path: str) -> None:
    """Load a timm `efficientnet_b0` state dict; only `classifier.*` may go unused."""
    load_state_dict_strict(model.net, read_state_dict(path, B0_HINT), source=path,
                           ignorable_unexpected=[r'classifier\..+'])


_PREPROCESS = Preprocess(IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, input_multiple_px=32)
RECORDS = (
    BackboneRecord(
        name='efficientnet_b0', constructor=build_efficientnet_b0,
        load_weights=load_efficientnet_b0_weights, default_weights=None, weights_hint=B0_HINT,
        preprocess=_PREPROCESS, strides_px=EFFICIENTNET_STRIDES_PX,
        channels=(16, 24, 40, 80, 112, 192, 320, 1280)),
    BackboneRecord(
        name='efficientnet_b0_tiny', constructor=lambda: build_efficientnet_b0(0.25, 0.25),
        load_weights=None, default_weights=None,
        weights_hint='tiny test variant: random weights only', preprocess=_PREPROCESS,
        strides_px=EFFICIENTNET_STRIDES_PX, channels=(8, 8, 16, 24, 32, 48, 80, 320)),
)
