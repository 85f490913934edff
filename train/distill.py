#!/usr/bin/env python3
"""GeoDistill: FoV-masked teacher-student self-distillation of a base model.

Python: `from geodistill_core.training import distill, preset, RunPaths`;
`main(preset('tiny', 'distill'), RunPaths(Path('runs/x'), base_checkpoint=Path('runs/base/best')))`
-> Path (the teacher's checkpoint).
Command line: `python train/distill.py --help`; under torchrun for several GPUs or nodes.
"""
import sys

from geodistill_core.training import distill as main  # noqa: F401  main(conf, paths) -> Path
from geodistill_core.training.cli import cli_main

if __name__ == '__main__':
    sys.exit(cli_main('distill'))
