#!/usr/bin/env python3
"""Train the orientation estimator from pairs rotated by a known yaw.

Python: `from geodistill_core.training import train_orientation, preset, RunPaths`;
`main(preset('tiny', 'orientation'), RunPaths(Path('runs/x'))) -> Path` (the checkpoint).
Command line: `python train/train_orientation.py --help`; under torchrun for several GPUs or nodes.
"""
import sys

from geodistill_core.training import train_orientation as main  # noqa: F401  main(conf, paths) -> Path
from geodistill_core.training.cli import cli_main

if __name__ == '__main__':
    sys.exit(cli_main('orientation'))
