"""Training without position labels: weak base model, GeoDistill, orientation (issue 5).

Entry points (`main(conf, paths) -> Path`, thin CLIs in train/): `train_location`,
`distill`, `train_orientation`, `run_training`; configs from `preset(name, task)`.
Building blocks: `Trainer` (loop.py), objectives (`WeakObjective`, `DistillObjective`,
`SupervisedObjective`, `OrientationObjective`), `ema_update` / `TeacherSchedule`,
`batch_to_location_inputs` / `location_scores` (adapter.py), training states (state.py).
"""
from geodistill_core.training.adapter import (
    POSITION_LABEL_KEY,
    BatchScores,
    batch_to_location_inputs,
    location_scores,
)
from geodistill_core.training.config import (
    DataConfig,
    DistillConfig,
    LoopConfig,
    ModelConfig,
    OptimConfig,
    OrientationConfig,
    TrainConfig,
    WeakConfig,
)
from geodistill_core.training.config_json import (
    ConfigMismatchError,
    apply_overrides,
    check_resume_config,
    config_diff,
    from_dict,
    load_config,
    save_config,
    to_dict,
)
from geodistill_core.training.data import build_dataset, register_dataset
from geodistill_core.training.distill import DistillLossModule, DistillObjective
from geodistill_core.training.distributed import DistributedContext, init_distributed
from geodistill_core.training.ema import TeacherSchedule, copy_weights, ema_update
from geodistill_core.training.ground_masks import GroundMask, draw_ground_mask
from geodistill_core.training.loop import FitResult, Trainer
from geodistill_core.training.models import (
    LocationModel,
    build_model,
    load_trained_model,
    register_model_kind,
    save_trained_model,
)
from geodistill_core.training.objective import Objective, WeakObjective
from geodistill_core.training.orientation import OrientationLossModule, OrientationObjective
from geodistill_core.training.presets import PRESET_NAMES, preset
from geodistill_core.training.run import (
    RunPaths,
    distill,
    run_training,
    train_location,
    train_orientation,
)
from geodistill_core.training.state import load_training_state, save_training_state
from geodistill_core.training.supervised import SupervisedObjective
from geodistill_core.training.weak import WeakLossModule, weak_location_loss

__all__ = [
    'BatchScores', 'ConfigMismatchError', 'DataConfig', 'DistillConfig', 'DistillLossModule',
    'DistillObjective', 'DistributedContext', 'FitResult', 'GroundMask', 'LocationModel',
    'LoopConfig', 'ModelConfig', 'Objective', 'OptimConfig', 'OrientationConfig',
    'OrientationLossModule', 'OrientationObjective', 'POSITION_LABEL_KEY', 'PRESET_NAMES',
    'RunPaths', 'SupervisedObjective', 'TeacherSchedule', 'TrainConfig', 'Trainer',
    'WeakConfig', 'WeakLossModule', 'WeakObjective', 'apply_overrides',
    'batch_to_location_inputs', 'build_dataset', 'build_model', 'check_resume_config',
    'config_diff', 'copy_weights', 'distill', 'draw_ground_mask', 'ema_update', 'from_dict',
    'init_distributed', 'load_config', 'load_trained_model', 'load_training_state',
    'location_scores', 'preset', 'register_dataset', 'register_model_kind', 'run_training',
    'save_config', 'save_trained_model', 'save_training_state', 'to_dict', 'train_location',
    'train_orientation', 'weak_location_loss',
]
