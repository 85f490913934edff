"""Named training presets: `preset(name, task)` -> TrainConfig.

| preset | data | backbone (both branches), levels | base / distill epochs |
|---|---|---|---|
| vigor_cross | VIGOR cross-area, pano 320x640, sat 512 | vgg16_unet_g2s, 1/8 + 1/2 | 10 / 20 |
| vigor_same | VIGOR same-area, as vigor_cross | vgg16_unet_g2s, 1/8 + 1/2 | 10 / 20 |
| kitti | KITTI (Shi & Li), pinhole 256x1024, sat 512 | vgg16_unet_g2s, 1/8 + 1/2 | 5 / 10 |
| synthetic_bench | synthetic VIGOR, 128x256, sat 256 (*) | efficientnet_lite0, 1/8+1/4 | 4 / 4 |
| synthetic_kitti | synthetic KITTI, pinhole 128x512, sat 192 (**) | efficientnet_lite0 | 24 / 2 |
| tiny | procedural flat world, pano 32x64, sat 64 | vgg16_unet_tiny (random), 1/8 + 1/2 | 2 / 2 |

(*) the same-area training half of the export's training cities (bench/bench_geodistill.py).
(**) BEV template over the whole crop, GNSS-window term, 200-step epochs, frozen BatchNorm
(loop.batchnorm), bf16 where native (loop.amp 'auto'; the embedded pinhole default:
train/make_default_model.py).

Every preset: AdamW lr 1e-4, weight decay 1e-5, grad-norm clip 1.0, batch 8 (tiny: 4),
min in-batch distance 60 m (tiny: 0), GeoDistill tau 0.06, FoV 180-240 deg (KITTI: stripe
17-25 %), EMA alpha 0.9 once per epoch, distillation epochs twice the base model's
(method.md section 4; synthetic_bench: see _DISTILL_EPOCHS). The paper presets (vigor_*,
kitti) follow G2SWeakly / the GeoDistill reference where our defaults differ: decoder
64/16 ('vgg16_unet_g2s'), positions 'valid', confidence on both sides of the cosine, EMA
over parameters only; the synthetic presets keep the defaults (their embedded models).
Orientation: models.orientation, a downward view of the satellite's size, +-45 deg in
1 deg bins (KITTI: the reader's +-10 deg prior; the estimator takes panoramas only so
far); paper presets: ImageNet EfficientNet-B0 cut after block 14, fused map flattened into
the MLP (B0_BLOCK14_FLATTEN, as the reference); synthetic_bench: ImageNet EfficientNet-
Lite0 cut at stride 16 (the embedded default); synthetic_kitti: B0 features, random
weights. VGG16 and B0 need their local weights files (`--set model.ground_weights=...
--set model.satellite_weights=...`; the orientation estimator reads ground_weights).
"""
from __future__ import annotations

from dataclasses import replace

from geodistill_core.data.synthetic.presets import TRAIN_CITIES as SYNTHETIC_TRAIN_CITIES
from geodistill_core.models.orientation.config import (
    B0_BLOCK14_FLATTEN,
    LITE0_STRIDE16_ENCODERS,
)
from geodistill_core.training.config import (
    DataConfig,
    DistillConfig,
    LoopConfig,
    ModelConfig,
    OrientationConfig,
    TrainConfig,
    WeakConfig,
)

PRESET_NAMES = ('vigor_cross', 'vigor_same', 'kitti', 'synthetic_bench', 'synthetic_kitti',
                'tiny')

_VIGOR_DATA = DataConfig(dataset='vigor', area='cross', ground_hw=(320, 640), sat_size=512)
# The paper's location model as G2SWeakly builds it: decoder widths 64/16, confidence on
# both sides of the cosine, windows wholly inside the satellite map ('valid').
_VGG_MODEL = ModelConfig(kind='correlation', ground_backbone='vgg16_unet_g2s',
                         satellite_backbone='vgg16_unet_g2s', levels=(0, 2), positions='valid',
                         confidence_weighting='both')


def _orientation_model(sat_size: int, prior_range_deg: float, backbone: str = 'efficientnet_b0',
                       **estimator) -> ModelConfig:
    """models.orientation estimator; its downward view has the satellite's size."""
    return ModelConfig(kind='orientation', ground_backbone=backbone, satellite_backbone=backbone,
                       estimator={'backbone': backbone, 'bev_size_px': sat_size,
                                  'prior_range_deg': prior_range_deg, **estimator})


# name -> (data, location model, base epochs, loop overrides, orientation section)
_BASES = {
    'vigor_cross': (_VIGOR_DATA, _VGG_MODEL, 10, {}, OrientationConfig()),
    'vigor_same': (replace(_VIGOR_DATA, area='same'), _VGG_MODEL, 10, {},
                   OrientationConfig()),
    'kitti': (DataConfig(dataset='kitti', ground_hw=(256, 1024), sat_size=512),
              replace(_VGG_MODEL, camera_model='pinhole'), 5, {},
              OrientationConfig(prior_range_deg=10.0, rotation='dataset')),
    # The GeoDistill benchmark (bench/bench_geodistill.py): the same-area training half of
    # the synthetic VIGOR export's training cities; tests on their same-area test half and
    # on the cross-area city (a style never seen in training).
    'synthetic_bench': (
        replace(_VIGOR_DATA, area='same', cities=SYNTHETIC_TRAIN_CITIES, ground_hw=(128, 256),
                sat_size=256, num_workers=1),
        ModelConfig(kind='correlation', ground_backbone='efficientnet_lite0',
                    satellite_backbone='efficientnet_lite0', levels=(2, 1)),
        4, {'checkpoint_every_steps': 100, 'find_unused_parameters': True},
        OrientationConfig()),
    # The embedded pinhole default: CPU-sized, trained on the synthetic KITTI-layout export
    # (train/make_default_model.py). 256 satmap px at 0.196 m/px = 50 m crops, +-10 m shift.
    # A pinhole camera sees the ground from about 6 m ahead, so the BEV template spans the
    # whole crop (template_fraction 1.0: +-25 m, 9x the ground cells of G2SWeakly's 0.4,
    # which kept only a 6-10 m band), and 128 x 512 images keep 8 feature rows below the
    # horizon at stride 8 (64 x 256: 4). 200-step epochs give a validation point every
    # 200 steps; report_val_error logs the error on the held-out validation drives (the
    # model card's curve; selection stays on the label-free loss). 24 epochs: the curve
    # flattened at about 5.5 m from epoch 16 (model card). Constant learning rate, so a
    # run stopped at N epochs is the first N epochs of a longer one. Frozen BatchNorm
    # (ImageNet statistics, folded into the convolutions) and bf16 autocast where the
    # device has it natively (amp 'auto'): 1.9x the pre-issue-16 step at batch 8 here,
    # validation error no worse (README, bench_train_accuracy); the installed model
    # predates both (train/make_default_model.py --batchnorm batch --amp none).
    'synthetic_kitti': (
        DataConfig(dataset='kitti', ground_hw=(128, 512), sat_size=192, num_workers=1,
                   min_distance_m=30.0,
                   reader_options={'sat_crop_px': 256, 'shift_range_m': 10.0}),
        ModelConfig(kind='correlation', ground_backbone='efficientnet_lite0',
                    satellite_backbone='efficientnet_lite0', levels=(2, 1),
                    camera_model='pinhole', template_fraction=1.0),
        24, {'checkpoint_every_steps': 50, 'find_unused_parameters': True,
            'steps_per_epoch': 200, 'val_steps': 20, 'report_val_error': True,
            'batchnorm': 'frozen', 'amp': 'auto'},
        OrientationConfig(prior_range_deg=10.0, rotation='dataset')),
    'tiny': (
        DataConfig(dataset='flat_world', ground_hw=(32, 64), sat_size=64, batch_size=4,
                   min_distance_m=0.0, num_workers=0),
        ModelConfig(kind='correlation', ground_backbone='vgg16_unet_tiny',
                    satellite_backbone='vgg16_unet_tiny', pretrained=False, levels=(0, 2)),
        2, {'steps_per_epoch': 4, 'val_steps': 2, 'checkpoint_every_steps': 2,
            'log_every_steps': 1, 'progress': False, 'tensorboard': False},
        OrientationConfig(prior_range_deg=10.0)),
}


# Distillation epochs other than twice the base's, and DistillConfig fields other than the
# defaults. synthetic_bench: base + GeoDistill + the augmentation control fit ~90 min on a
# 2-core CPU, so GeoDistill gets as many epochs as the base (not twice) and its EMA teacher
# follows every 40 steps (about 3 times per epoch) instead of once per epoch, so the
# teacher still moves well away from the base in a short run (alpha 0.9 as the paper).
_DISTILL_EPOCHS = {'tiny': 2, 'synthetic_bench': 4, 'synthetic_kitti': 2}
_DISTILL_OVERRIDES = {'tiny': {'patch_px': (8, 8)}, 'synthetic_bench': {'ema_every_steps': 40},
                      # the reference's EMA averages parameters only
                      'vigor_cross': {'ema_scope': 'parameters'},
                      'vigor_same': {'ema_scope': 'parameters'},
                      'kitti': {'ema_scope': 'parameters'}}


# Weak-objective fields other than the defaults. synthetic_kitti: G2SWeakly's noisy-GPS
# term; the protocol puts the camera within +-10 m of the crop centre along and across the
# heading, so within 10 sqrt(2) = 14.2 m along each map axis at any heading: the window
# always holds the truth and the term asks the best match not to lie far outside it.
_WEAK_OVERRIDES = {'synthetic_kitti': {'gnss_window_m': 14.2}}


def preset(name: str, task: str = 'location') -> TrainConfig:
    """The TrainConfig of preset `name` for `task` ('location' | 'distill' | 'orientation')."""
    if name not in _BASES:
        raise ValueError(f'unknown preset {name!r}; choose one of {PRESET_NAMES}')
    data, model, base_epochs, loop_overrides, orientation = _BASES[name]
    if task == 'distill':
        epochs = _DISTILL_EPOCHS.get(name, 2 * base_epochs)
    else:
        epochs = base_epochs
    if task == 'orientation':
        if name == 'tiny':  # models.orientation.tiny_orientation_config
            model = _orientation_model(data.sat_size, orientation.prior_range_deg, 'tiny',
                                       ground_channels=32, satellite_channels=32,
                                       fusion_channels=32, mlp_hidden=64)
        elif name == 'synthetic_bench':  # models.orientation.lite0_orientation_config
            model = _orientation_model(data.sat_size, orientation.prior_range_deg,
                                       **LITE0_STRIDE16_ENCODERS)
        elif name in ('vigor_cross', 'vigor_same', 'kitti'):  # the paper's estimator
            model = _orientation_model(data.sat_size, orientation.prior_range_deg,
                                       **B0_BLOCK14_FLATTEN)
        else:  # B0 features without a weights file here: random weights, said explicitly
            model = _orientation_model(data.sat_size, orientation.prior_range_deg,
                                       pretrained=False)
    distill = DistillConfig(**_DISTILL_OVERRIDES.get(name, {}))
    if task == 'distill':  # a fixed schedule: see LoopConfig.select_metric
        loop_overrides = {**loop_overrides, 'select_metric': 'last'}
    return TrainConfig(name=f'{name}_{task}', task=task, data=data, model=model,
                       loop=LoopConfig(epochs=epochs, **loop_overrides),
                       distill=distill, orientation=orientation,
                       weak=WeakConfig(**_WEAK_OVERRIDES.get(name, {})))
