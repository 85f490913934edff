"""Configs as JSON, their diff (resume refusal) and typed command-line overrides.

`to_dict` / `from_dict` are generic over the config dataclasses (tuples come back from
JSON lists; unknown keys and wrong types are errors). `check_resume_config` raises
`ConfigMismatchError` listing every differing dotted key. `apply_overrides(config,
['optim.lr=3e-4', ...])` parses each value with its field's type (booleans only from
true/false/1/0/yes/no/on/off; other structured values as JSON).
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
import json
from pathlib import Path
import types
import typing
from typing import Any, Union

from geodistill_core.training.config import TrainConfig


class ConfigMismatchError(ValueError):
    """The run directory holds a config different from the one given (resume refused)."""


def to_dict(config: Any) -> Any:
    """Nested JSON-ready dict of a config dataclass (tuples become lists)."""
    if is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in fields(config)}
    if isinstance(config, (tuple, list)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {str(k): to_dict(v) for k, v in config.items()}
    return config


def _strip_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp, True
    return tp, False


def _convert(tp, value: Any, where: str) -> Any:
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ValueError(f'{where}: None is not allowed')
    if is_dataclass(tp):
        return from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f'{where}: expected a list, got {value!r}')
        item_types = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(item_types) != len(value):
            raise ValueError(f'{where}: expected {len(item_types)} values, got {value!r}')
        return tuple(_convert(t, v, where) for t, v in zip(item_types, value, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f'{where}: expected a mapping, got {value!r}')
        value_type = typing.get_args(tp)[1]
        return {str(k): _convert(value_type, v, f'{where}.{k}') if value_type is not Any else v
                for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f'{where}: expected true or false, got {value!r}')
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f'{where}: expected an integer, got {value!r}')
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f'{where}: expected a number, got {value!r}')
        return float(value)
    if tp is str and not isinstance(value, str):
        raise ValueError(f'{where}: expected a string, got {value!r}')
    return value


def from_dict(cls, values: dict[str, Any], where: str = ''):
    """Inverse of `to_dict` for the dataclass `cls`; unknown keys and bad types are errors."""
    if not isinstance(values, dict):
        raise ValueError(f'{where or cls.__name__}: expected a mapping, got {values!r}')
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f'{where or cls.__name__}: unknown keys {unknown}; known: '
                         f'{sorted(known)}')
    kwargs = {k: _convert(hints[k], v, f'{where}.{k}'.lstrip('.')) for k, v in values.items()}
    return cls(**kwargs)


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write the config as JSON (sorted keys) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(json.dumps(to_dict(config), indent=2, sort_keys=True) + '\n')
    tmp.replace(path)
    return path


def load_config(path: str | Path) -> TrainConfig:
    """Read a config written by `save_config`."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f'cannot read training config {path}: {error}') from None
    return from_dict(TrainConfig, values)


def _flatten(values: Any, prefix: str = '') -> dict[str, Any]:
    if isinstance(values, dict):
        out = {}
        for k, v in values.items():
            out.update(_flatten(v, f'{prefix}{k}.'))
        return out or {prefix.rstrip('.'): {}}
    return {prefix.rstrip('.'): values}


def config_diff(old: TrainConfig, new: TrainConfig) -> list[str]:
    """Lines 'key: old -> new' for every dotted key whose value differs."""
    a, b = _flatten(to_dict(old)), _flatten(to_dict(new))
    missing = '<absent>'
    lines = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            lines.append(f'{key}: {va!r} -> {vb!r}')
    return lines


# Keys a resumed run may change: more epochs extend a (finished) run, as if it had been
# started with them (the state resumes at its step; a constant learning-rate schedule makes
# the result the same as one longer run).
EXTENDABLE_KEYS = ('loop.epochs',)


def check_resume_config(saved_path: str | Path, config: TrainConfig) -> bool:
    """Raise ConfigMismatchError (with the diff) if the saved config differs from `config`
    in anything but a larger loop.epochs; returns whether the run is extended (then the
    caller saves the new config)."""
    saved = load_config(saved_path)
    diff = config_diff(saved, config)
    extended = [line for line in diff if line.split(':', 1)[0] in EXTENDABLE_KEYS]
    if extended and config.loop.epochs < saved.loop.epochs:
        raise ConfigMismatchError(
            f'{saved_path}: loop.epochs {saved.loop.epochs} -> {config.loop.epochs}: a run '
            'can be extended with more epochs, not shortened; use a new output directory')
    diff = [line for line in diff if line not in extended]
    if diff:
        raise ConfigMismatchError(
            f'{saved_path} was written by a run with a different config; refusing to resume. '
            'Use a new output directory (or remove this one) to start over. Differences '
            '(saved -> given):\n  ' + '\n  '.join(diff))
    return bool(extended)


def _parse_scalar(text: str, tp, key: str):
    tp, optional = _strip_optional(tp)
    if optional and text.strip().lower() in ('none', 'null'):
        return None
    if tp is bool:
        lowered = text.strip().lower()
        if lowered in ('true', '1', 'yes', 'on'):
            return True
        if lowered in ('false', '0', 'no', 'off'):
            return False
        raise ValueError(f'{key}: expected a boolean (true/false), got {text!r}')
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is str:
        return text
    try:
        return _convert(tp, json.loads(text), key)
    except json.JSONDecodeError:
        raise ValueError(f'{key}: expected JSON for this field (e.g. [1, 2]), got '
                         f'{text!r}') from None


def apply_overrides(config, overrides: list[str] | tuple[str, ...]):
    """Return `config` with 'dotted.key=value' overrides applied (values parsed by type)."""
    for item in overrides:
        key, sep, text = item.partition('=')
        if not sep:
            raise ValueError(f'override {item!r} must look like section.field=value')
        config = _replace_path(config, key.strip().split('.'), text, key.strip())
    return config


def _replace_path(config, parts: list[str], text: str, key: str):
    names = {f.name for f in fields(config)}
    if parts[0] not in names:
        raise ValueError(f'{key}: no field {parts[0]!r} in {type(config).__name__} '
                         f'(fields: {sorted(names)})')
    if len(parts) > 1:
        child = getattr(config, parts[0])
        if not is_dataclass(child):
            raise ValueError(f'{key}: {parts[0]!r} has no sub-fields')
        return replace(config, **{parts[0]: _replace_path(child, parts[1:], text, key)})
    tp = typing.get_type_hints(type(config))[parts[0]]
    return replace(config, **{parts[0]: _parse_scalar(text, tp, key)})
