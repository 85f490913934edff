#!/usr/bin/env python3
"""Choose the filter's camera weight on the validation drives (never on benchmark drives).

Replays the calibration drives (synthetic presets 'calibration' / 'calibration_panorama',
seed 1000, converted with seed 1000: see the model cards) offline through the node with
each candidate ``fusion.camera_weight`` and prints error and consistency per candidate;
writes bench/results/fusion_validation.json.

    python bench/fusion_validation.py --camera pinhole --root outputs/fusion/calib_pinhole \
        [--weights 1.0 0.5 0.25] [--heading-noise-deg 3]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault('OMP_NUM_THREADS', '1')

from results_json import write_json  # noqa: E402

from geodistill_ros.replay.evaluate import ReplayConfig, replay  # noqa: E402
from geodistill_ros.replay.validation_drives import validation_drives  # noqa: E402

RESULTS = Path(__file__).resolve().parent / 'results' / 'fusion_validation.json'


def main(args=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--camera', choices=('pinhole', 'panorama'), required=True)
    p.add_argument('--root', type=Path, required=True, help='make_synthetic output folder '
                   'with bags/<date> converted from its drives')
    p.add_argument('--weights', type=float, nargs='+', default=[1.0, 0.5, 0.25])
    p.add_argument('--heading-noise-deg', type=float, default=3.0)
    ns = p.parse_args(args)
    drives = validation_drives(ns.root, ns.camera)
    rows = []
    for weight in ns.weights:
        for drive in drives:
            result = replay(ReplayConfig(
                bag=drive.bag, map_path=drive.map_path, offline=True, plots=False, seed=1000,
                out_dir=ns.root / 'validation' / f'w{weight:g}_{drive.date}',
                heading_noise_deg=ns.heading_noise_deg,
                params={'fusion.camera_weight': weight}))
            c = result.report['comparison']
            rows.append({'camera': ns.camera, 'camera_weight': weight, 'city': drive.city,
                         'gnss_mean': c['gnss_input']['mean'], **{
                             f'fused_{k}': c['published'][k] for k in (
                                 'mean', 'median', 'nees_mean', 'inside_95')}})
            print(json.dumps(rows[-1]), flush=True)
    for weight in ns.weights:
        sel = [r for r in rows if r['camera_weight'] == weight]
        agg = {k: sum(r[k] for r in sel) / len(sel) for k in (
            'gnss_mean', 'fused_mean', 'fused_median', 'fused_nees_mean', 'fused_inside_95')}
        worst = max(r['fused_nees_mean'] for r in sel)
        print(f'{ns.camera} camera_weight {weight:g}: ' + ', '.join(
            f'{k} {v:.2f}' for k, v in agg.items()) + f', worst NEES {worst:.2f}')
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    previous[ns.camera] = rows
    write_json(RESULTS, previous)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
