"""Shared helpers of the synthetic exporters: per-item seeds and atomic file writes.

A write goes to a temporary file `.<name>.tmp` in the same folder and is renamed into
place (os.replace), so an interrupted export leaves whole files only and resumes where it
stopped; each item's seed depends only on its integer keys, never on what was written.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np


def item_seed(*keys: int) -> int:
    """A 32-bit seed from integer keys (SeedSequence), e.g. item_seed(seed, city, purpose, i)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_image(path: Path, rgb: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an RGB uint8 image atomically; the format follows the suffix (.png or .jpg)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if path.suffix == '.jpg' else []
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:
        raise RuntimeError(f'OpenCV could not encode {path}')
    write_bytes_atomic(path, buf.tobytes())


def write_json_atomic(path: Path, obj) -> None:
    """Write ``obj`` as indented, key-sorted JSON (one trailing newline) atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode())
