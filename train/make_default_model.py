"""Train the embedded default model (pinhole, KITTI-like) on synthetic data, label-free.

    python train/make_default_model.py --out outputs/default_model [--base-steps 600]

Steps (each skipped when already done, so an interrupted run resumes):
1. synthetic training data in the KITTI layout (train/make_synthetic.py, city styles other
   than the demo's old_town),
2. the weakly supervised base model (preset synthetic_kitti, weak triplet, no positions),
3. GeoDistill from that base (FoV stripe-masked student, sharpened CE, EMA teacher),
4. copy the distilled teacher into geodistill_core/assets/default_pinhole_location, the
   model `Localizer.default('pinhole')` and the node load when no checkpoint is given.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import logging
from pathlib import Path
import shutil

from geodistill_core.localizer import ASSETS_DIR
from geodistill_core.training import RunPaths, distill, preset, train_location

logger = logging.getLogger('make_default_model')


def training_data_preset():
    """KITTI-layout training data: 3 training cities x (30 train + 3 test1) short drives of
    10 frames (many distinct places rather than long correlated drives), plus 8 old_town
    test2 drives (cross-area); no VIGOR part."""
    from geodistill_core.data.synthetic.export_kitti import KittiDriveConfig
    from geodistill_core.data.synthetic.presets import SyntheticPreset
    return SyntheticPreset('default_model_train', world_size_m=480.0, cell_m=0.125,
                           kitti_drive=KittiDriveConfig(frames=10, margin_m=50.0),
                           kitti_train_drives=30, kitti_test1_drives=3, kitti_test2_drives=8)


def make_default_model(out_dir: Path, *, base_epochs: int = 8,
                       base_steps: int | None = None, distill_epochs: int = 8,
                       distill_steps: int | None = None, install: bool = True) -> Path:
    """Run the whole recipe; returns the installed (or distilled) checkpoint directory."""
    from geodistill_core.data.synthetic.presets import make_synthetic

    out_dir = Path(out_dir)
    data_root = Path(make_synthetic(training_data_preset(), out_dir / 'data', seed=0,
                                    layout='kitti')) / 'kitti'
    base_conf = preset('synthetic_kitti', 'location')
    base_conf = replace(base_conf, loop=replace(base_conf.loop, epochs=base_epochs,
                                                steps_per_epoch=base_steps, val_steps=8))
    base = train_location(base_conf, RunPaths(out_dir / 'base', data_root))
    dist_conf = preset('synthetic_kitti', 'distill')
    dist_conf = replace(dist_conf, loop=replace(dist_conf.loop, epochs=distill_epochs,
                                                steps_per_epoch=distill_steps, val_steps=8))
    teacher = distill(dist_conf, RunPaths(out_dir / 'distill', data_root, base))
    if not install:
        return teacher
    target = ASSETS_DIR / 'default_pinhole_location'
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(teacher, target)
    logger.info('installed %s -> %s', teacher, target)
    return target


def main(args=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('outputs/default_model'))
    parser.add_argument('--base-epochs', type=int, default=8)
    parser.add_argument('--base-steps', type=int, default=None, help='cap on steps per epoch')
    parser.add_argument('--distill-epochs', type=int, default=8)
    parser.add_argument('--distill-steps', type=int, default=None,
                        help='cap on steps per epoch')
    parser.add_argument('--install', action=argparse.BooleanOptionalAction, default=True,
                        help='copy the result into the package assets')
    ns = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    return make_default_model(ns.out, base_epochs=ns.base_epochs,
                              base_steps=ns.base_steps, distill_epochs=ns.distill_epochs,
                              distill_steps=ns.distill_steps, install=ns.install)


if __name__ == '__main__':
    main()
