"""Checkpoint records for evaluation: provenance, the test-split guard, the reader config.

Everything here reads the checkpoints' config.json only (no weights), so a refused
evaluation fails before any model is built.

Guard: a checkpoint whose training config selected its best epoch on the split being
evaluated (same dataset, `data.val_split` == split) is refused, and so is every base
checkpoint it was distilled from (followed through `provenance.base_checkpoint` while
that folder exists): numbers on the selection split are not test numbers.
"""
from __future__ import annotations

from dataclasses import replace
import json
import logging
from pathlib import Path
from typing import Any

from geodistill_core.evaluation.config import EvalConfig
from geodistill_core.models.checkpoint import read_checkpoint_config
from geodistill_core.training.config import DataConfig
from geodistill_core.training.config_json import apply_overrides, from_dict

logger = logging.getLogger(__name__)
MAX_BASE_CHAIN = 8
RESERVED_DATA_FIELDS = ('dataset', 'yaw_noise_deg', 'seed')
# Written by data.synthetic.export_vigor: {'cross_area': {'train': [...], 'test': [...]},
# 'meters_per_px_640': {...}}.
SYNTHETIC_VIGOR_META = 'synthetic_vigor.json'


class SelectionSplitError(ValueError):
    """The evaluated split is the one the checkpoint was selected on."""


def read_record(path: str | Path) -> dict[str, Any]:
    """The checkpoint's validated config.json (names the path and the fix when missing)."""
    return read_checkpoint_config(path)


def provenance(path: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """What results.json says about a checkpoint: path, weights hash, how it was trained."""
    training = record.get('training_config') or {}
    data = training.get('data') or {}
    model = (record.get('hyper_parameters') or {}).get('model') or {}
    return {
        'path': str(Path(path).resolve()),
        'weights_sha256': record['weights']['sha256'],
        'kind': model.get('kind'),
        'camera_model': model.get('camera_model'),
        'training_run': training.get('name'),
        'training_task': training.get('task'),
        'training_dataset': data.get('dataset'),
        'train_split': data.get('train_split'),
        'selection_split': data.get('val_split'),
        'provenance': record.get('provenance', {}),
    }


def check_not_selected_on(path: str | Path, record: dict[str, Any], dataset: str,
                          split: str) -> None:
    """Raise SelectionSplitError when `path` (or a base checkpoint it was distilled from)
    chose its best epoch on `split` of `dataset`; warn on the training split itself."""
    seen = []
    while True:
        training = record.get('training_config')
        if not training:
            logger.warning('%s has no training_config: cannot check which split it was '
                           'selected on; make sure it was not %r', path, split)
        else:
            data = training.get('data') or {}
            if data.get('dataset') == dataset and data.get('val_split') == split:
                raise SelectionSplitError(
                    f'{path} was selected on {dataset} split {split!r} (its training config '
                    f'has data.val_split={split!r}); evaluating on it would report the '
                    'selection split as a result. Evaluate on a held-out test split '
                    "(VIGOR 'test', KITTI 'test1'/'test2')")
            if data.get('dataset') == dataset and data.get('train_split') == split:
                logger.warning('%s was trained on %s split %r: these are training-set numbers',
                               path, dataset, split)
        seen.append(str(path))
        base = (record.get('provenance') or {}).get('base_checkpoint')
        if not base or len(seen) >= MAX_BASE_CHAIN or str(base) in seen:
            return
        if not Path(base).is_dir():
            logger.warning('%s was distilled from %s, which is not here: its selection split '
                           'cannot be checked', path, base)
            return
        path, record = base, read_record(base)


def _cross_area_test_cities(data: DataConfig, data_root: Path | None) -> DataConfig:
    """VIGOR cross-area test: never the training cities. A synthetic export names its test
    cities in <root>/synthetic_vigor.json; otherwise the official protocol's cities."""
    meta_path = None if data_root is None else Path(data_root) / SYNTHETIC_VIGOR_META
    if meta_path is not None and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        cities = tuple(meta['cross_area']['test'])
        logger.info('cross-area test cities from %s: %s', meta_path, cities)
        return replace(data, cities=cities, meters_per_px_640={
            **(data.meters_per_px_640 or {}), **meta.get('meters_per_px_640', {})})
    return replace(data, cities=None)


def eval_data_config(conf: EvalConfig, record: dict[str, Any],
                     data_root: str | Path | None = None) -> DataConfig:
    """The reader config for evaluation: the checkpoint's training data config when it used
    the same dataset (sizes, cities, reader options), else the checkpoint's input sizes;
    then the evaluation's noise and seed, then conf.data_overrides. VIGOR cross-area test
    splits take the test cities (see _cross_area_test_cities), never the training ones."""
    training_data = (record.get('training_config') or {}).get('data')
    training_cities: tuple[str, ...] = ()
    if training_data and training_data.get('dataset') == conf.dataset:
        values = {**training_data, 'val_split': None}
        data = from_dict(DataConfig, values, 'training_config.data')
        training_cities = tuple(data.cities or ())
    else:
        sizes = record.get('input_sizes') or {}
        if 'ground_hw' not in sizes or 'satellite_hw' not in sizes:
            raise ValueError('the checkpoint has neither a training config for dataset '
                             f'{conf.dataset!r} nor input_sizes; pass the reader sizes with '
                             'data overrides (ground_hw=[H, W], sat_size=S)')
        data = DataConfig(dataset=conf.dataset, ground_hw=tuple(sizes['ground_hw']),
                          sat_size=int(sizes['satellite_hw'][0]), val_split=None)
    options = dict(data.reader_options or {})
    noise_deg = conf.yaw_noise_deg
    if conf.dataset == 'kitti':  # the split line's dtheta scales the reader's rotation range
        options['rotation_range_deg'] = noise_deg
        noise_deg = 0.0
    data = replace(data, yaw_noise_deg=noise_deg, seed=conf.seed,
                   reader_options=options or None, num_workers=conf.num_workers)
    for item in conf.data_overrides:
        if item.partition('=')[0].strip() in RESERVED_DATA_FIELDS:
            raise ValueError(f'data override {item!r}: set {RESERVED_DATA_FIELDS} through the '
                             'evaluation config (--dataset, --yaw-noise-deg, --seed)')
    data = apply_overrides(data, list(conf.data_overrides))
    user_cities = any(item.partition('=')[0].strip() == 'cities'
                      for item in conf.data_overrides)
    if _is_cross_area_test(conf, data) and training_cities and not user_cities:
        data = _cross_area_test_cities(data, data_root)
    if conf.dataset == 'vigor' and data_root is not None and not user_cities:
        data = _cities_in_root(conf, data, Path(data_root), training_cities)
    leaked = sorted(set(training_cities) & set(data.cities or ()))
    if _is_cross_area_test(conf, data) and leaked:
        raise ValueError(f'cross-area {conf.split!r} would read the training cities {leaked}; '
                         'pass the test cities: --data-override cities=\'["A", "B"]\'')
    return data


def _cities_in_root(conf: EvalConfig, data: DataConfig, root: Path,
                    training_cities: tuple[str, ...]) -> DataConfig:
    """Evaluate the cities the data root holds when the configured ones (the checkpoint's
    training cities, or the protocol's) are not all there: a model trained on a synthetic
    export evaluated on a real VIGOR download, or a download of some cities only. A
    cross-area test still never reads the training cities."""
    from geodistill_core.data.vigor import SPLITS_DIR, VigorConfig
    if not root.is_dir() or conf.split not in ('train', 'val', 'test'):
        return data  # the reader names the problem
    if data.cities is None and (root / SYNTHETIC_VIGOR_META).is_file():
        return data  # the export's own protocol picks its cities
    label = VigorConfig(split=conf.split, area=data.area, cities=()).label_file_name()

    def present(city: str) -> bool:
        return ((root / city / 'panorama').is_dir() and (root / city / 'satellite').is_dir()
                and (root / SPLITS_DIR / city / label).is_file())

    wanted = (data.cities if data.cities is not None else
              VigorConfig(split=conf.split, area=data.area).cities)
    if all(present(city) for city in wanted):
        return data
    found = tuple(sorted(d.name for d in root.iterdir() if d.is_dir() and present(d.name)))
    if _is_cross_area_test(conf, data):
        found = tuple(city for city in found if city not in training_cities)
    if not found:
        return data
    logger.warning('%s does not hold the cities %s: evaluating the cities it holds: %s',
                   root, list(wanted), list(found))
    return replace(data, cities=found)


def _is_cross_area_test(conf: EvalConfig, data: DataConfig) -> bool:
    return (conf.dataset == 'vigor' and data.area == 'cross'
            and conf.split.lower().startswith('test'))
