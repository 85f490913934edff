#!/usr/bin/env python3
"""Replay drives offline with node-parameter variants: the yaw tracker without an INS
heading, and the single-frame covariance's innovation scale (README 'Without an INS
heading', 'Fusing over time').

    python bench/tracking_drives.py yaw --drives validation|bench [--variants off on every2]
    python bench/tracking_drives.py velocity --drives bench [--velocity-noise-mps 0.1]
    python bench/tracking_drives.py scale --drives validation|bench [--camera pinhole]
        [--targets 1.2 off]
    python bench/tracking_drives.py gate --drives validation|bench [--camera panorama]
        [--gates default off 9.21] [--inlier-scale 0.5] [--validation-heading-noise-deg 3]

Drives: 'validation' = the calibration's four validation drives (outputs/fusion/calib_<camera>,
train/calibrate.py's synthetic preset, seed 1000; where the settings are chosen), 'bench' =
the five drives of bench/bench_fusion.py (outputs/bench_fusion, run it first; never used to
choose). 'yaw' replays with the fix-track heading (no heading topic); 'velocity' with the
GNSS velocity input instead (course over ground, seeded noise); 'scale' (the innovation
scale's target NIS) and 'gate' (fusion.single_covariance_gate, with the camera's default
scale) with the heading topic and the benchmark's heading noise. One thread; every frame
processed; prints one JSON line per run and writes them to --out (default
bench/results/tracking_<mode>_<drives>.json).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from results_json import write_json

os.environ.setdefault('OMP_NUM_THREADS', '1')

ROOT = Path(__file__).resolve().parents[1]
YAW_VARIANTS = {'default': {}, 'off': {'fusion.yaw_tracking': False},
                'on': {'fusion.yaw_tracking': True, 'fusion.yaw_search_every': 1},
                'every2': {'fusion.yaw_tracking': True, 'fusion.yaw_search_every': 2},
                'every3': {'fusion.yaw_tracking': True, 'fusion.yaw_search_every': 3},
                'cam8': {'fusion.yaw_tracking': True,
                         'fusion.camera_max_search_yaw_std_deg': 8.0},
                'nobx': {'fusion.yaw_tracking': True, 'fusion.bias_excursion_chi2': 0.0},
                **{f'bx{c:g}': {'fusion.yaw_tracking': True, 'fusion.bias_excursion_chi2': c}
                   for c in (4.0, 6.25, 9.0, 16.0, 25.0)},
                **{f'cp{d:g}': {'fusion.yaw_tracking': True,
                                'fusion.camera_max_prior_disagreement_deg': d}
                   for d in (10.0, 15.0, 20.0, 30.0)},
                **{f'pr{d:g}': {'fusion.yaw_tracking': True, 'yaw_prior_range_deg': d}
                   for d in (40.0, 60.0)},
                **{f'pd{d:g}': {'fusion.yaw_tracking': True,
                                'fusion.yaw_max_prior_disagreement_deg': d}
                   for d in (15.0, 20.0, 30.0, 45.0)}}
# bench_fusion's heading noise (deg) and seed per drive
BENCH_HEADING = {'demo': (0.0, 0), 's1': (3.0, 1), 's2': (3.0, 2), 's3': (3.0, 3),
                 's4': (2.0, 4)}


def drives(which: str, camera: str, validation_heading_noise_deg: float = 0.0
           ) -> list[tuple[str, Path, Path, float, int]]:
    """(name, bag, map, heading noise deg, seed) per drive."""
    if which == 'validation':
        from geodistill_ros.replay.validation_drives import validation_drives
        root = ROOT / 'outputs' / 'fusion' / f'calib_{camera}'
        return [(d.city, d.bag, d.map_path, validation_heading_noise_deg, 1000 + k)
                for k, d in enumerate(validation_drives(root, camera))]
    out = []
    for name, (noise, seed) in BENCH_HEADING.items():
        folder = ROOT / 'outputs' / 'bench_fusion' / f'{camera}_{name}'
        maps = sorted(folder.glob('data*/**/*.tif'))  # data/ (pinhole), data_panorama/
        if not maps:
            raise SystemExit(f'{folder}: no drive; run python bench/bench_fusion.py first')
        out.append((name, folder / 'bag', maps[0], noise, seed))
    return out


def gate_params(gate: str, inlier_scale: float | None) -> dict:
    """Node parameters of a --gates entry."""
    if gate == 'default':
        return {}
    if gate == 'off':
        return {'fusion.single_covariance_gate': 'false'}
    params = {'fusion.single_covariance_gate': 'true',
              'fusion.single_covariance_gate_nis': float(gate)}
    if inlier_scale is not None:
        params['fusion.single_covariance_gate_inlier_scale'] = inlier_scale
    return params


def summary(report: dict) -> dict:
    single = report['metrics_single_frame']
    return {'frames': report['frames']['outputs'],
            'node_latency_p50_ms': report['timing']['node_latency_ms'].get('p50'),
            'gnss_mean_m': report['metrics']['gnss']['position']['mean'],
            'published_mean_m': report['metrics']['position']['mean'],
            'single_mean_m': single['position']['mean'],
            'published_yaw': report['metrics'].get('yaw'), 'single_yaw': single.get('yaw'),
            'published_consistency': report['metrics']['consistency'],
            'single_consistency': single['consistency'],
            'diagnostics': {k: v for k, v in (report.get('fusion') or {}).items()
                            if k.startswith(('yaw', 'single_covariance', 'fusion_resets',
                                              'fusion_camera_skipped'))}}


def main(args=None) -> Path:
    import torch

    from geodistill_ros.replay.evaluate import ReplayConfig, replay
    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('mode', choices=('yaw', 'velocity', 'scale', 'gate'),
                   help="yaw: no heading input (fix-track prior); velocity: the GNSS "
                   "velocity input (course over ground, --velocity-noise-mps); scale: the "
                   'heading topic with the benchmark noise, target NIS variants; gate: '
                   'the same, single-frame gate variants')
    p.add_argument('--velocity-noise-mps', type=float, default=0.1)
    p.add_argument('--drives', choices=('validation', 'bench'), default='validation')
    p.add_argument('--only', nargs='+', default=None, metavar='DRIVE',
                   help='replay only these drives (names as printed: demo, s1, ..., or the '
                   'validation cities)')
    p.add_argument('--validation-heading-noise-deg', type=float, default=0.0,
                   help='modes scale and gate on the validation drives: heading-prior noise '
                   '(deg, 1 sigma, seeded per drive) as an INS of that accuracy adds')
    p.add_argument('--camera', choices=('pinhole', 'panorama'), default='pinhole')
    p.add_argument('--variants', nargs='+', choices=sorted(YAW_VARIANTS),
                   default=['off', 'every2'])
    p.add_argument('--targets', nargs='+', default=['1.2', 'off'],
                   help="mode scale: target mean NIS values, 'off' = no scale")
    p.add_argument('--gates', nargs='+', default=['default', 'off'],
                   help="mode gate: 'default' (the node's defaults), 'off' (no gate) or a "
                   'gate NIS (gating on, with --inlier-scale)')
    p.add_argument('--inlier-scale', type=float, default=None,
                   help='mode gate, numeric gates: fusion.single_covariance_gate_inlier_scale')
    p.add_argument('--out', type=Path, default=None)
    p.add_argument('--work', type=Path, default=ROOT / 'outputs' / 'tracking_drives')
    ns = p.parse_args(args)
    if ns.mode in ('yaw', 'velocity'):
        runs = {v: YAW_VARIANTS[v] for v in ns.variants}
    elif ns.mode == 'gate':
        runs = {g: gate_params(g, ns.inlier_scale) for g in ns.gates}
    else:
        runs = {t: ({'fusion.single_covariance_adapt': 'false'} if t == 'off' else
                    {'fusion.single_covariance_adapt': 'true',
                     'fusion.single_covariance_target_nis': float(t)}) for t in ns.targets}
    out = ns.out or ROOT / 'bench' / 'results' / f'tracking_{ns.mode}_{ns.drives}.json'
    rows = []
    for name, bag, map_path, noise, seed in drives(ns.drives, ns.camera,
                                                   ns.validation_heading_noise_deg):
        if ns.only and name not in ns.only:
            continue
        for variant, params in runs.items():
            report = replay(ReplayConfig(
                bag=bag, map_path=map_path, out_dir=ns.work / ns.mode / f'{name}_{variant}',
                offline=True, plots=False, seed=seed,
                heading={'yaw': 'none', 'velocity': 'gnss_velocity'}.get(ns.mode, 'oxts'),
                heading_noise_deg=noise if ns.mode in ('scale', 'gate') else 0.0,
                gnss_velocity_noise_mps=ns.velocity_noise_mps, params=params)).report
            row = {'drive': name, 'camera': ns.camera, 'variant': variant, **summary(report)}
            rows.append(row)
            brief = {k: row[k] for k in ('drive', 'variant', 'published_mean_m',
                                         'single_mean_m', 'node_latency_p50_ms')}
            for which in ('published', 'single'):
                c = row[f'{which}_consistency']
                brief[f'{which}_nees'] = c.get('nees_mean')
                brief[f'{which}_inside_95'] = c.get('inside_2sigma')
            print(json.dumps(brief), flush=True)
            write_json(out, rows, indent=1, default=str)
    return out


if __name__ == '__main__':
    main()
