"""The validation drives of a make_synthetic output folder, as (bag, map) pairs.

A validation root (the model cards' `calibration` / `calibration_panorama` presets, seed
1000) holds ``kitti/`` (the synthetic KITTI export with ``synthetic_kitti.json``: drives,
their dates and cities, each city's GeoTIFF) and ``bags/<date>`` (each drive converted by
geodistill-kitti2bag). Used by make_default_model's post-training steps and by the fusion
validation benchmark; never pointed at a test split or a demo drive.
"""
from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path

PRESETS = {'pinhole': 'calibration', 'panorama': 'calibration_panorama'}


@dataclass(frozen=True)
class ValidationDrive:
    date: str
    city: str
    bag: Path
    map_path: Path


def validation_drives(root: Path, camera: str = 'pinhole') -> list[ValidationDrive]:
    """The drives under ``root``; a missing export or bag is an error that says how to
    make it (``camera`` picks the preset named in the message)."""
    root = Path(root)
    kitti = root / 'kitti'
    meta_file = kitti / 'synthetic_kitti.json'
    if not meta_file.is_file():
        raise FileNotFoundError(
            f'{meta_file} is missing: make the validation drives first (python '
            f'train/make_synthetic.py --preset {PRESETS.get(camera, "calibration")} --out '
            f'{root} --seed 1000 --layout kitti, then geodistill-kitti2bag each drive into '
            '<root>/bags/<date> --seed 1000; see the model card)')
    meta = json.loads(meta_file.read_text())
    drives = [ValidationDrive(d['date'], d['city'], root / 'bags' / d['date'],
                              (kitti / meta['cities'][d['city']]['map']).resolve())
              for d in meta['drives']]
    missing = [str(d.bag) for d in drives if not (d.bag / 'metadata.yaml').is_file()]
    if missing:
        raise FileNotFoundError(f'validation bags missing: {missing}; convert the drives with '
                                'geodistill-kitti2bag (model card)')
    return drives
