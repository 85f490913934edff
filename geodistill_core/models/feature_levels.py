"""One level of a feature extractor's output, shape-checked at the model boundary.

Extractors (backbones, encoders) return a list of feature maps indexed by level or a dict
{key: map}; an estimator picks the levels its config names.
"""
from __future__ import annotations

import torch


def select_level(outputs, key, channels: int, batch: int, name: str) -> torch.Tensor:
    """outputs[key] of an extractor's list/dict output, checked to be (batch, channels, h, w).

    name ('satellite', 'ground') only labels the error messages.
    """
    try:
        feature = outputs[key]
    except (KeyError, IndexError, TypeError) as error:
        available = list(outputs) if isinstance(outputs, dict) else f'{len(outputs)} levels'
        raise ValueError(f'{name} extractor output has no level {key!r} '
                         f'(it has {available})') from error
    if feature.dim() != 4 or feature.shape[0] != batch or feature.shape[1] != channels:
        raise ValueError(f'{name} level {key!r} must be (B, C, h, w) = ({batch}, {channels}, '
                         f'h, w), got {tuple(feature.shape)}')
    return feature
