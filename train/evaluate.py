#!/usr/bin/env python3
"""Evaluate a localizer on a split: metrics (method.md section 7), per-item CSV, seeded and
saved yaw noise, plots (error CDF, heatmaps; before/after with --compare-checkpoint).

Python: `from geodistill_core.evaluation import evaluate, EvalConfig, EvalPaths`;
`evaluate(EvalConfig(dataset='vigor', split='test'), EvalPaths(Path('runs/distill/best'),
data_root=Path('data/VIGOR')))` -> Path of results.json.
Command line: `python train/evaluate.py --help`.
"""
import argparse
import logging
from pathlib import Path
import sys

from geodistill_core.evaluation import EvalConfig, EvalPaths
from geodistill_core.evaluation import evaluate as main  # noqa: F401  main(conf, paths) -> Path
from geodistill_core.models.checkpoint import CheckpointError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--checkpoint', required=True, type=Path,
                   help='location model checkpoint folder (e.g. runs/distill/best)')
    p.add_argument('--orientation-checkpoint', type=Path,
                   help='orientation estimator checkpoint (panoramas)')
    p.add_argument('--compare-checkpoint', type=Path,
                   help='the model before distillation, run on the same items and noise')
    p.add_argument('--dataset', required=True, help="'vigor' | 'kitti' | 'flat_world'")
    p.add_argument('--data-root', type=Path, help='dataset folder (not for flat_world)')
    p.add_argument('--split', required=True, help="'test' | 'test1' | 'test2' | 'val'")
    p.add_argument('--yaw-noise-deg', type=float, default=0.0,
                   help='test-time yaw prior noise range (deg); 0 = known orientation')
    p.add_argument('--yaw-search', choices=('none', 'rotation'), default='none',
                   help="'rotation': the rotation search over the prior +- --yaw-noise-deg "
                        "(the deployed pipeline; its yaw errors are reported)")
    p.add_argument('--seed', type=int, default=0, help='seed of the test-time noise')
    p.add_argument('--max-items', type=int, help='evaluate only the first N items')
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--num-workers', type=int, default=2)
    p.add_argument('--device', default='auto', help="'auto' | 'cpu' | 'cuda[:n]'")
    p.add_argument('--precision', default='float32', choices=('float32', 'bfloat16', 'float16'))
    p.add_argument('--data-override', dest='data_overrides', action='append', default=[],
                   metavar='FIELD=VALUE', help='reader DataConfig override, e.g. area=same')
    p.add_argument('--vehicle-frame-errors', action=argparse.BooleanOptionalAction,
                   default=None, help='lateral/longitudinal errors (default: KITTI only)')
    p.add_argument('--num-heatmaps', type=int, default=4)
    p.add_argument('--progress', action=argparse.BooleanOptionalAction, default=True)
    p.add_argument('--out', type=Path, help='output folder (default: beside the checkpoint)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace a finished evaluation made with other arguments')
    return p


def cli(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    try:
        conf = EvalConfig(
            dataset=args.dataset, split=args.split, yaw_noise_deg=args.yaw_noise_deg,
            seed=args.seed, max_items=args.max_items, batch_size=args.batch_size,
            num_workers=args.num_workers, device=args.device, precision=args.precision,
            data_overrides=tuple(args.data_overrides),
            vehicle_frame_errors=args.vehicle_frame_errors, num_heatmaps=args.num_heatmaps,
            progress=args.progress, yaw_search=args.yaw_search)
    except ValueError as error:
        build_parser().error(str(error))
    paths = EvalPaths(args.checkpoint, args.data_root, args.orientation_checkpoint,
                      args.compare_checkpoint, args.out)
    try:
        print(main(conf, paths, overwrite=args.overwrite))
    except (CheckpointError, OSError, ValueError) as error:  # one line, no traceback
        print(f'evaluate.py: error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(cli())
