#!/usr/bin/env python3
"""Fit a location model's heatmap calibration (temperature + outlier weight) on drive bags.

    python train/calibrate.py --checkpoint DIR --bag BAG --map MAP.tif [--bag B2 --map M2]
        --method truth|gnss (--in-place | --out NEW_DIR) [--report calibration.json]

--method truth: maximum likelihood of the ground-truth positions (bags with the
/geodistill/ground_truth/pose topic: a validation drive). --method gnss: label-free, from
the noisy fixes alone (the normalised innovation between the heatmap peak and the fix
matches its chi-square expectation; geodistill_core/filtering/calibration_fit.py): for a
user's own drives without ground truth. --checkpoint '' = the embedded default model of the
bag's camera. Never calibrate on a test split or on the drive you evaluate on.
"""
import argparse
import json
import logging
from pathlib import Path
import sys

from geodistill_ros.bags import player as bp
from geodistill_ros.replay.calibration import calibrate, write_calibration


def main(args=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', default='', help="location checkpoint folder ('' = "
                        'the embedded default model)')
    parser.add_argument('--bag', type=Path, action='append', required=True,
                        help='drive bag folder (repeat for several drives)')
    parser.add_argument('--map', type=Path, action='append', required=True,
                        help="each bag's satellite GeoTIFF, in the same order")
    parser.add_argument('--method', choices=('truth', 'gnss'), required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument('--in-place', action='store_true',
                       help="write the calibration into the checkpoint's config.json")
    where.add_argument('--out', type=Path, help='write a calibrated copy of the checkpoint')
    parser.add_argument('--frames', type=int, default=None, help='first N frames per bag')
    parser.add_argument('--heading-noise-deg', type=float, default=0.0,
                        help='noise on the heading prior while collecting (seeded)')
    parser.add_argument('--report', type=Path, default=None, help='write the fit as JSON')
    parser.add_argument('--samples', type=Path, default=None,
                        help='.npz of the collected frames: written after collecting, read '
                        'instead of running the model when it exists (refits are fast)')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda', 'auto'))
    ns = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    if len(ns.bag) != len(ns.map):
        parser.error(f'{len(ns.bag)} --bag but {len(ns.map)} --map: give one map per bag')
    checkpoint = ns.checkpoint
    if not checkpoint:
        from geodistill_core.localizer import ASSETS_DIR
        camera = bp.open_drive_bag(ns.bag[0]).camera_model
        checkpoint = str(ASSETS_DIR / f'default_{camera}_location')
    try:
        calibration = calibrate(checkpoint, list(zip(ns.bag, ns.map, strict=True)),
                                ns.method,
                                max_frames=ns.frames, heading_noise_deg=ns.heading_noise_deg,
                                device=ns.device, samples_file=ns.samples)
        target = write_calibration(Path(checkpoint), calibration,
                                   None if ns.in_place else ns.out)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f'calibrate.py: error: {err}', file=sys.stderr)
        return 1
    text = json.dumps(calibration.to_dict(), indent=2)
    print(text)
    if ns.report:
        ns.report.write_text(text + '\n')
    logging.info('calibration written to %s/config.json', target)
    return 0


if __name__ == '__main__':
    sys.exit(main())
