"""BackboneRecord: one registry entry tying an architecture to its weights and preprocessing."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from geodistill_core.models.backbones.preprocess import Preprocess


@dataclass(frozen=True)
class BackboneRecord:
    """What the registry knows about one backbone.

    name: registry key (`BackboneConfig.name`).
    constructor: () -> nn.Module, the architecture with random weights. Its forward takes
        preprocessed images (B, 3, H, W) and returns a list of feature maps, level l of
        shape (B, channels[l], H / strides_px[l], W / strides_px[l]).
    load_weights: (module, path) -> None, loads a local pretrained file strictly (raises
        on missing/unexpected keys outside the documented allow-list); None when no
        pretrained weights exist (tiny test variants).
    default_weights: () -> path used when `BackboneConfig.weights` is None, or None.
    weights_hint: how to obtain the weights file once, on a connected machine.
    preprocess: normalisation and input multiple the weights need.
    strides_px, channels: per output level.
    """

    name: str
    constructor: Callable[[], nn.Module]
    load_weights: Callable[[nn.Module, str], None] | None
    default_weights: Callable[[], str] | None
    weights_hint: str
    preprocess: Preprocess
    strides_px: tuple[int, ...]
    channels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.strides_px) != len(self.channels):
            raise ValueError(f'{self.name}: {len(self.strides_px)} strides but '
                             f'{len(self.channels)} channel counts')
        for stride in self.strides_px:
            if self.preprocess.input_multiple_px % stride:
                raise ValueError(f'{self.name}: input multiple {self.preprocess.input_multiple_px}'
                                 f' px is not divisible by the output stride {stride}')
