#!/usr/bin/env python3
"""Choose a correlation model's template energy floor on validation drives and save it.

    python train/choose_template_floor.py --checkpoint DIR --data-root VALIDATION_KITTI_ROOT
        --split train --split test2 [--candidates 1.0 0.7 0.5 0.3] [--yaw-noise-deg 10]
        (--in-place | --out NEW_DIR) [--report floor.json]

Every candidate is evaluated on the given splits of a validation dataset (not the model's
training data, never a test split you report) and the floor with the lowest mean error is
written into the checkpoint's model config (geodistill_core/evaluation/template_floor.py).
Run it before train/calibrate.py: the heatmap calibration is fitted under the floor.
"""
import argparse
import json
import logging
from pathlib import Path
import sys

from geodistill_core.evaluation.config import EvalConfig
from geodistill_core.evaluation.template_floor import choose_template_floor, write_template_floor


def main(args=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', type=Path, required=True)
    parser.add_argument('--dataset', default='kitti')
    parser.add_argument('--data-root', type=Path, required=True,
                        help='validation dataset folder (ground truth needed)')
    parser.add_argument('--split', action='append', required=True,
                        help='validation split (repeat for several)')
    parser.add_argument('--candidates', type=float, nargs='+', default=[1.0, 0.7, 0.5, 0.3])
    parser.add_argument('--yaw-noise-deg', type=float, default=10.0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--yaw-search', choices=('none', 'rotation'), default='none')
    parser.add_argument('--device', default='auto')
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument('--in-place', action='store_true')
    where.add_argument('--out', type=Path, help='write a copy of the checkpoint')
    parser.add_argument('--report', type=Path, help='write every candidate as JSON')
    ns = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    try:
        conf = EvalConfig(dataset=ns.dataset, yaw_noise_deg=ns.yaw_noise_deg, seed=ns.seed,
                          device=ns.device, num_workers=0, progress=False,
                          yaw_search=ns.yaw_search)
        if ns.out is not None and ns.out.exists():
            raise FileExistsError(f'{ns.out} exists; choose a new --out folder')
        report = choose_template_floor(ns.checkpoint, conf, ns.data_root, ns.split,
                                       ns.candidates)
        target = write_template_floor(ns.checkpoint, report['chosen'],
                                      None if ns.in_place else ns.out)
    except (OSError, ValueError) as error:
        print(f'choose_template_floor.py: error: {error}', file=sys.stderr)
        return 1
    if ns.report is not None:
        ns.report.parent.mkdir(parents=True, exist_ok=True)
        ns.report.write_text(json.dumps(report, indent=2) + '\n')
    print(f"template_energy_floor {report['chosen']:g} -> {target}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
