"""The GeoDistill benchmark: base vs GeoDistill vs FoV-masking-as-augmentation, label-free.

    .venv/bin/python bench/bench_geodistill.py [--out outputs/bench] [--device cpu]

Steps (each resumes or is skipped when already done, so an interrupted run goes on):
1. data: `make_synthetic('bench_vigor')` in the VIGOR layout (4 city styles; old_town is
   the cross-area test city, never seen in training);
2. base: the weakly supervised correlation model (preset `synthetic_bench`, in-batch
   soft-margin triplet on the pairing alone, no positions);
3. GeoDistill from the base (FoV-masked student, sharpened CE, EMA teacher);
4. the paper's control: the same FoV masks used as plain augmentation of the weak
   objective, from the same base, for as many steps as GeoDistill;
5. evaluation of the three on the same-area test half of the training cities and on the
   cross-area city (known orientation, the VIGOR protocol), with the base's heatmaps
   beside GeoDistill's.

Models are selected on the validation split (a held-out share of the training panoramas,
label-free loss) only; the test splits are read by step 5 alone. Writes
`bench/results/geodistill.json` (metrics, wall-clock times, commands, machine) and prints
the README table.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import json
import logging
import os
from pathlib import Path
import platform
import sys
import time

import torch

from geodistill_core.data.synthetic.presets import make_synthetic
from geodistill_core.evaluation import EvalConfig, EvalPaths, evaluate
from geodistill_core.training import RunPaths, distill, preset, train_location

logger = logging.getLogger('bench_geodistill')
DEFAULT_OUT = Path(__file__).resolve().parent / 'results' / 'geodistill.json'
PRESET = 'synthetic_bench'
DATA_PRESET = 'bench_vigor'
AREAS = {'same_area': (), 'cross_area': ('area=cross',)}
METHODS = ('base', 'geodistill', 'augment')
# --continued-control: the weak objective continued from the base for as many steps as
# GeoDistill, without masks: separates "more training" from "masking" in the control.
CONTINUED = 'continued'
METRICS = ('mean', 'median', 'recall_1m', 'recall_3m', 'recall_5m')


def _timed(results: dict, key: str, work):
    start = time.perf_counter()
    out = work()
    results['wall_clock_s'][key] = round(time.perf_counter() - start, 1)
    logger.info('%s: %.1f s', key, results['wall_clock_s'][key])
    return out


def _loop(conf, epochs, steps, device):
    loop = replace(conf.loop, epochs=epochs if epochs is not None else conf.loop.epochs,
                   steps_per_epoch=steps if steps is not None else conf.loop.steps_per_epoch,
                   device=device)
    return replace(conf, loop=loop)


def run(out: Path, device: str = 'auto', base_epochs: int | None = None,
        distill_epochs: int | None = None, steps_per_epoch: int | None = None,
        max_eval_items: int | None = None, results_path: Path = DEFAULT_OUT,
        continued_control: bool = False) -> dict:
    """Run every step under `out`; returns (and writes to `results_path`) the results."""
    out = Path(out)
    results: dict = {'wall_clock_s': {}, 'machine': _machine(), 'command': ' '.join(sys.argv)}
    data_root = _timed(results, 'data', lambda: make_synthetic(
        DATA_PRESET, out / 'data', seed=0, layout='vigor', progress=False)) / 'vigor'
    base_conf = _loop(preset(PRESET, 'location'), base_epochs, steps_per_epoch, device)
    base = _timed(results, 'train_base', lambda: train_location(
        base_conf, RunPaths(out / 'base', data_root)))
    dist_conf = _loop(preset(PRESET, 'distill'), distill_epochs, steps_per_epoch, device)
    checkpoints = {'base': base}
    checkpoints['geodistill'] = _timed(results, 'train_geodistill', lambda: distill(
        dist_conf, RunPaths(out / 'geodistill', data_root, base)))
    aug_conf = replace(dist_conf, name=f'{PRESET}_augment',
                       distill=replace(dist_conf.distill, mode='augment'))
    checkpoints['augment'] = _timed(results, 'train_augment', lambda: distill(
        aug_conf, RunPaths(out / 'augment', data_root, base)))
    methods = METHODS
    if continued_control:
        cont_conf = replace(aug_conf, name=f'{PRESET}_{CONTINUED}',
                            distill=replace(aug_conf.distill, mask='none'))
        checkpoints[CONTINUED] = _timed(results, f'train_{CONTINUED}', lambda: distill(
            cont_conf, RunPaths(out / CONTINUED, data_root, base)))
        methods = (*METHODS, CONTINUED)
    results['table'] = {}
    for method in methods:
        for area, overrides in AREAS.items():
            conf = EvalConfig(dataset='vigor', split='test', data_overrides=overrides,
                              max_items=max_eval_items, device=device, progress=False,
                              num_heatmaps=4)
            compare = checkpoints['base'] if method == 'geodistill' else None
            paths = EvalPaths(checkpoints[method], data_root, None, compare,
                              out / 'eval' / f'{method}_{area}')
            path = _timed(results, f'eval_{method}_{area}',
                          lambda conf=conf, paths=paths: evaluate(conf, paths))
            report = json.loads(Path(path).read_text())
            metrics = report['metrics']['localization_m']
            results['table'][f'{method}/{area}'] = {
                **{k: metrics[k] for k in METRICS}, 'count': metrics['count'],
                'cities': report['data']['reader_config']['cities'],
                'results': str(path)}
    base_cross = results['table']['base/cross_area']
    dist_cross = results['table']['geodistill/cross_area']
    results['cross_area_mean_reduction'] = 1.0 - dist_cross['mean'] / base_cross['mean']
    results['cross_area_median_change_m'] = dist_cross['median'] - base_cross['median']
    results['control_worse_than_distill'] = (
        results['table']['augment/cross_area']['mean'] > dist_cross['mean'])
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + '\n')
    print(markdown_table(results, methods))
    print(f'\nresults: {results_path}')
    return results


def markdown_table(results: dict, methods=METHODS) -> str:
    """The README table: one row per (method, area)."""
    names = {'base': 'weakly supervised base', 'geodistill': 'GeoDistill',
             'augment': 'FoV masks as augmentation (control)',
             CONTINUED: 'weak objective continued, no mask (control)'}
    rows = ['| model | test | mean (m) | median (m) | R@1 m | R@3 m | R@5 m | items |',
            '|---|---|---|---|---|---|---|---|']
    for area in AREAS:
        for method in methods:
            m = results['table'][f'{method}/{area}']
            rows.append(f"| {names[method]} | {area.replace('_', '-')} | {m['mean']:.2f} | "
                        f"{m['median']:.2f} | {100 * m['recall_1m']:.1f}% | "
                        f"{100 * m['recall_3m']:.1f}% | {100 * m['recall_5m']:.1f}% | "
                        f"{m['count']} |")
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
    parser.add_argument('--base-epochs', type=int, help=f'default: the {PRESET} preset')
    parser.add_argument('--distill-epochs', type=int, help=f'default: the {PRESET} preset')
    parser.add_argument('--steps-per-epoch', type=int, help='cap (default: whole epochs)')
    parser.add_argument('--max-eval-items', type=int, help='evaluate the first N items only')
    parser.add_argument('--continued-control', action='store_true',
                        help='also continue the weak objective without masks (a 2nd control)')
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    return run(ns.out, ns.device, ns.base_epochs, ns.distill_epochs, ns.steps_per_epoch,
               ns.max_eval_items, ns.results, ns.continued_control)


if __name__ == '__main__':
    main()
