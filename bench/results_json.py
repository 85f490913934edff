"""The one way the benchmark scripts write their JSON results.

The scripts in bench/ run as scripts (`python bench/<name>.py`), so this folder is on
sys.path and they import this module by name (tests load them the same way:
test/bench/bench_module.py).
"""
from __future__ import annotations

import json
from pathlib import Path


def write_json(path: str | Path, data, *, indent: int = 2, **dumps_kwargs) -> Path:
    """Write `data` as indented JSON (trailing newline) to `path`, creating its folder;
    returns the path. dumps_kwargs go to json.dumps (e.g. default=str)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, **dumps_kwargs) + '\n')
    return path
