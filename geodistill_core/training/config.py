"""Typed, frozen training configs and the named sections of a training run.

A run is described by one `TrainConfig` (task + data + model + optimiser + loop + the
objective's section). It is saved as `config.json` in the run directory; resuming with a
config that differs raises `ConfigMismatchError` (config_json.py) listing every differing
dotted key; only a larger `loop.epochs` is accepted (it extends the run, finished or not).
Paths that only locate things on this machine (dataset root, base checkpoint, output
directory) are not config: they live in `training.run.RunPaths`.

JSON, diffs and command-line overrides of these dataclasses: config_json.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any

from geodistill_core.losses import DistillationLossConfig
from geodistill_core.models.ccvpe.supervised_loss import CcvpeLossConfig

TASKS = ('location', 'distill', 'orientation')
AMP_MODES = ('none', 'bf16', 'fp16', 'auto')
BATCHNORM_MODES = ('batch', 'frozen')
MASKS = ('fov', 'random_patch', 'max_activation', 'none')
EMA_SCOPES = ('state', 'parameters')
AUGMENT_STARTS = ('base', 'scratch')
DISTILL_MODES = ('distill', 'augment')
TEACHER_UPDATES = ('ema', 'fixed', 'previous_student')
SELECT_METRICS = ('loss', 'mean_error_m', 'last')
YAW_KEYS = ('yaw_rad', 'yaw_prior_rad')


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, how its items are sized, and how batches are drawn.

    dataset: a registered reader name ('vigor', 'kitti', 'flat_world', ...).
    area: VIGOR protocol ('same' | 'cross'); ignored by other readers.
    cities: VIGOR city override (e.g. a synthetic export in the VIGOR layout).
    meters_per_px_640: VIGOR metres/pixel per city for cities outside the official four.
    ground_hw: ground image size (H, W) px; sat_size: satellite side px.
    yaw_noise_deg: reader-side yaw noise (VIGOR: uniform +-value, seeded).
    batch_size: per replica; min_distance_m: no two samples of a batch closer (metres).
    train_split / val_split: reader split names; a split named test* is refused for
        validation (never select a model on a test split).
    yaw_key: which batch yaw the location estimator gets ('yaw_rad': known orientation,
        'yaw_prior_rad': the noisy prior).
    reader_options: extra keyword arguments of the reader (e.g. KITTI sat_crop_px,
        shift_range_m, rotation_range_deg).
    """

    dataset: str = 'vigor'
    area: str = 'cross'
    cities: tuple[str, ...] | None = None
    meters_per_px_640: dict[str, float] | None = None
    ground_hw: tuple[int, int] = (320, 640)
    sat_size: int = 512
    yaw_noise_deg: float = 0.0
    val_fraction: float = 0.2
    seed: int = 0
    batch_size: int = 8
    min_distance_m: float = 60.0
    num_workers: int = 2
    train_split: str = 'train'
    val_split: str | None = 'val'
    yaw_key: str = 'yaw_rad'
    reader_options: dict[str, Any] | None = None

    def __post_init__(self):
        _check(len(self.ground_hw) == 2 and min(self.ground_hw) > 0 and self.sat_size > 0,
               f'bad sizes ground_hw={self.ground_hw}, sat_size={self.sat_size}')
        _check(self.batch_size >= 2, f'batch_size must be >= 2 (in-batch negatives), '
               f'got {self.batch_size}')
        _check(self.min_distance_m >= 0 and self.num_workers >= 0,
               'min_distance_m and num_workers must be >= 0')
        _check(self.yaw_key in YAW_KEYS, f'yaw_key must be one of {YAW_KEYS}')
        _check(self.val_split is None or not self.val_split.lower().startswith('test'),
               f'val_split {self.val_split!r}: never select a model on a test split; use a '
               'validation split carved out of the training data')


@dataclass(frozen=True)
class ModelConfig:
    """The network trained (a registered kind; see training.models).

    kind: 'correlation' (G2SWeakly-style), 'ccvpe' (descriptor matching), 'orientation',
        or another registered kind.
    ground_backbone / satellite_backbone: registered backbone names ('correlation').
    pretrained: load the backbones' pretrained weights (files given by *_weights, or the
        record's default source).
    levels: backbone output indices used as heatmap levels, coarse to fine ('correlation').
    camera_model: 'panorama' | 'pinhole'.
    positions, learned_confidence, confidence_weighting: the correlation estimator's
        (CorrelationEstimatorConfig; missing in an old checkpoint = today's defaults
        'same', True, 'ground'; the paper presets use G2SWeakly's 'valid' and 'both').
    template_energy_floor: the correlation's template norm over the map only, floored at
        this fraction of the whole (1.0, the default and every older checkpoint's: the
        whole norm; sliding_correlation.py says why a pinhole model wants less).
    estimator: the estimator's own config dict for kinds that have one ('ccvpe':
        DescriptorEstimatorConfig.to_dict(), 'orientation': OrientationEstimatorConfig
        .to_dict(); missing keys take their defaults).
    """

    kind: str = 'correlation'
    ground_backbone: str = 'vgg16_unet'
    satellite_backbone: str = 'vgg16_unet'
    pretrained: bool = True
    ground_weights: str | None = None
    satellite_weights: str | None = None
    levels: tuple[int, ...] = (0, 2)
    camera_model: str = 'panorama'
    template_fraction: float = 0.4
    positions: str = 'same'
    learned_confidence: bool = True
    confidence_weighting: str = 'ground'
    template_energy_floor: float = 1.0
    estimator: dict[str, Any] | None = None

    def __post_init__(self):
        _check(bool(self.levels), 'at least one level is needed')
        _check(self.camera_model in ('panorama', 'pinhole'),
               f"camera_model must be 'panorama' or 'pinhole', got {self.camera_model!r}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with optional warm-up then constant or cosine learning rate."""

    lr: float = 1e-4
    weight_decay: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip_norm: float | None = 1.0
    schedule: str = 'constant'
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0

    def __post_init__(self):
        _check(self.lr > 0 and self.weight_decay >= 0, 'lr must be > 0, weight_decay >= 0')
        _check(self.schedule in ('constant', 'cosine'),
               f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        _check(self.grad_clip_norm is None or self.grad_clip_norm > 0,
               'grad_clip_norm must be > 0 or None')


@dataclass(frozen=True)
class LoopConfig:
    """The training loop.

    epochs: epochs to train; steps_per_epoch: cap on steps per epoch (None = all batches);
    val_steps: cap on validation batches per rank (None = the whole validation split).
    checkpoint_every_steps: training state written atomically every N optimiser steps
        (a killed run loses at most N - 1 steps).
    select_metric: best checkpoint on the validation split by 'loss' (the objective's
        label-free validation loss) or 'mean_error_m' (localisation error on the
        validation split, which reads its evaluation labels); 'last': no selection, best/
        holds the latest epoch (a fixed schedule; validation is still logged).
        Distillation uses 'last': its label-free validation losses do not track
        localisation (README, GeoDistill benchmark).
    report_val_error: also compute the localisation error on the validation split and log
        it with the epoch's metrics (the learning curve of a model card) without selecting
        on it: the labels of the held-out validation drives are read for the report only.
    amp: 'none' | 'bf16' | 'fp16': autocast of the networks (correlation, softmax and losses
        stay float32). CUDA: bf16, or fp16 with a gradient scaler. CPU: bf16 only, on CPUs
        with native bfloat16 (AVX512-BF16 or AMX; geodistill_core.precision); elsewhere it
        falls back to float32 with a warning. 'auto': bf16 where the device computes it
        natively (such a CPU, a CUDA GPU with bf16), float32 elsewhere, without a warning.
        Off by default ('none'); 'auto' in the synthetic_kitti preset (its accuracy check
        with frozen BatchNorm: README "Measured").
    channels_last: networks and images in channels-last memory format (same results to
        round-off; faster convolutions on the CPU and on tensor cores).
    activation_checkpointing: recompute the trained model's backbone activations in the
        backward pass instead of keeping them (less memory for large backbones: VGG16,
        DINOv2; one more backbone forward per step). Refused for backbones with BatchNorm
        (their running statistics would be updated twice) unless batchnorm is 'frozen'.
    batchnorm: 'batch': BatchNorm layers train on batch statistics and update their
        running ones (the usual training mode); 'frozen': they normalise with their running
        (pretrained) statistics, never update them, and fold into the convolution before
        them where one precedes them (models/frozen_batchnorm.py: no per-pixel
        normalisation pass, forward or backward; the affine weight and bias still train).
        For pretrained backbones with small batches; no effect on models without BatchNorm.
    device: 'auto' (CUDA when present), 'cpu' or 'cuda'.
    """

    epochs: int = 10
    steps_per_epoch: int | None = None
    val_steps: int | None = None
    checkpoint_every_steps: int = 200
    log_every_steps: int = 20
    select_metric: str = 'loss'
    report_val_error: bool = False
    amp: str = 'none'
    channels_last: bool = True
    activation_checkpointing: bool = False
    batchnorm: str = 'batch'
    device: str = 'auto'
    seed: int = 0
    progress: bool = True
    tensorboard: bool = True
    find_unused_parameters: bool = False

    def __post_init__(self):
        _check(self.epochs >= 1 and self.checkpoint_every_steps >= 1
               and self.log_every_steps >= 1, 'epochs and step intervals must be >= 1')
        _check(self.amp in AMP_MODES, f'amp must be one of {AMP_MODES}, got {self.amp!r}')
        _check(self.select_metric in SELECT_METRICS,
               f'select_metric must be one of {SELECT_METRICS}')
        _check(self.device in ('auto', 'cpu', 'cuda'), f'bad device {self.device!r}')
        _check(self.batchnorm in BATCHNORM_MODES,
               f'batchnorm must be one of {BATCHNORM_MODES}, got {self.batchnorm!r}')


@dataclass(frozen=True)
class WeakConfig:
    """Weakly supervised objective of the correlation estimator (method.md section 3).

    alpha: soft-margin scale of the in-batch triplet; symmetric: add the ground-anchored
    term. gnss_window_m: half-side (metres) of the window around the noisy position (the
    crop centre) whose best match should equal the global best (None = term off).
    rotated_negatives_deg: yaw offsets (degrees, non-zero) at which each matching pair is
    scored again as a negative: its best-match distance at the known yaw should be below
    the one at yaw + offset (soft margin, alpha; correlation estimators only; () = off).
    Trains the yaw sensitivity the rotation search relies on, from the orientation the
    training frames already have (KITTI: OXTS; VIGOR: north-aligned), no position label.
    rotation_weight: its weight in the loss.
    """

    alpha: float = 10.0
    symmetric: bool = False
    gnss_window_m: float | None = None
    gnss_weight: float = 1.0
    rotated_negatives_deg: tuple[float, ...] = ()
    rotation_weight: float = 1.0

    def __post_init__(self):
        offsets = self.rotated_negatives_deg
        _check(all(isinstance(v, (int, float)) and math.isfinite(v) and 0 < abs(v) <= 180
                   for v in offsets),
               f'weak.rotated_negatives_deg must be non-zero yaw offsets within +-180 deg, '
               f'got {offsets}')
        _check(math.isfinite(self.rotation_weight) and self.rotation_weight >= 0,
               f'weak.rotation_weight must be >= 0, got {self.rotation_weight}')


@dataclass(frozen=True)
class DistillConfig:
    """GeoDistill and its paper ablations (method.md section 4).

    mask: 'fov' (panorama: a visible band in fov_range_deg; pinhole: a blanked stripe of
        stripe_frac_range of the width), 'random_patch' (patch_px tiles, a share drawn per
        image in patch_frac_range; paper: 14 px, [1/3, 1/2)), 'max_activation' (the image
        regions under the teacher's most activated ground feature cells, a share
        max_activation_frac; estimators with `ground_feature_map` only) or 'none'. Every
        mask blanks the image and removes the BEV cells it hides from the correlation.
    mode: 'distill' (teacher -> student CE) or 'augment' (no teacher: the weak loss on
        masked images, the paper's control). augment_start: 'base' continues from the
        trained base model; 'scratch' trains a new base from the initial weights with the
        FoV augmentation (the paper's Table 4 control: compare it with the base trained
        without; train.distill --mode augment --augment-start scratch).
    loss: tau / sharpen / divergence ('ce' | 'kl') / target ('soft' | 'single_mode').
    teacher_update: 'ema' (theta_t <- alpha theta_t + (1 - alpha) theta_s), 'fixed', or
        'previous_student' (teacher <- student); every epoch, or every ema_every_steps
        optimiser steps when > 0.
    ema_scope: 'state' (parameters and floating-point buffers such as BatchNorm running
        statistics; the default) or 'parameters' (parameters only, the reference's; the
        teacher keeps its own buffers).
    """

    mask: str = 'fov'
    fov_range_deg: tuple[float, float] = (180.0, 240.0)
    stripe_frac_range: tuple[float, float] = (0.17, 0.25)
    patch_px: tuple[int, int] = (14, 14)
    patch_frac_range: tuple[float, float] = (1.0 / 3.0, 0.5)
    max_activation_frac: float = 5.0 / 12.0
    mode: str = 'distill'
    augment_start: str = 'base'
    loss: DistillationLossConfig = field(default_factory=DistillationLossConfig)
    teacher_update: str = 'ema'
    ema_alpha: float = 0.9
    ema_every_steps: int = 0
    ema_scope: str = 'state'

    def __post_init__(self):
        _check(self.mask in MASKS, f'mask must be one of {MASKS}, got {self.mask!r}')
        _check(self.ema_scope in EMA_SCOPES, f'ema_scope must be one of {EMA_SCOPES}')
        _check(self.augment_start in AUGMENT_STARTS,
               f'augment_start must be one of {AUGMENT_STARTS}')
        _check(self.augment_start == 'base' or self.mode == 'augment',
               "augment_start='scratch' applies to mode 'augment' only")
        lo, hi = self.patch_frac_range
        _check(0.0 <= lo <= hi <= 1.0 and 0.0 <= self.max_activation_frac <= 1.0,
               f'bad patch_frac_range {self.patch_frac_range} or max_activation_frac '
               f'{self.max_activation_frac}')
        _check(self.mode in DISTILL_MODES, f'mode must be one of {DISTILL_MODES}')
        _check(self.teacher_update in TEACHER_UPDATES,
               f'teacher_update must be one of {TEACHER_UPDATES}')
        _check(0.0 <= self.ema_alpha <= 1.0 and self.ema_every_steps >= 0,
               'ema_alpha must be in [0, 1] and ema_every_steps >= 0')
        lo, hi = self.fov_range_deg
        _check(0.0 <= lo <= hi <= 360.0, f'bad fov_range_deg {self.fov_range_deg}')


@dataclass(frozen=True)
class OrientationConfig:
    """Orientation estimator training from aligned pairs rotated by known random yaw.

    prior_range_deg / bin_deg: bins at -range..+range; sigma_bins: label smoothing.
    rotation: 'roll' (panoramas: roll by a yaw drawn uniformly in +-prior_range_deg) or
        'dataset' (use the reader's own yaw noise, e.g. KITTI's prior).
    """

    prior_range_deg: float = 45.0
    bin_deg: float = 1.0
    sigma_bins: float = 1.0
    rotation: str = 'roll'

    def __post_init__(self):
        _check(self.rotation in ('roll', 'dataset'), f'bad rotation {self.rotation!r}')


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `supervision` applies to task 'location' ('weak' | 'supervised';
    'supervised' is for the descriptor (CCVPE) teacher only and reads position labels);
    `supervised` holds its loss weights (CcvpeLossConfig: 1/1/1 by default; CCVPE's own
    InfoNCE x1e4, orientation x10 with `--set supervised.infonce_weight=1e4 --set
    supervised.orientation_weight=10 --set supervised.heatmap_levels=finest`, i.e.
    models.ccvpe.supervised_loss.CCVPE_PAPER_LOSS)."""

    name: str = 'run'
    task: str = 'location'
    supervision: str = 'weak'
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    weak: WeakConfig = field(default_factory=WeakConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    orientation: OrientationConfig = field(default_factory=OrientationConfig)
    supervised: CcvpeLossConfig = field(default_factory=CcvpeLossConfig)

    def __post_init__(self):
        _check(self.task in TASKS, f'task must be one of {TASKS}, got {self.task!r}')
        _check(self.supervision in ('weak', 'supervised'), f'bad supervision '
               f'{self.supervision!r}')
