"""Checkpoint architecture 'backbone': a bare backbone saved and loaded on its own."""
from __future__ import annotations

from typing import Any

from torch import nn

from geodistill_core.models.backbones.config import BackboneConfig
from geodistill_core.models.backbones.registry import build_backbone
from geodistill_core.models.checkpoint import register_architecture

ARCHITECTURE = 'backbone'


def backbone_checkpoint_config(config: BackboneConfig,
                               input_hw: tuple[int, int] | None = None) -> dict[str, Any]:
    """The `save_checkpoint` config of a bare backbone (input_hw: (H, W) px it was used at)."""
    return {'architecture': ARCHITECTURE,
            'hyper_parameters': {'backbone': config.to_dict()},
            'input_sizes': {'image_hw': list(input_hw) if input_hw else None},
            'meters_per_px': None}


def build_backbone_architecture(config: dict[str, Any]) -> nn.Module:
    """Checkpoint builder: the backbone's architecture with random weights (the checkpoint
    supplies them; the pretrained file named in the config is not needed)."""
    backbone = BackboneConfig.from_dict(config['hyper_parameters']['backbone'])
    return build_backbone(backbone.architecture_only())


register_architecture(ARCHITECTURE, build_backbone_architecture)
