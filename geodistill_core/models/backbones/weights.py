"""Reading local weight files and loading them strictly, with a report of every key."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
import logging
from pathlib import Path
import re

from safetensors.torch import load_file
import torch
from torch import nn

logger = logging.getLogger(__name__)


class WeightsMismatchError(ValueError):
    """A state dict does not match the module: missing/unexpected keys or shape mismatches."""


def read_state_dict(path: str | Path, how_to_get: str) -> dict[str, torch.Tensor]:
    """Tensors of a local weights file: `.safetensors`, otherwise torch.load(weights_only=True).

    how_to_get: appended to the FileNotFoundError (how to obtain the file once).
    A torch file may hold the state dict itself or {'state_dict' | 'model': state dict}.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'weights file not found: {path}. {how_to_get}')
    if path.suffix == '.safetensors':
        state_dict = load_file(str(path), device='cpu')
    else:
        state_dict = torch.load(path, map_location='cpu', weights_only=True)
        for wrapper in ('state_dict', 'model'):
            if isinstance(state_dict, Mapping) and isinstance(state_dict.get(wrapper), Mapping):
                state_dict = state_dict[wrapper]
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise ValueError(f'{path} does not hold a state dict (a mapping of names to tensors)')
    return dict(state_dict)


def load_state_dict_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor],
                           source: str, ignorable_unexpected: Iterable[str] = ()) -> None:
    """Copy `state_dict` into `module`, refusing any mismatch.

    ignorable_unexpected: regular expressions (full match) of file keys that may be left
        unused, e.g. r'classifier\\..*'. Every other key must match a module key with the
        same shape, and every module key must be present.
    source: named in the log and the error (a path, usually).
    Raises WeightsMismatchError listing missing, unexpected and mis-shaped keys.
    """
    patterns = [re.compile(p) for p in ignorable_unexpected]
    expected = module.state_dict()
    ignored = sorted(k for k in state_dict if k not in expected
                     and any(p.fullmatch(k) for p in patterns))
    unexpected = sorted(k for k in state_dict if k not in expected and k not in ignored)
    missing = sorted(k for k in expected if k not in state_dict)
    mis_shaped = sorted(
        f'{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}'
        for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape)
    if missing or unexpected or mis_shaped:
        for label, keys in (('missing', missing), ('unexpected', unexpected),
                            ('shape mismatch', mis_shaped)):
            if keys:
                logger.error('%s: %d %s keys: %s', source, len(keys), label, keys)
        raise WeightsMismatchError(
            f'weights from {source} do not match {type(module).__name__}: '
            f'{len(missing)} missing {missing[:5]}, {len(unexpected)} unexpected '
            f'{unexpected[:5]}, {len(mis_shaped)} shape mismatches {mis_shaped[:5]}. '
            'Check that the file belongs to this architecture (see the log for every key)')
    kept = {k: v for k, v in state_dict.items() if k in expected}
    module.load_state_dict(kept, strict=True)
    logger.info('%s: loaded %d tensors into %s; ignored %d allowed keys %s', source, len(kept),
                type(module).__name__, len(ignored), ignored[:8])
