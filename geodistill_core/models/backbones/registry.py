"""The backbone registry: name -> BackboneRecord, and `build_backbone(config)`."""
from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from geodistill_core.models.backbones import (
    dinov2_dpt,
    efficientnet_b0,
    efficientnet_lite0,
    vgg_unet,
)
from geodistill_core.models.backbones.config import BackboneConfig
from geodistill_core.models.backbones.record import BackboneRecord

logger = logging.getLogger(__name__)
_RECORDS: dict[str, BackboneRecord] = {}


def register_backbone(record: BackboneRecord) -> None:
    """Add a record; registering a second record under a taken name is an error."""
    if record.name in _RECORDS and _RECORDS[record.name] is not record:
        raise ValueError(f'backbone {record.name!r} is already registered')
    _RECORDS[record.name] = record


def list_backbones() -> list[str]:
    """Registered backbone names, sorted."""
    return sorted(_RECORDS)


def get_backbone_record(name: str) -> BackboneRecord:
    """The record for `name`; KeyError listing the known names otherwise."""
    try:
        return _RECORDS[name]
    except KeyError:
        raise KeyError(f'unknown backbone {name!r}; registered: {list_backbones()}') from None


def resolve_weights_path(config: BackboneConfig) -> str:
    """The weights file `config` asks for: its own path or the record's default.

    Raises FileNotFoundError naming the path and how to get the file.
    """
    record = get_backbone_record(config.name)
    if record.load_weights is None:
        raise ValueError(f'backbone {config.name!r} has no pretrained weights ('
                         f'{record.weights_hint}); pass pretrained=False')
    if config.weights is not None:
        path = config.weights
    elif record.default_weights is not None:
        path = record.default_weights()
    else:
        raise FileNotFoundError(f'backbone {config.name!r}: pretrained=True needs '
                                f'BackboneConfig.weights. {record.weights_hint}')
    if not Path(path).is_file():
        raise FileNotFoundError(f'backbone {config.name!r}: weights file not found: {path}. '
                                f'{record.weights_hint}')
    return str(path)


def build_backbone(config: BackboneConfig) -> nn.Module:
    """Build the backbone; load its weights when `config.pretrained`.

    The module maps preprocessed (B, 3, H, W) images (see `get_backbone_record(name)
    .preprocess`) to a list of levels (B, channels[l], H / strides_px[l], W / strides_px[l]).
    """
    record = get_backbone_record(config.name)
    path = resolve_weights_path(config) if config.pretrained else None
    model = record.constructor()
    if path is None:
        logger.info('backbone %s: random initialisation (pretrained=False)', config.name)
    else:
        record.load_weights(model, path)
    return model


for _module in (vgg_unet, efficientnet_b0, efficientnet_lite0, dinov2_dpt):
    for _record in _module.RECORDS:
        register_backbone(_record)
