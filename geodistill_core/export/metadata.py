"""The JSON record written beside an exported ONNX model (`<name>.json`).

It holds everything a consumer needs besides the graph: what goes in (names, shapes,
dtypes, the preprocessing to do before the graph and the normalisation done inside it),
what comes out (heatmap frame, cell size, the score temperature), the heatmap calibration
of the checkpoint (its config.json `calibration` block, identity when absent), the
defaults of the checkpoint (camera height, trained metres per pixel) and the source
(checkpoint path and the SHA-256 of its weights and config, which `OnnxLocationRunner`
checks against the checkpoint it serves). The whole checkpoint config.json is copied
beside it as `config.json`.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

EXPORT_FORMAT = 'geodistill-onnx'
EXPORT_FORMAT_VERSION = 1
CHECKPOINT_FILES = ('config.json', 'model.safetensors')


def checkpoint_digest(checkpoint_dir: str | Path) -> dict[str, str]:
    """SHA-256 of the checkpoint's config.json and model.safetensors (file name -> hex)."""
    checkpoint_dir = Path(checkpoint_dir)
    digest = {}
    for name in CHECKPOINT_FILES:
        path = checkpoint_dir / name
        if not path.is_file():
            raise FileNotFoundError(f'{path} is missing: {checkpoint_dir} is not a geodistill '
                                    'checkpoint directory (config.json + model.safetensors)')
        digest[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def metadata_bytes(record: dict[str, Any]) -> bytes:
    """The record with format and version added, as indented JSON bytes."""
    text = json.dumps({'format': EXPORT_FORMAT, 'format_version': EXPORT_FORMAT_VERSION,
                       **record}, indent=2, sort_keys=True)
    return (text + '\n').encode()


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The record at `path`, checked for format and version."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path} is missing: export the checkpoint with '
                                '`geodistill-export --checkpoint DIR --out DIR`')
    record = json.loads(path.read_text())
    if record.get('format') != EXPORT_FORMAT:
        raise ValueError(f'{path} is not a geodistill ONNX export record (format '
                         f'{record.get("format")!r}); re-export the checkpoint')
    if record.get('format_version') != EXPORT_FORMAT_VERSION:
        raise ValueError(f'{path} has export format version {record.get("format_version")}, '
                         f'this version reads {EXPORT_FORMAT_VERSION}; re-export the checkpoint')
    return record
