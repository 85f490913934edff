"""Atomic training-state checkpoints: resume after an interruption.

Layout of a state directory (format 'geodistill-training-state', version 1)::

    <dir>/meta.json               progress (step, epoch, batch in epoch, best, history...),
                                  module names, SHA-256 of every other file
    <dir>/<module>.safetensors    weights of each named module (the model, the teacher...)
    <dir>/optim.pt                {'optimizer', 'scheduler', 'scaler'} state dicts
    <dir>/rng.pt                  torch (CPU + CUDA), numpy and python RNG states

The .pt files hold only tensors and plain containers written by this module and are read
with torch.load(weights_only=True): nothing is ever unpickled. A save writes a temporary
sibling directory and renames it into place (os.replace), so a crash leaves either the
previous state or the new one; a damaged file is detected by its checksum.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
from pathlib import Path
import random
from typing import Any

import numpy as np
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
import torch
from torch import nn

from geodistill_core.atomic_dir import write_directory_atomic
from geodistill_core.models.backbones import load_state_dict_strict

logger = logging.getLogger(__name__)

STATE_FORMAT = 'geodistill-training-state'
STATE_FORMAT_VERSION = 1
META_FILE = 'meta.json'


class TrainingStateError(RuntimeError):
    """A training state is missing, damaged, or does not fit the run."""


def _module_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in module.state_dict().items():
        out[key] = value.detach().to('cpu').contiguous().clone()
    return out


def rng_state() -> dict[str, Any]:
    """Every global RNG state as tensors and plain lists (weights_only-loadable)."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        'torch': torch.get_rng_state(),
        'numpy': {'name': np_state[0], 'keys': torch.from_numpy(np_state[1].astype(np.int64)),
                  'pos': int(np_state[2]), 'has_gauss': int(np_state[3]),
                  'cached_gaussian': float(np_state[4])},
        'python': {'version': py_version, 'internal': list(py_internal), 'gauss': py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() returned."""
    torch.set_rng_state(state['torch'])
    n = state['numpy']
    np.random.set_state((n['name'], n['keys'].numpy().astype(np.uint32), n['pos'],
                         n['has_gauss'], n['cached_gaussian']))
    p = state['python']
    random.setstate((p['version'], tuple(p['internal']), p['gauss']))
    if 'cuda' in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(state['cuda'])


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_training_state(path: str | Path, modules: dict[str, nn.Module],
                        optimizer: torch.optim.Optimizer, progress: dict[str, Any],
                        scheduler=None, scaler=None) -> Path:
    """Write the training state directory `path` atomically; returns it.

    modules: name -> module (weights saved as <name>.safetensors).
    progress: JSON-serialisable dict (step, epoch, ...), returned by load_training_state.
    """
    path = Path(path)
    files: dict[str, bytes] = {}
    for name, module in modules.items():
        files[f'{name}.safetensors'] = save_safetensors_bytes(_module_tensors(module))
    files['optim.pt'] = _torch_bytes({
        'optimizer': optimizer.state_dict(),
        'scheduler': scheduler.state_dict() if scheduler is not None else None,
        'scaler': scaler.state_dict() if scaler is not None else None})
    files['rng.pt'] = _torch_bytes(rng_state())
    meta = {'format': STATE_FORMAT, 'format_version': STATE_FORMAT_VERSION,
            'modules': sorted(modules), 'progress': progress,
            'sha256': {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
    try:
        text = json.dumps(meta, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TrainingStateError(f'{path}: progress is not JSON-serialisable: {error}') from None
    write_directory_atomic(path, {**files, META_FILE: text.encode()})
    logger.debug('saved training state %s (step %s)', path, progress.get('step'))
    return path


def read_training_meta(path: str | Path) -> dict[str, Any]:
    """meta.json of the state at `path` (validated)."""
    path = Path(path)
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise TrainingStateError(f'no training state at {path} ({META_FILE} missing)')
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise TrainingStateError(f'{meta_file} is unreadable ({error}); delete {path} to '
                                 'restart from the last model checkpoint') from None
    if meta.get('format') != STATE_FORMAT or meta.get('format_version') != STATE_FORMAT_VERSION:
        raise TrainingStateError(f'{meta_file} is not a {STATE_FORMAT} v{STATE_FORMAT_VERSION}')
    return meta


def _read_checked(path: Path, name: str, meta: dict[str, Any]) -> bytes:
    file = path / name
    if not file.is_file():
        raise TrainingStateError(f'{file} is missing: incomplete training state')
    data = file.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta['sha256'].get(name):
        raise TrainingStateError(f'{file} fails its SHA-256 check: damaged training state')
    return data


def load_training_state(path: str | Path, modules: dict[str, nn.Module],
                        optimizer: torch.optim.Optimizer, scheduler=None, scaler=None,
                        restore_rng: bool = True) -> dict[str, Any]:
    """Load a state written by save_training_state into the given objects (in place).

    Module names must match those saved; weights must match exactly (keys and shapes).
    Returns the saved progress dict.
    """
    path = Path(path)
    meta = read_training_meta(path)
    if sorted(modules) != meta['modules']:
        raise TrainingStateError(f'{path} holds modules {meta["modules"]}, this run has '
                                 f'{sorted(modules)}')
    for name, module in modules.items():
        tensors = load_safetensors_bytes(_read_checked(path, f'{name}.safetensors', meta))
        load_state_dict_strict(module, tensors, source=str(path / f'{name}.safetensors'))
    optim = torch.load(io.BytesIO(_read_checked(path, 'optim.pt', meta)), weights_only=True)
    optimizer.load_state_dict(optim['optimizer'])
    if scheduler is not None and optim['scheduler'] is not None:
        scheduler.load_state_dict(optim['scheduler'])
    if scaler is not None and optim['scaler'] is not None:
        scaler.load_state_dict(optim['scaler'])
    if restore_rng:
        set_rng_state(torch.load(io.BytesIO(_read_checked(path, 'rng.pt', meta)),
                                 weights_only=True))
    return meta['progress']
