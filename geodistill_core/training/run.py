"""The training entry points: `main(conf, paths) -> Path` per task.

- `train_location(conf, paths)`: the base location estimator (weakly supervised, or
  supervised for the descriptor teacher).
- `distill(conf, paths)`: GeoDistill from `paths.base_checkpoint`.
- `train_orientation(conf, paths)`: the orientation estimator.
- `run_training(conf, paths)`: dispatch on conf.task.

Each returns the checkpoint to use: `<output>/best` (chosen on the validation split) or
`<output>/last` without a validation split. The run directory holds config.json (a
resume with another config is refused, with the diff), the training state, TensorBoard
logs and the checkpoints; a finished run is skipped when called again.
"""
from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path
import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from geodistill_core.training.config import TrainConfig
from geodistill_core.training.config_json import check_resume_config, save_config, to_dict
from geodistill_core.training.data import build_dataset
from geodistill_core.training.distill import DistillObjective
from geodistill_core.training.distributed import barrier, init_distributed
from geodistill_core.training.loop import BEST_DIR, LAST_DIR, STATE_DIR, Trainer
from geodistill_core.training.models import build_model, load_trained_model, save_trained_model
from geodistill_core.training.objective import WeakObjective
from geodistill_core.training.orientation import OrientationObjective
from geodistill_core.training.state import read_training_meta
from geodistill_core.training.supervised import SupervisedObjective

logger = logging.getLogger(__name__)
CONFIG_FILE = 'config.json'


@dataclass(frozen=True)
class RunPaths:
    """Where things are on this machine (not part of the config).

    output_dir: the run directory. data_root: the dataset folder (None for procedural
    data). base_checkpoint: the trained base model GeoDistill starts from.
    """

    output_dir: Path
    data_root: Path | None = None
    base_checkpoint: Path | None = None


def _training_meters_per_px(train_set) -> float | None:
    """The satellite metres/pixel the model was trained at (at sat_size), recorded in its
    checkpoints so a node can check its crop; None when the first and last items differ
    (VIGOR cities differ in resolution)."""
    if len(train_set) == 0:
        return None
    values = {round(float(train_set[i]['sat_meters_per_px']), 9)
              for i in {0, len(train_set) - 1}}
    return values.pop() if len(values) == 1 else None


def _finished_checkpoint(conf: TrainConfig, run_dir: Path) -> Path | None:
    """The result of an already finished run in run_dir, else None."""
    if not (run_dir / STATE_DIR / 'meta.json').is_file():
        return None
    progress = read_training_meta(run_dir / STATE_DIR)['progress']
    if progress['epoch'] < conf.loop.epochs:
        return None
    best = run_dir / BEST_DIR
    return best if progress.get('best_epoch') is not None and best.is_dir() else run_dir / LAST_DIR


def _prepare_run_dir(conf: TrainConfig, run_dir: Path, context) -> None:
    config_path = run_dir / CONFIG_FILE
    if config_path.is_file():
        if check_resume_config(config_path, conf) and context.is_main:
            logger.info('%s: extending the run to %d epochs', run_dir, conf.loop.epochs)
            save_config(conf, config_path)
    elif context.is_main:
        save_config(conf, config_path)
    barrier(context)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _train(conf: TrainConfig, paths: RunPaths, build) -> Path:
    """Shared driver: build(conf, paths) -> (objective, model_config, extra provenance)."""
    created_group = not dist.is_initialized()
    context = init_distributed(conf.loop.device)
    try:
        run_dir = Path(paths.output_dir)
        _prepare_run_dir(conf, run_dir, context)
        done = _finished_checkpoint(conf, run_dir)
        if done is not None:
            logger.info('%s already finished (%d epochs): %s', run_dir, conf.loop.epochs, done)
            return done
        _seed_everything(conf.loop.seed)
        train_set = build_dataset(conf.data, conf.data.train_split, paths.data_root)
        val_set = (build_dataset(conf.data, conf.data.val_split, paths.data_root)
                   if conf.data.val_split else None)
        objective, model_config, provenance = build(conf, paths)
        input_sizes = {'ground_hw': list(conf.data.ground_hw),
                       'satellite_hw': [conf.data.sat_size, conf.data.sat_size]}
        meters_per_px = _training_meters_per_px(train_set)

        def save_model(path: Path, module, prov: dict[str, Any]) -> Path:
            return save_trained_model(path, module, model_config, input_sizes, meters_per_px,
                                      prov, extra={'training_config': to_dict(conf)})

        provenance = {**provenance, 'dataset': conf.data.dataset,
                      'data_root': None if paths.data_root is None else str(paths.data_root)}
        trainer = Trainer(conf, objective, train_set, val_set, run_dir, context, save_model,
                          provenance)
        result = trainer.fit()
        return result.best_path or result.last_path
    finally:
        if created_group and dist.is_initialized():
            dist.destroy_process_group()


def _check_task(conf: TrainConfig, task: str) -> None:
    if conf.task != task:
        raise ValueError(f'this entry point trains task {task!r}, the config says '
                         f'{conf.task!r}; use the matching script or preset(name, {task!r})')


def train_location(conf: TrainConfig, paths: RunPaths) -> Path:
    """Train the base location estimator; returns its checkpoint."""
    _check_task(conf, 'location')

    def build(conf, paths):
        model = build_model(conf.model)
        if conf.supervision == 'supervised':
            logger.warning('supervised training reads position labels (descriptor teacher '
                           'only); GeoDistill itself never does')
            objective = SupervisedObjective(model, conf.data.yaw_key, conf.supervised)
        else:
            objective = WeakObjective(model, conf.weak, conf.data.yaw_key)
        return objective, conf.model, {'objective': conf.supervision}
    return _train(conf, paths, build)


def distill(conf: TrainConfig, paths: RunPaths) -> Path:
    """GeoDistill (or its augmentation control) from paths.base_checkpoint; returns the
    teacher's checkpoint (the student's in mode 'augment').

    mode 'augment' with augment_start 'scratch' (the paper's Table 4 control) trains a new
    base model from conf.model's initial weights with the weak loss on FoV-masked images,
    no base checkpoint: compare it with the base trained without the augmentation for the
    same number of steps (set --epochs to the base's).
    """
    _check_task(conf, 'distill')
    scratch = conf.distill.mode == 'augment' and conf.distill.augment_start == 'scratch'
    if paths.base_checkpoint is None and not scratch:
        raise ValueError('GeoDistill needs the trained base model: pass --base-checkpoint '
                         '(the best/ folder written by train_location.py)')
    if paths.base_checkpoint is not None and scratch:
        raise ValueError("augment_start='scratch' trains a new base from the initial weights; "
                         'drop --base-checkpoint (or use augment_start=base to continue it)')

    def build(conf, paths):
        if scratch:
            objective = DistillObjective(build_model(conf.model), conf.distill, conf.weak,
                                         conf.model.camera_model, conf.data.yaw_key)
            return objective, conf.model, {'objective': 'geodistill/augment_from_scratch'}
        model, model_config, _ = load_trained_model(paths.base_checkpoint)
        if model_config.kind != conf.model.kind or model_config.camera_model != \
                conf.model.camera_model:
            logger.warning('the base checkpoint is a %s/%s model; the config names %s/%s. '
                           'The checkpoint wins', model_config.kind, model_config.camera_model,
                           conf.model.kind, conf.model.camera_model)
        objective = DistillObjective(model, conf.distill, conf.weak, model_config.camera_model,
                                     conf.data.yaw_key)
        return objective, model_config, {'objective': f'geodistill/{conf.distill.mode}',
                                         'base_checkpoint': str(paths.base_checkpoint)}
    return _train(conf, paths, build)


def train_orientation(conf: TrainConfig, paths: RunPaths) -> Path:
    """Train the orientation estimator (a registered model kind); returns its checkpoint."""
    _check_task(conf, 'orientation')

    def build(conf, paths):
        model = build_model(conf.model)
        return OrientationObjective(model, conf.orientation), conf.model, {
            'objective': f'orientation/{conf.orientation.rotation}'}
    return _train(conf, paths, build)


def run_training(conf: TrainConfig, paths: RunPaths) -> Path:
    """Dispatch on conf.task."""
    return {'location': train_location, 'distill': distill,
            'orientation': train_orientation}[conf.task](conf, paths)
