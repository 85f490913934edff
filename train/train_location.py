#!/usr/bin/env python3
"""Train the base location estimator without position labels (weak triplet).

Python: `from geodistill_core.training import train_location, preset, RunPaths`;
`main(preset('tiny', 'location'), RunPaths(Path('runs/x'))) -> Path` (the checkpoint).
Command line: `python train/train_location.py --help`; under torchrun for several GPUs or nodes.
"""
import sys

from geodistill_core.training import train_location as main  # noqa: F401  main(conf, paths) -> Path
from geodistill_core.training.cli import cli_main

if __name__ == '__main__':
    sys.exit(cli_main('location'))
