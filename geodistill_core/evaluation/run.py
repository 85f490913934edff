"""`evaluate(conf, paths) -> Path`: a localizer (and optionally its pre-distillation
version) over a split, metrics of method.md section 7, per-item table, noise, plots.

Output folder::

    results.json     config, checkpoint provenance, data config, metrics (evaluated and
                     compare, relative change), timing, file list
    per_item.csv     one row per item (truth, yaw prior/noise, predictions, errors, time)
    yaw_noise.json   the test-time yaw noise per item (index, noise, prior, true yaw) and
                     how the reader drew it: every number can be reproduced
    plots/error_cdf.png, plots/yaw_error_cdf.png (orientation estimator only),
    plots/heatmap_<row>_item<index>.png (compare | evaluated side by side)
    done.json        the arguments of the finished run: the same arguments again skip the
                     work; other arguments into the same folder are refused (overwrite=True
                     replaces the results)
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Subset

from geodistill_core.evaluation.checkpoints import (
    check_not_selected_on,
    eval_data_config,
    provenance,
    read_record,
)
from geodistill_core.evaluation.config import (
    VOLATILE_FIELDS,
    EvalConfig,
    EvalPaths,
    default_output_dir,
)
from geodistill_core.evaluation.predict import SplitPredictions, heatmap_rows, predict_split
from geodistill_core.evaluation.summary import (
    model_errors,
    model_metrics,
    prior_metrics,
    relative_change,
    timing_summary,
    write_per_item_csv,
)
from geodistill_core.localizer import DEFAULT_YAW_SEARCH, Localizer
from geodistill_core.plots import HeatmapPanel, plot_error_cdf, plot_heatmaps_over_satellite
from geodistill_core.training.config_json import to_dict
from geodistill_core.training.data import build_dataset

logger = logging.getLogger(__name__)
RESULTS_FILE, PER_ITEM_FILE, NOISE_FILE, DONE_FILE = (
    'results.json', 'per_item.csv', 'yaw_noise.json', 'done.json')
FORMAT = 'geodistill-evaluation'
FORMAT_VERSION = 1
NOISE_RULES = {
    'vigor': 'n ~ U(-r, r) from numpy SeedSequence([seed, index]); the panorama is rolled so '
             'it looks along pi/2 - n while the prior stays pi/2',
    'kitti': 'n = -dtheta * r with dtheta from the split line (lines without values: '
             'U(-1, 1) from numpy SeedSequence([seed, index])); prior = yaw + n',
    'flat_world': 'n ~ U(-r, r) from the flat world generator seeded by (seed, split); the '
                  'panorama looks along pi/2 - n while the prior stays pi/2',
}
LABELS = {'evaluated': 'after', 'compare': 'before'}


class EvaluationExistsError(FileExistsError):
    """The output folder holds a finished evaluation with other arguments."""


def _json_ready(value: Any) -> Any:
    """NaN / inf -> None (strict JSON), numpy scalars -> Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(path: Path, value: Any) -> Path:
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(json.dumps(_json_ready(value), indent=2, allow_nan=False) + '\n')
    tmp.replace(path)
    return path


def write_noise_file(path: Path, split: SplitPredictions, conf: EvalConfig) -> Path:
    """yaw_noise.json: per item index, yaw_noise_rad (= prior - true), prior, true yaw."""
    return _write_json(path, {
        'dataset': conf.dataset, 'split': conf.split, 'seed': conf.seed,
        'yaw_noise_deg': conf.yaw_noise_deg,
        'rule': NOISE_RULES.get(conf.dataset, 'drawn by the reader (yaw_noise_rad)'),
        'index': [int(i) for i in split.index],
        'yaw_noise_rad': [float(v) for v in split.yaw_noise_rad],
        'yaw_prior_rad': [float(v) for v in split.yaw_prior_rad],
        'yaw_rad': [float(v) for v in split.yaw_rad]})


def _short(path: str | Path) -> str:
    """'<parent>/<name>' of a checkpoint folder (e.g. 'distill/best') for legends."""
    return f'{Path(path).parent.name}/{Path(path).name}'


def write_plots(out_dir: Path, split: SplitPredictions, names: Mapping[str, str],
                vehicle_frame: bool) -> list[Path]:
    """Error CDFs and the heatmap panels; `names` maps localizer -> legend label."""
    plots = out_dir / 'plots'
    order = [n for n in ('compare', 'evaluated') if n in split.models]
    errors = {n: model_errors(split, n, vehicle_frame) for n in order}
    files = [plot_error_cdf(plots / 'error_cdf.png',
                            {names[n]: errors[n]['error_m'] for n in order},
                            title=f'localization error, {len(split)} items')]
    with_yaw = [n for n in order if 'yaw_error_deg' in errors[n]]
    if with_yaw:
        files.append(plot_error_cdf(plots / 'yaw_error_cdf.png',
                                    {names[n]: errors[n]['yaw_error_deg'] for n in with_yaw},
                                    unit='deg', title='orientation error'))
    for row, (satellite, mpp) in sorted(split.satellites.items()):
        panels = [HeatmapPanel(names[n], *split.models[n].heatmaps[row],
                               split.models[n].offset_en_m[row]) for n in order]
        item = int(split.index[row])
        files.append(plot_heatmaps_over_satellite(
            plots / f'heatmap_{row:03d}_item{item}.png', satellite, mpp, panels,
            split.true_offset_en_m[row],
            title=f'item {item} {split.item_id[row]}'.strip()))
    return files


def run_evaluation(conf: EvalConfig, localizers: Mapping[str, Any], dataset: Dataset,
                   out_dir: str | Path, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Predict with `localizers` ('evaluated' and optionally 'compare') over `dataset`
    (already cut to max_items), write every output except the done-marker; returns the
    results dict (also in results.json). `info` is merged into results.json."""
    if 'evaluated' not in localizers or set(localizers) - {'evaluated', 'compare'}:
        raise ValueError(f"localizers must be 'evaluated' (+ 'compare'), got {list(localizers)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vehicle = conf.with_vehicle_frame
    split = predict_split(localizers, dataset, batch_size=conf.batch_size,
                          num_workers=conf.num_workers,
                          heatmap_rows=heatmap_rows(len(dataset), conf.num_heatmaps),
                          progress=conf.progress, yaw_prior_range_deg=conf.yaw_noise_deg)
    metrics = {name: model_metrics(split, name, vehicle) for name in split.models}
    for name, m in metrics.items():
        if m['localization_m']['failures']:
            logger.warning('%s: %d of %d items failed (NaN prediction); counted as misses',
                           name, m['localization_m']['failures'], len(split))
    checkpoints = (info or {}).get('checkpoints', {})
    names = {n: f"{LABELS[n]}: {_short(checkpoints[n]['path'])}" if n in checkpoints
             else n for n in split.models}
    files = [write_per_item_csv(out_dir / PER_ITEM_FILE, split, vehicle),
             write_noise_file(out_dir / NOISE_FILE, split, conf),
             *write_plots(out_dir, split, names, vehicle)]
    results = {
        'format': FORMAT, 'format_version': FORMAT_VERSION,
        'created': datetime.now(timezone.utc).isoformat(timespec='seconds'),
        'config': to_dict(conf), **(info or {}),
        'num_items': len(split),
        'metrics': metrics['evaluated'],
        'yaw_prior_error_deg': prior_metrics(split),
        'compare': None if 'compare' not in metrics else {
            'metrics': metrics['compare'],
            'relative_change': relative_change(metrics['evaluated'], metrics['compare'])},
        'timing': timing_summary(split),
        'files': sorted(str(f.relative_to(out_dir)) for f in files),
    }
    _write_json(out_dir / RESULTS_FILE, results)
    loc = results['metrics']['localization_m']
    logger.info('%s %s (%d items): mean %.3f m, median %.3f m, R@1/3/5 m %.3f/%.3f/%.3f, '
                '%d failed -> %s', conf.dataset, conf.split, len(split), loc['mean'],
                loc['median'], loc['recall_1m'], loc['recall_3m'], loc['recall_5m'],
                loc['failures'], out_dir / RESULTS_FILE)
    return results


def _signature(conf: EvalConfig, paths: EvalPaths, records: dict[str, dict]) -> dict[str, Any]:
    """What identifies a run: the config (minus volatile fields), inputs, weight hashes."""
    config = {k: v for k, v in to_dict(conf).items() if k not in VOLATILE_FIELDS}

    def where(p):
        return None if p is None else str(Path(p).resolve())
    return json.loads(json.dumps(_json_ready({
        'config': config,
        'paths': {'checkpoint': where(paths.checkpoint), 'data_root': where(paths.data_root),
                  'orientation_checkpoint': where(paths.orientation_checkpoint),
                  'compare_checkpoint': where(paths.compare_checkpoint)},
        'weights_sha256': {k: r['weights']['sha256'] for k, r in records.items()}})))


def _flatten(values: Any, prefix: str = '') -> dict[str, Any]:
    if not isinstance(values, dict):
        return {prefix: values}
    out: dict[str, Any] = {}
    for key, value in values.items():
        out.update(_flatten(value, f'{prefix}.{key}' if prefix else str(key)))
    return out


def _finished(out_dir: Path, signature: dict[str, Any], overwrite: bool) -> bool:
    done = out_dir / DONE_FILE
    if not done.is_file() or not (out_dir / RESULTS_FILE).is_file():
        return False
    previous = json.loads(done.read_text()).get('signature')
    if previous == signature:
        return True
    if overwrite:
        logger.warning('%s holds an evaluation with other arguments: overwriting', out_dir)
        done.unlink()
        return False
    old, new = _flatten(previous or {}), _flatten(signature)
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    raise EvaluationExistsError(
        f'{out_dir} holds a finished evaluation with other arguments (differing: {changed}); '
        'choose another --out or pass --overwrite')


def _search_settings(conf: EvalConfig, record: dict[str, Any]) -> dict[str, Any]:
    """Localizer keyword arguments for conf.yaw_search: the camera's measured rotation
    search settings (DEFAULT_YAW_SEARCH), or none."""
    if conf.yaw_search == 'none':
        return {}
    model = (record.get('hyper_parameters') or {}).get('model') or {}
    camera = model.get('camera_model', 'panorama')
    if camera not in DEFAULT_YAW_SEARCH:
        raise ValueError(f'no rotation search settings for camera model {camera!r}')
    return {'yaw_search': conf.yaw_search, 'yaw_search_config': DEFAULT_YAW_SEARCH[camera][1]}


def evaluate(conf: EvalConfig, paths: EvalPaths, overwrite: bool = False) -> Path:
    """Evaluate paths.checkpoint on conf.split; returns the results.json path."""
    checkpoints = {'location': paths.checkpoint, 'orientation': paths.orientation_checkpoint,
                   'compare': paths.compare_checkpoint}
    checkpoints = {k: Path(v) for k, v in checkpoints.items() if v is not None}
    records = {k: read_record(v) for k, v in checkpoints.items()}
    for key, path in checkpoints.items():
        check_not_selected_on(path, records[key], conf.dataset, conf.split)
    out_dir = Path(paths.output_dir or default_output_dir(conf, paths.checkpoint))
    signature = _signature(conf, paths, records)
    if _finished(out_dir, signature, overwrite):
        logger.info('%s already holds this evaluation: skipped', out_dir)
        return out_dir / RESULTS_FILE
    data_config = eval_data_config(conf, records['location'], paths.data_root)
    dataset = build_dataset(data_config, conf.split, paths.data_root)
    total = len(dataset)
    if conf.max_items is not None and conf.max_items < total:
        dataset = Subset(dataset, range(conf.max_items))
    orientation = checkpoints.get('orientation')
    localizers = {'evaluated': Localizer.from_checkpoints(
        checkpoints['location'], orientation, device=conf.device, precision=conf.precision,
        **_search_settings(conf, records['location']))}
    if 'compare' in checkpoints:
        localizers['compare'] = Localizer.from_checkpoints(
            checkpoints['compare'], orientation, device=conf.device, precision=conf.precision,
            **_search_settings(conf, records['compare']))
    for localizer in localizers.values():
        localizer.warmup()
    info = {
        'checkpoints': {('evaluated' if k == 'location' else k): provenance(v, records[k])
                        for k, v in checkpoints.items()},
        'data': {'root': None if paths.data_root is None else str(paths.data_root),
                 'reader_config': to_dict(data_config), 'split_items': total},
        'device': str(localizers['evaluated'].device),
    }
    run_evaluation(conf, localizers, dataset, out_dir, info)
    _write_json(out_dir / DONE_FILE, {'signature': signature})
    return out_dir / RESULTS_FILE
