"""Self-describing checkpoints: a directory with `model.safetensors` + `config.json`.

Layout (format version 1)::

    <path>/model.safetensors   every tensor of model.state_dict() (safetensors, no pickle)
    <path>/config.json         {"format": "geodistill-checkpoint", "format_version": 1,
                                "architecture", "hyper_parameters", "input_sizes",
                                "meters_per_px", ...the rest of the saved config...,
                                "provenance": {"date", "git_commit", "git_dirty", ...},
                                "geodistill_version", "weights": {"file", "sha256",
                                "num_tensors"}}

A directory (rather than one file) keeps the config readable and editable with any tool;
the SHA-256 of the weights in config.json binds the two files, so a damaged or swapped
weights file is detected. Writes go to a temporary sibling directory that is renamed into
place (os.replace): a crash leaves the previous checkpoint or the new one, plus at worst a
hidden `.<name>.old-*` / `.<name>.tmp-*` sibling. Loading never unpickles.

`load_checkpoint(path)` rebuilds the model from config.json alone through the
architecture registry: `register_architecture(name, builder)` with builder(config) ->
nn.Module, where config is the dict given to `save_checkpoint` after a JSON round trip
(tuples come back as lists). Builders build the architecture only, with random weights:
the checkpoint supplies every tensor. Modules that register built-in architectures are
listed in BUILTIN_ARCHITECTURE_MODULES and imported on first use.
"""
from __future__ import annotations

from collections.abc import Callable
import contextlib
from datetime import datetime, timezone
import hashlib
import importlib
import json
import logging
from pathlib import Path
import shutil
import subprocess
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
import torch
from torch import nn

from geodistill_core.atomic_dir import write_directory_atomic
from geodistill_core.models.backbones.weights import WeightsMismatchError, load_state_dict_strict
from geodistill_core.version import __version__

logger = logging.getLogger(__name__)

FORMAT_NAME = 'geodistill-checkpoint'
FORMAT_VERSION = 1
OLDEST_SUPPORTED_FORMAT_VERSION = 1
WEIGHTS_FILE = 'model.safetensors'
CONFIG_FILE = 'config.json'
REQUIRED_CONFIG_KEYS = ('architecture', 'hyper_parameters', 'input_sizes', 'meters_per_px')
RESERVED_KEYS = ('format', 'format_version', 'provenance', 'geodistill_version', 'weights')
BUILTIN_ARCHITECTURE_MODULES = ('geodistill_core.models.backbones.architecture',
                                'geodistill_core.training.models')

ArchitectureBuilder = Callable[[dict[str, Any]], nn.Module]
_ARCHITECTURES: dict[str, ArchitectureBuilder] = {}


class CheckpointError(RuntimeError):
    """Base of every checkpoint error; the message names the path, the problem and the fix."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint directory at the path."""


class CheckpointExistsError(CheckpointError, FileExistsError):
    """Saving would overwrite something that is not a checkpoint."""


class CorruptCheckpointError(CheckpointError, ValueError):
    """A file is missing, truncated, unparsable, or fails its checksum."""


class CheckpointFormatVersionError(CheckpointError, ValueError):
    """Written in a format version this geodistill cannot read."""


class UnknownArchitectureError(CheckpointError, ValueError):
    """No builder registered under the checkpoint's architecture name."""


class ArchitectureMismatchError(CheckpointError, ValueError):
    """The checkpoint holds another architecture than the one requested."""


class CheckpointConfigError(CheckpointError, ValueError):
    """The config is incomplete, not JSON-serialisable, or rejected by its builder."""


class CheckpointWeightsError(CheckpointError, WeightsMismatchError):
    """The tensors do not match the architecture (missing/unexpected keys, shapes)."""


def register_architecture(name: str, builder: ArchitectureBuilder) -> None:
    """Register builder(config) -> nn.Module (random weights) under `name`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f'architecture name must be a non-empty string, got {name!r}')
    if _ARCHITECTURES.get(name, builder) is not builder:
        raise ValueError(f'architecture {name!r} is already registered to '
                         f'{_ARCHITECTURES[name]!r}; choose another name')
    _ARCHITECTURES[name] = builder


def registered_architectures() -> list[str]:
    """Names with a builder (built-in modules imported first), sorted."""
    _import_builtin_architectures()
    return sorted(_ARCHITECTURES)


def _import_builtin_architectures() -> None:
    for module in BUILTIN_ARCHITECTURE_MODULES:
        importlib.import_module(module)


def _builder(name: Any, path: Path) -> ArchitectureBuilder:
    _import_builtin_architectures()
    if name not in _ARCHITECTURES:
        raise UnknownArchitectureError(
            f'{path}: unknown architecture {name!r}; registered: {sorted(_ARCHITECTURES)}. '
            'Import the module that calls register_architecture for it (or add it to '
            'geodistill_core.models.checkpoint.BUILTIN_ARCHITECTURE_MODULES)')
    return _ARCHITECTURES[name]


def _to_json(value: Any, what: str, path: Path) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise CheckpointConfigError(
            f'{path}: {what} is not JSON-serialisable ({error}); use plain dicts, lists, str, '
            'int, finite float, bool, None') from None


def _git_provenance() -> dict[str, Any]:
    """{'git_commit', 'git_dirty'} of the source tree, None where git cannot tell."""
    root = Path(__file__).resolve().parents[2]
    try:
        def git(*args: str) -> str:
            return subprocess.run(['git', *args], cwd=root, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        commit = git('rev-parse', 'HEAD')
        dirty = bool(git('status', '--porcelain', '--untracked-files=no'))
    except (OSError, subprocess.SubprocessError):
        return {'git_commit': None, 'git_dirty': None}
    return {'git_commit': commit, 'git_dirty': dirty}


def _cpu_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """state_dict on the CPU, contiguous, no two entries sharing storage (safetensors rule)."""
    tensors, seen = {}, set()
    for key, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointConfigError(f'state_dict entry {key!r} is not a tensor')
        tensor = value.detach().to('cpu')
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen or not tensor.is_contiguous():
            tensor = tensor.contiguous().clone()
        seen.add(tensor.untyped_storage().data_ptr())
        tensors[key] = tensor
    return tensors


def _check_rebuild(config: dict[str, Any], tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse to save what could not be loaded: the builder must recreate every key/shape."""
    builder = _builder(config['architecture'], path)
    try:
        with torch.device('meta'):
            rebuilt = builder(json.loads(json.dumps(config)))
    except Exception:  # builders that compute on tensors may not run on 'meta'
        try:
            rebuilt = builder(json.loads(json.dumps(config)))
        except Exception as error:
            raise CheckpointConfigError(f'{path}: the {config["architecture"]!r} builder '
                                        f'rejects the config: {error}') from error
    expected = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        differ = sorted(set(expected) ^ set(got)) + sorted(
            k for k in set(expected) & set(got) if expected[k] != got[k])
        raise CheckpointConfigError(
            f'{path}: the config does not rebuild this model (architecture '
            f'{config["architecture"]!r}); differing keys/shapes: {differ[:8]}. Save the '
            'config the model was built from')


def _check_overwritable(path: Path) -> None:
    if not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    config_file = path / CONFIG_FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(config_file.read_text()).get('format') == FORMAT_NAME:
            return
    raise CheckpointExistsError(f'{path} exists and is not a geodistill checkpoint; refusing '
                                'to overwrite it. Choose another path or remove it')


def save_checkpoint(path: str | Path, model: nn.Module, config: dict[str, Any],
                    provenance: dict[str, Any]) -> Path:
    """Write the checkpoint directory `path` atomically; returns it.

    config: JSON-serialisable dict with at least 'architecture' (a registered name),
        'hyper_parameters' (dict), 'input_sizes' (dict, e.g. {'ground_hw': [H, W]}) and
        'meters_per_px' (float, dict per level, or None where it does not apply); more
        keys are kept. The builder must rebuild `model`'s keys and shapes from it.
    provenance: e.g. {'dataset': ..., 'steps': ...}; 'date' (UTC ISO 8601), 'git_commit'
        and 'git_dirty' are filled in unless given.
    """
    path = Path(path)
    if not isinstance(config, dict) or not isinstance(provenance, dict):
        raise CheckpointConfigError(f'{path}: config and provenance must be dicts')
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in config]
    reserved = [k for k in RESERVED_KEYS if k in config]
    if missing or reserved:
        raise CheckpointConfigError(f'{path}: config lacks {missing} / uses reserved keys '
                                    f'{reserved}; required: {list(REQUIRED_CONFIG_KEYS)}')
    if not isinstance(config['hyper_parameters'], dict):
        raise CheckpointConfigError(f'{path}: config["hyper_parameters"] must be a dict')
    _to_json(config, 'config', path)
    provenance = {'date': datetime.now(timezone.utc).isoformat(timespec='seconds'),
                  **_git_provenance(), **provenance}
    tensors = _cpu_tensors(model)
    _check_rebuild(config, tensors, path)
    _check_overwritable(path)
    weights = save_safetensors_bytes(tensors, metadata={'format': 'pt'})
    record = {**config, 'format': FORMAT_NAME, 'format_version': FORMAT_VERSION,
              'geodistill_version': __version__, 'provenance': provenance,
              'weights': {'file': WEIGHTS_FILE, 'sha256': hashlib.sha256(weights).hexdigest(),
                          'num_tensors': len(tensors)}}
    text = _to_json(record, 'provenance', path)
    write_directory_atomic(path, {WEIGHTS_FILE: weights, CONFIG_FILE: text.encode()})
    logger.info('saved checkpoint %s (%s, %d tensors)', path, config['architecture'],
                len(tensors))
    return path


def read_checkpoint_config(path: str | Path) -> dict[str, Any]:
    """config.json of the checkpoint at `path`, validated (format, version, required keys)."""
    path = Path(path)
    if not path.is_dir():
        hint = (f' A checkpoint is a directory; pass {path.parent}' if path.name in
                (WEIGHTS_FILE, CONFIG_FILE) else ' Check the path, or train/save one first')
        raise CheckpointNotFoundError(f'no checkpoint directory at {path}.{hint}')
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise CorruptCheckpointError(f'{config_file} is missing: incomplete checkpoint. '
                                     'Re-save it or restore it from a backup')
    try:
        record = json.loads(config_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptCheckpointError(f'{config_file} is not valid JSON ({error}); restore '
                                     'it from a backup or re-save the checkpoint') from None
    if not isinstance(record, dict) or record.get('format') != FORMAT_NAME:
        raise CorruptCheckpointError(f'{config_file} is not a geodistill checkpoint config '
                                     f'("format" must be {FORMAT_NAME!r})')
    version = record.get('format_version')
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptCheckpointError(f'{config_file}: format_version must be an integer, got '
                                     f'{version!r}')
    if version > FORMAT_VERSION:
        raise CheckpointFormatVersionError(
            f'{path}: format version {version} is newer than the supported {FORMAT_VERSION} '
            f'(written by geodistill {record.get("geodistill_version")}, this is '
            f'{__version__}); upgrade geodistill to load it')
    if version < OLDEST_SUPPORTED_FORMAT_VERSION:
        raise CheckpointFormatVersionError(
            f'{path}: format version {version} is older than the oldest supported '
            f'{OLDEST_SUPPORTED_FORMAT_VERSION}; load it with geodistill '
            f'{record.get("geodistill_version")} and save it again')
    missing = [k for k in (*REQUIRED_CONFIG_KEYS, 'weights', 'provenance') if k not in record]
    if missing:
        raise CorruptCheckpointError(f'{config_file} lacks the keys {missing}')
    if not isinstance(record['weights'], dict) or not isinstance(
            record['weights'].get('sha256'), str):
        raise CorruptCheckpointError(f'{config_file}: "weights" must hold the "sha256" of '
                                     f'{WEIGHTS_FILE}')
    return record


def update_checkpoint_config(path: str | Path, update: Callable[[dict[str, Any]], None],
                             out: str | Path | None = None) -> Path:
    """Apply ``update(record)`` (which edits the dict in place, or raises) to the config.json
    of the checkpoint at `path`: in place (out None) or in a copy of the checkpoint at `out`,
    which must not exist. The update runs before anything is copied, so a refused update
    leaves no copy; config.json is replaced atomically. Returns the updated folder. The
    weights are untouched (inference-time settings such as a calibration)."""
    path = Path(path)
    record = json.loads((path / CONFIG_FILE).read_text())
    update(record)
    target = path
    if out is not None:
        target = Path(out)
        if target.exists():
            raise FileExistsError(f'{target} exists; choose a new output folder')
        shutil.copytree(path, target)
    config_file = target / CONFIG_FILE
    tmp = config_file.with_suffix('.json.tmp')
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + '\n')
    tmp.replace(config_file)
    return target


def _read_tensors(path: Path, record: dict[str, Any]) -> dict[str, torch.Tensor]:
    weights_file = path / WEIGHTS_FILE
    if not weights_file.is_file():
        raise CorruptCheckpointError(f'{weights_file} is missing: incomplete checkpoint. '
                                     'Restore it from a backup or re-save the checkpoint')
    data = weights_file.read_bytes()
    try:
        tensors = load_safetensors_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CorruptCheckpointError(
            f'{weights_file} is not a readable safetensors file ({len(data)} bytes: '
            f'truncated or damaged: {error}); restore it from a backup or re-save') from None
    if hashlib.sha256(data).hexdigest() != record['weights']['sha256']:
        raise CorruptCheckpointError(
            f'{weights_file}: SHA-256 differs from {CONFIG_FILE}: the weights were modified '
            'or belong to another checkpoint. Restore the pair from one save')
    return tensors


def load_checkpoint(path: str | Path, architecture: str | None = None,
                    device: str | torch.device = 'cpu') -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved at `path` from its config alone.

    architecture: when given, the checkpoint must hold this architecture.
    Returns (model in eval mode on `device`, the full config.json record).
    Raises a CheckpointError subclass naming the path, the problem and the fix.
    """
    path = Path(path)
    record = read_checkpoint_config(path)
    name = record['architecture']
    if architecture is not None and name != architecture:
        raise ArchitectureMismatchError(f'{path} holds architecture {name!r}, not the '
                                        f'requested {architecture!r}; pass the right checkpoint')
    builder = _builder(name, path)
    tensors = _read_tensors(path, record)
    config = {k: v for k, v in record.items() if k not in RESERVED_KEYS}
    try:
        model = builder(config)
    except Exception as error:
        raise CheckpointConfigError(f'{path}: the {name!r} builder rejected the saved config: '
                                    f'{error}') from error
    try:
        load_state_dict_strict(model, tensors, source=str(path / WEIGHTS_FILE))
    except WeightsMismatchError as error:
        raise CheckpointWeightsError(f'{path}: {error}') from None
    logger.info('loaded checkpoint %s (%s, saved %s)', path, name,
                record['provenance'].get('date'))
    return model.to(device).eval(), record
