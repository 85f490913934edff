"""Atomic directory writes: a set of files appears at a path all at once, or not at all.

The files are written and fsynced into a temporary sibling directory `.<name>.tmp-*`,
which is renamed into place (os.replace); an existing directory at the path is moved aside
to `.<name>.old-*` first and removed after the rename. A crash leaves the previous
directory or the new one, plus at worst a hidden `.<name>.old-*` / `.<name>.tmp-*`
sibling. Used by model checkpoints and training states.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
import shutil
import tempfile
import uuid


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, 'wb') as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _publish(staging: Path, path: Path) -> None:
    """Rename `staging` to `path`, moving an existing directory aside first."""
    if path.exists():
        old = path.with_name(f'.{path.name}.old-{uuid.uuid4().hex[:8]}')
        os.replace(path, old)
        try:
            os.replace(staging, path)
        except OSError:
            os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, path)
    with contextlib.suppress(OSError):  # make the rename durable where the OS allows it
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_directory_atomic(path: Path, files: dict[str, bytes]) -> None:
    """Replace the directory `path` by one holding `files` (name -> bytes, written in
    order), atomically; the parent directories are created as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{path.name}.tmp-', dir=path.parent))
    try:
        for name, data in files.items():
            _write_synced(staging / name, data)
        _publish(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
