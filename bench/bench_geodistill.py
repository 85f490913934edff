"""The GeoDistill benchmark, the paper's way: a converged base, GeoDistill and its ablations.

    .venv/bin/python bench/bench_geodistill.py [--out outputs/bench] [--device cpu]
        [--methods base geodistill ...] [--stage all|train|eval]

Steps (each resumes or is skipped when already done, so an interrupted run goes on):
1. data: `make_synthetic('bench_vigor')` in the VIGOR layout (4 city styles; old_town is
   the cross-area test city, never seen in training);
2. base: the weakly supervised correlation model (preset `synthetic_bench`, in-batch
   soft-margin triplet on the pairing alone, no positions) trained to convergence:
   BASE_EPOCHS epochs with a cosine learning-rate decay, its validation curve (label-free
   loss and, for the report only, localisation error) logged every epoch;
3. from that base, each with the same steps (the preset's distillation epochs):
   GeoDistill (FoV-masked student, sharpened CE, EMA teacher) and the paper's Table 3
   ablations: no sharpening (tau 1), random-patch masks (14 px, a share in [1/3, 1/2)),
   single-mode targets (the teacher's arg-max cell as a one-hot target), and on request
   max-activation masks;
4. the paper's Table 4 control: a base trained *from scratch* with the FoV masks as
   augmentation of the weak objective, same epochs and schedule as the base
   (`augment_scratch`), and the weak objective continued from the base for the
   distillation's steps without masks (`continued`: separates "more training" from
   distillation); on request the older control `augment_base` (the masks as augmentation
   continued from the base);
5. evaluation of each on the same-area test half of the training cities and on the
   cross-area city (known orientation, the VIGOR protocol).

Models are selected on the validation split (a held-out share of the training panoramas,
label-free loss) only; distillation keeps its last teacher (a fixed schedule); the test
splits are read by step 5 alone. Writes `bench/results/geodistill.json` (metrics, the base's
validation curve, wall-clock times, commands, machine) and prints the README table.

Two processes can share the work (one thread each): `--stage train` with disjoint
`--methods` (the base first: every row but augment_scratch starts from it), then `--stage
eval`, then a plain run that finds everything done and writes the table.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
import csv
from dataclasses import dataclass, replace
import json
import logging
import os
from pathlib import Path
import platform
import sys
import time

import numpy as np
from results_json import write_json
import torch

from geodistill_core.data.synthetic.presets import make_synthetic
from geodistill_core.evaluation import EvalConfig, EvalPaths, evaluate
from geodistill_core.training import RunPaths, TrainConfig, distill, preset, train_location
from geodistill_core.training.state import read_training_meta

logger = logging.getLogger('bench_geodistill')
DEFAULT_OUT = Path(__file__).resolve().parent / 'results' / 'geodistill.json'
PRESET = 'synthetic_bench'
DATA_PRESET = 'bench_vigor'
# Converged on this CPU budget: 12 epochs (1428 steps) with a cosine decay. At a constant
# learning rate the weak validation loss was still falling after 12 epochs (README).
BASE_EPOCHS = 12
BASE_SCHEDULE = 'cosine'
AREAS = {'same_area': (), 'cross_area': ('area=cross',)}
METRICS = ('mean', 'median', 'recall_1m', 'recall_3m', 'recall_5m')


@dataclass(frozen=True)
class Method:
    """One row: its README label and how its training config derives from the distill
    preset (None: the base itself). from_base: starts from the trained base."""

    label: str
    distill_fields: dict | None = None
    loss_fields: dict | None = None
    from_base: bool = True
    base_schedule: bool = False


METHODS = {
    'base': Method('weakly supervised base (converged)'),
    'geodistill': Method('GeoDistill', {}),
    'augment_scratch': Method('FoV masks as augmentation, base from scratch (Table 4 control)',
                              {'mode': 'augment', 'augment_start': 'scratch'},
                              from_base=False, base_schedule=True),
    'no_sharpening': Method('GeoDistill, no sharpening (tau 1)', {}, {'sharpen': False}),
    'random_patch': Method('GeoDistill, random-patch masks', {'mask': 'random_patch'}),
    'single_mode': Method('GeoDistill, single-mode target', {}, {'target': 'single_mode'}),
    'max_activation': Method('GeoDistill, max-activation masks', {'mask': 'max_activation'}),
    'augment_base': Method('FoV masks as augmentation, continued from the base',
                           {'mode': 'augment'}),
    'continued': Method('weak objective continued from the base, no mask',
                        {'mode': 'augment', 'mask': 'none'}),
}
DEFAULT_METHODS = ('base', 'geodistill', 'augment_scratch', 'no_sharpening', 'random_patch',
                   'single_mode', 'continued')


def base_config(device: str = 'auto', epochs: int = BASE_EPOCHS,
                steps_per_epoch: int | None = None) -> TrainConfig:
    """The base: the preset's model and data, trained `epochs` with the cosine decay; the
    validation error is logged per epoch for the curve (selection stays label-free)."""
    conf = preset(PRESET, 'location')
    return replace(conf, optim=replace(conf.optim, schedule=BASE_SCHEDULE),
                   loop=replace(conf.loop, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                device=device, report_val_error=True))


def method_config(name: str, base: TrainConfig, device: str = 'auto',
                  epochs: int | None = None, steps_per_epoch: int | None = None) -> TrainConfig:
    """The training config of row `name` (not 'base'). Distillation rows: the preset's
    distill config (epochs overridable); augment_scratch: the base's loop and schedule, so
    it gets exactly the base's steps."""
    method = METHODS[name]
    conf = preset(PRESET, 'distill')
    loss = replace(conf.distill.loss, **(method.loss_fields or {}))
    conf = replace(conf, name=f'{PRESET}_{name}',
                   distill=replace(conf.distill, loss=loss, **method.distill_fields))
    if method.base_schedule:
        return replace(conf, optim=base.optim, loop=base.loop)
    return replace(conf, loop=replace(
        conf.loop, epochs=epochs or conf.loop.epochs, device=device,
        steps_per_epoch=steps_per_epoch if steps_per_epoch is not None
        else conf.loop.steps_per_epoch))


def _timed(results: dict, key: str, work: Callable):
    start = time.perf_counter()
    out = work()
    results['wall_clock_s'][key] = round(time.perf_counter() - start, 1)
    logger.info('%s: %.1f s', key, results['wall_clock_s'][key])
    return out


def _train(methods, out: Path, data_root: Path, base_conf: TrainConfig, device: str,
           distill_epochs, steps_per_epoch, results: dict) -> dict[str, Path]:
    """Train (or find finished) each row of `methods`; the base once, first, when a row
    needs it. Returns name -> checkpoint."""
    base = None
    if any(METHODS[name].from_base for name in methods):
        base = _timed(results, 'train_base', lambda: train_location(
            base_conf, RunPaths(out / 'base', data_root)))
    checkpoints = {'base': base} if 'base' in methods else {}
    for name in methods:
        if name == 'base':
            continue
        conf = method_config(name, base_conf, device, distill_epochs, steps_per_epoch)
        start = base if METHODS[name].from_base else None
        checkpoints[name] = _timed(results, f'train_{name}', lambda conf=conf, name=name,
                                   start=start: distill(conf, RunPaths(out / name, data_root,
                                                                       start)))
    return checkpoints


def _progress(run_dir: Path) -> dict | None:
    """The training progress of a run (epoch, steps, best epoch, per-epoch history)."""
    try:
        return read_training_meta(Path(run_dir) / 'state')['progress']
    except FileNotFoundError:
        return None


def run(out: Path, device: str = 'auto', base_epochs: int = BASE_EPOCHS,
        distill_epochs: int | None = None, steps_per_epoch: int | None = None,
        max_eval_items: int | None = None, results_path: Path = DEFAULT_OUT,
        methods=DEFAULT_METHODS, stage: str = 'all') -> dict:
    """Run the steps of `stage` for `methods` under `out`; with stage 'all' returns (and
    writes to `results_path`) the results."""
    out = Path(out)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f'unknown methods {unknown}; choose from {sorted(METHODS)}')
    results: dict = {'wall_clock_s': {}, 'machine': _machine(), 'command': ' '.join(sys.argv),
                     'base_epochs': base_epochs, 'base_schedule': BASE_SCHEDULE}
    data_root = _timed(results, 'data', lambda: make_synthetic(
        DATA_PRESET, out / 'data', seed=0, layout='vigor', progress=False)) / 'vigor'
    base_conf = base_config(device, base_epochs, steps_per_epoch)
    checkpoints = _train(methods, out, data_root, base_conf, device, distill_epochs,
                         steps_per_epoch, results)
    if stage == 'train':
        return results
    results['table'] = {}
    for name in methods:
        for area, overrides in AREAS.items():
            conf = EvalConfig(dataset='vigor', split='test', data_overrides=overrides,
                              max_items=max_eval_items, device=device, progress=False,
                              num_heatmaps=4)
            paths = EvalPaths(checkpoints[name], data_root, None, None,
                              out / 'eval' / f'{name}_{area}')
            path = _timed(results, f'eval_{name}_{area}',
                          lambda conf=conf, paths=paths: evaluate(conf, paths))
            report = json.loads(Path(path).read_text())
            metrics = report['metrics']['localization_m']
            results['table'][f'{name}/{area}'] = {
                **{k: metrics[k] for k in METRICS}, 'count': metrics['count'],
                'cities': report['data']['reader_config']['cities'], 'results': str(path)}
    if stage == 'eval':
        return results
    progress = {name: _progress(out / name) for name in methods}
    results['base_curve'] = (progress.get('base') or {}).get('history', [])
    results['steps'] = {name: p and p['step'] for name, p in progress.items()}
    if 'geodistill' in methods:
        for area in AREAS:  # the reference's items are read once per area
            reference = item_errors(results['table'][f'geodistill/{area}']['results'])
            for name in methods:
                row = results['table'][f'{name}/{area}']
                row['vs_geodistill'] = paired_difference(item_errors(row['results']),
                                                         reference)
    if {'base', 'geodistill'} <= set(methods):
        base_cross = results['table']['base/cross_area']
        dist_cross = results['table']['geodistill/cross_area']
        results['cross_area_mean_reduction'] = 1.0 - dist_cross['mean'] / base_cross['mean']
        results['cross_area_median_change_m'] = dist_cross['median'] - base_cross['median']
    write_json(results_path, results)
    print(markdown_table(results, methods))
    if results['base_curve']:
        print('\n' + curve_table(results['base_curve']))
    print(f'\nresults: {results_path}')
    return results


def item_errors(results_json: str | Path) -> dict[str, float] | None:
    """item_id -> error_m from the per_item.csv beside an evaluation's results.json (None
    when absent)."""
    per_item = Path(results_json).parent / 'per_item.csv'
    if not per_item.is_file():
        return None
    with per_item.open() as f:
        return {row['item_id']: float(row['error_m']) for row in csv.DictReader(f)}


def paired_difference(a: dict[str, float] | None, b: dict[str, float] | None,
                      resamples: int = 4000, seed: int = 0) -> dict | None:
    """Mean of (error a - reference error b) over the items both item_errors share, with a
    95% paired-bootstrap interval (the same test items, so item difficulty cancels)."""
    if a is None or b is None:
        return None
    keys = sorted(a.keys() & b.keys())
    if not keys:
        return None
    d = np.array([a[k] - b[k] for k in keys])
    idx = np.random.default_rng(seed).integers(0, d.size, (resamples, d.size))
    lo, hi = np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
    return {'mean_m': float(d.mean()), 'interval_95_m': [float(lo), float(hi)],
            'items': len(keys)}


def markdown_table(results: dict, methods=DEFAULT_METHODS) -> str:
    """The README table: one row per (method, area); the last column is the paired mean
    difference to GeoDistill on the same items with its 95% bootstrap interval."""
    rows = ['| model | test | mean (m) | median (m) | R@1 m | R@3 m | R@5 m | items | '
            'mean - GeoDistill [95%] (m) |', '|---|---|---|---|---|---|---|---|---|']
    for area in AREAS:
        for name in methods:
            m = results['table'][f'{name}/{area}']
            vs = m.get('vs_geodistill')
            diff = ('-' if vs is None or name == 'geodistill' else
                    f"{vs['mean_m']:+.2f} [{vs['interval_95_m'][0]:+.2f}, "
                    f"{vs['interval_95_m'][1]:+.2f}]")
            rows.append(f"| {METHODS[name].label} | {area.replace('_', '-')} | "
                        f"{m['mean']:.2f} | {m['median']:.2f} | {100 * m['recall_1m']:.1f}% | "
                        f"{100 * m['recall_3m']:.1f}% | {100 * m['recall_5m']:.1f}% | "
                        f"{m['count']} | {diff} |")
    return '\n'.join(rows)


def curve_table(history: list[dict]) -> str:
    """The base's validation curve: label-free loss (what selects) and, for the report
    only, the localisation error on the validation split."""
    rows = ['| epoch | step | train loss | validation loss | validation mean error (m) | '
            'validation R@1 m |', '|---|---|---|---|---|---|']
    nan = float('nan')
    for h in history:
        rows.append(f"| {h['epoch']} | {h.get('step', '')} | {h.get('train_loss', nan):.4f} | "
                    f"{h.get('loss', nan):.4f} | {h.get('mean_error_m', nan):.2f} | "
                    f"{100 * h.get('r1_m', nan):.1f}% |")
    return '\n'.join(rows)


def _machine() -> dict:
    return {'platform': platform.platform(), 'python': platform.python_version(),
            'torch': torch.__version__, 'cpu_count': os.cpu_count(),
            'torch_threads': torch.get_num_threads(),
            'cuda': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('outputs/bench'),
                        help='data, runs and evaluations (resumable)')
    parser.add_argument('--results', type=Path, default=DEFAULT_OUT)
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--methods', nargs='+', default=list(DEFAULT_METHODS),
                        choices=sorted(METHODS), metavar='METHOD',
                        help=f'rows (default: {" ".join(DEFAULT_METHODS)}); more: '
                             'max_activation augment_base')
    parser.add_argument('--stage', default='all', choices=('all', 'train', 'eval'),
                        help="'train' / 'eval': that stage only (to share the work between "
                             'processes); all: train, evaluate, write the results')
    parser.add_argument('--base-epochs', type=int, default=BASE_EPOCHS)
    parser.add_argument('--distill-epochs', type=int, help=f'default: the {PRESET} preset')
    parser.add_argument('--steps-per-epoch', type=int, help='cap (default: whole epochs)')
    parser.add_argument('--max-eval-items', type=int, help='evaluate the first N items only')
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    return run(ns.out, ns.device, ns.base_epochs, ns.distill_epochs, ns.steps_per_epoch,
               ns.max_eval_items, ns.results, tuple(ns.methods), ns.stage)


if __name__ == '__main__':
    main()
