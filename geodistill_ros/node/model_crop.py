"""The satellite crop a location checkpoint was trained on, for the node's crop parameters.

``model_crop(checkpoint, camera_model) -> (crop_size_m, crop_size_px) | None``, from the
first of:

1. the checkpoint's ``meters_per_px`` (at the model's satellite input);
2. ``node_defaults.json`` beside its ``config.json``: ``{"meters_per_px": <float>}``, the
   metres/pixel at the model's satellite input (for checkpoints trained on cities of
   different resolution, which record None);
3. KITTI-trained checkpoints: the reader's crop (sat_crop_px satmap pixels at
   satmap_meters_per_px), cut at that many pixels;
4. VIGOR-layout training (official or synthetic cities named in the training config): the
   mean of the training cities' 640-px tile resolution, scaled to the satellite input
   (640 / sat_size), e.g. the synthetic training cities: 0.110 x 640 / 256 = 0.275 m/px.

With 1, 2 and 4 the crop is meters_per_px x satellite side metres, cut at twice that many
pixels (the Localizer resizes, antialiased). ``crop_parameters`` turns it into node
parameters; a panorama model with none of these is an error naming the fixes (the node's
defaults fit KITTI-like pinhole models only).
"""
from __future__ import annotations

import json
from pathlib import Path

NODE_DEFAULTS_FILE = 'node_defaults.json'


def checkpoint_dir(checkpoint: str, camera_model: str) -> Path:
    """The checkpoint folder ('' = the embedded default model of camera_model)."""
    from geodistill_core.localizer import ASSETS_DIR
    return Path(checkpoint) if checkpoint else ASSETS_DIR / f'default_{camera_model}_location'


def _positive(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _vigor_training_meters_per_px(data: dict, side: int) -> float | None:
    """Mean training-city resolution at a sat_size input (rule 4), or None if unknown."""
    from geodistill_core.data.synthetic.georef import SYNTHETIC_CITIES
    from geodistill_core.data.vigor_labels import VIGOR_METERS_PER_PX_640, VIGOR_TILE_SIZE_PX
    known = {**VIGOR_METERS_PER_PX_640,
             **{name: c.meters_per_px_640 for name, c in SYNTHETIC_CITIES.items()},
             **(data.get('meters_per_px_640') or {})}
    cities = data.get('cities') or ()
    if not cities or any(_positive(known.get(c)) is None for c in cities):
        return None
    sat_size = int(data.get('sat_size') or side)
    mean_640 = sum(float(known[c]) for c in cities) / len(cities)
    return mean_640 * VIGOR_TILE_SIZE_PX / sat_size


def model_crop(checkpoint: str, camera_model: str) -> tuple[float, int] | None:
    """(crop_size_m, crop_size_px) matching a checkpoint's training crops, or None (module
    doc). checkpoint '' = the embedded default model of camera_model."""
    path = checkpoint_dir(checkpoint, camera_model)
    try:
        record = json.loads((path / 'config.json').read_text())
        side = int(record['input_sizes']['satellite_hw'][0])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    mpp = _positive(record.get('meters_per_px'))
    if mpp is None and (path / NODE_DEFAULTS_FILE).is_file():
        defaults = json.loads((path / NODE_DEFAULTS_FILE).read_text())
        mpp = _positive(defaults.get('meters_per_px'))
        if mpp is None:
            raise ValueError(f'{path / NODE_DEFAULTS_FILE}: meters_per_px must be a positive '
                             f'number, got {defaults.get("meters_per_px")!r}')
    data = (record.get('training_config') or {}).get('data') or {}
    if mpp is None and data.get('dataset') == 'kitti':
        from geodistill_core.data.kitti import KittiConfig
        options = data.get('reader_options') or {}
        crop_px = int(options.get('sat_crop_px', KittiConfig.sat_crop_px))
        return float(options.get('satmap_meters_per_px',
                                 KittiConfig.satmap_meters_per_px)) * crop_px, crop_px
    if mpp is None and data.get('dataset') == 'vigor':
        mpp = _vigor_training_meters_per_px(data, side)
    return None if mpp is None else (mpp * side, 2 * side)


def crop_parameters(checkpoint: str, camera_model: str, params: dict) -> dict:
    """Node parameters crop_size_m / crop_size_px for the model, {} when ``params`` sets
    crop_size_m itself. A panorama model whose crop is unknown raises ValueError."""
    if 'crop_size_m' in params:
        return {}
    crop = model_crop(checkpoint, camera_model)
    if crop is not None:
        return {'crop_size_m': crop[0], 'crop_size_px': crop[1]}
    if camera_model == 'panorama':
        path = checkpoint_dir(checkpoint, camera_model)
        raise ValueError(
            f'the satellite resolution of the panorama model {path} is unknown (its '
            'config.json records no meters_per_px, no node_defaults.json beside it, no '
            'training cities of known resolution): write {"meters_per_px": <m/px at its '
            f'satellite input>}} to {path / NODE_DEFAULTS_FILE}, or pass crop_size_m and '
            'crop_size_px (-p crop_size_m:=70.4 -p crop_size_px:=512)')
    return {}
