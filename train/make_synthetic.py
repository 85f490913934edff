#!/usr/bin/env python3
"""Write the synthetic world in the official VIGOR and KITTI layouts, plus GeoTIFF maps.

Python: `from geodistill_core.data.synthetic import make_synthetic`;
`make_synthetic('tiny', Path('data/synthetic_tiny'), seed=0)` -> Path (the output folder).
Command line:
    python train/make_synthetic.py --preset tiny --out data/synthetic_tiny [--seed 0]
        [--layout vigor|kitti|both]
Presets (geodistill_core.data.synthetic.presets): tiny (seconds, tests), bench (the
benchmark set), demo (a 300-frame KITTI drive through an unseen city style + its GeoTIFF).
Reruns skip finished work; a rerun with another preset or seed into the same folder is
refused.
"""
import argparse
import logging
from pathlib import Path
import sys

from geodistill_core.data.synthetic.presets import LAYOUTS, PRESET_NAMES, make_synthetic


def main(args=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', required=True, choices=PRESET_NAMES)
    parser.add_argument('--out', required=True, type=Path, help='output folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--layout', default='both', choices=LAYOUTS)
    parser.add_argument('--no-progress', action='store_true', help='hide progress bars')
    parser.add_argument('--jobs', type=int, default=1,
                        help='processes rendering KITTI cities at once (same output)')
    ns = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    return make_synthetic(ns.preset, ns.out, seed=ns.seed, layout=ns.layout,
                          progress=not ns.no_progress, jobs=ns.jobs)


if __name__ == '__main__':
    main()
    sys.exit(0)
