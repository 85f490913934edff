"""Accuracy check of the training-speed options: the same short training run with the
plain loop (float32, BatchNorm on batch statistics) and with one option switched on, CPU
bfloat16 autocast (LoopConfig.amp='bf16') or frozen, folded BatchNorm
(LoopConfig.batchnorm='frozen'), or both, compared on the validation localisation error.

    python bench/bench_train_accuracy.py                  # Lite0, JSON in bench/results/
    python bench/bench_train_accuracy.py --models lite0 vgg
    python bench/bench_train_accuracy.py --models pinhole --variants fp32 bnfrozen \
        --work-dir outputs/train_accuracy

Models and data:
- 'lite0': the panorama default's architecture (EfficientNet-Lite0 with its ImageNet
  weights, levels 1/8 + 1/4) on the procedural flat world (training.flat_world; panoramas
  rendered exactly by the projection conventions, so the weak objective learns the task in
  minutes): 256 training and 96 validation items, panorama 64x128, satellite 128 px at 0.5
  m/px, batch 8;
- 'vgg': the VGG16-UNet of the G2SWeakly setting on the same data (random initialisation:
  no weights file is bundled; it has no BatchNorm, so only bf16 applies);
- 'pinhole': the embedded pinhole default's setting itself (preset synthetic_kitti: Lite0,
  pinhole 128x512, satellite 192 of 256 px crops, the BEV template over the whole crop, the
  GNSS-window term, batch 8) on a small synthetic KITTI-layout export made here on first
  use (PINHOLE_DATA: three training cities x 40 short drives of 6 frames; the reader holds
  out 20% of the drives as its validation split; written under --work-dir/data, reused).
Runs per model, seed (--seeds: the loop's and the data's seed) and variant, channels-last,
one thread: the weakly supervised base (--base-epochs x --steps), then GeoDistill
(--distill-epochs x --steps) from the plain float32 base of the same seed. Reported: the
validation mean localisation error after every epoch (select_metric 'mean_error_m': the
validation split's position labels, never a test split), wall-clock per run, and per task
and variant the final error per seed, its mean and its mean difference to fp32 (the
spread of fp32 across seeds is the noise it is compared with). Finished runs in
--work-dir are read back, not trained again.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
import statistics
import tempfile
import time

from results_json import write_json
import torch

from geodistill_core.precision import cpu_has_native_bf16
from geodistill_core.training.config import (
    DataConfig,
    DistillConfig,
    LoopConfig,
    ModelConfig,
    TrainConfig,
)
from geodistill_core.training.data import register_dataset
from geodistill_core.training.flat_world import FlatWorldDataset
from geodistill_core.training.presets import preset
from geodistill_core.training.run import RunPaths, distill, train_location
from geodistill_core.training.state import read_training_meta

REPO = Path(__file__).resolve().parent.parent
DATASET = 'flat_world_accuracy'
SIZES = {'train': 256, 'val': 96}
MODELS = {
    'lite0': ModelConfig(ground_backbone='efficientnet_lite0',
                         satellite_backbone='efficientnet_lite0', levels=(2, 1)),
    'vgg': ModelConfig(ground_backbone='vgg16_unet', satellite_backbone='vgg16_unet',
                       levels=(0, 2), pretrained=False),
    'pinhole': None,  # preset synthetic_kitti
}
# variant -> its LoopConfig fields (whatever a preset's defaults: fp32 is the plain loop)
VARIANTS = {'fp32': {'amp': 'none', 'batchnorm': 'batch'},
            'bf16': {'amp': 'bf16', 'batchnorm': 'batch'},
            'bnfrozen': {'amp': 'none', 'batchnorm': 'frozen'},
            'bf16_bnfrozen': {'amp': 'bf16', 'batchnorm': 'frozen'}}
WITHOUT_BATCHNORM = ('vgg',)


def pinhole_data_preset():
    """The small KITTI-layout export of the 'pinhole' model (the default model's training
    data recipe, train/make_default_model.py, with 40 instead of 350 drives per city)."""
    from geodistill_core.data.synthetic.export_kitti import KittiDriveConfig
    from geodistill_core.data.synthetic.presets import SyntheticPreset
    return SyntheticPreset('train_accuracy_pinhole', world_size_m=480.0, cell_m=0.125,
                           kitti_drive=KittiDriveConfig(frames=6, margin_m=50.0,
                                                        satmap_px=416),
                           kitti_train_drives=40, kitti_test1_drives=1, kitti_test2_drives=1)


def _flat_world(config: DataConfig, split: str, root):
    return FlatWorldDataset(split, size=SIZES[split], ground_hw=config.ground_hw,
                            sat_size=config.sat_size, seed=config.seed)


register_dataset(DATASET, _flat_world)


def run_config(model: str, task: str, variant: str, epochs: int, steps: int,
               seed: int = 0) -> TrainConfig:
    loop = dict(epochs=epochs, steps_per_epoch=steps, select_metric='mean_error_m',
                device='cpu', progress=False, tensorboard=False, checkpoint_every_steps=10_000,
                seed=seed, **VARIANTS[variant])
    name = f'accuracy_{model}_{task}_{variant}_seed{seed}'
    if model == 'pinhole':
        conf = preset('synthetic_kitti', task)
        return replace(conf, name=name, data=replace(conf.data, num_workers=0, seed=seed),
                       loop=replace(conf.loop, val_steps=None, report_val_error=False,
                                    **loop),
                       distill=replace(conf.distill, ema_every_steps=max(1, steps // 2)))
    data = DataConfig(dataset=DATASET, ground_hw=(64, 128), sat_size=128, batch_size=8,
                      min_distance_m=0.0, num_workers=0, seed=seed)
    return TrainConfig(name=name, task=task, data=data, model=MODELS[model],
                       loop=LoopConfig(**loop),
                       distill=DistillConfig(ema_every_steps=max(1, steps // 2)))


def history(run_dir: Path) -> list[dict]:
    progress = read_training_meta(run_dir / 'state')['progress']
    return [{'epoch': h['epoch'], 'val_mean_error_m': h.get('mean_error_m'),
             'train_loss': h['train_loss']} for h in progress['history']]


def pinhole_data_root(work_dir: Path) -> Path:
    from geodistill_core.data.synthetic.presets import make_synthetic
    return Path(make_synthetic(pinhole_data_preset(), work_dir / 'data', seed=0,
                               layout='kitti')) / 'kitti'


def train_one(model: str, task: str, variant: str, epochs: int, steps: int, seed: int,
              root: Path, data_root: Path | None) -> dict:
    """One run under root/<task>_<variant>_seed<seed> (GeoDistill from that seed's fp32
    base); a finished run is read back, not trained again."""
    out = root / f'{task}_{variant}_seed{seed}'
    paths = RunPaths(out, data_root=data_root)
    if task == 'distill':
        paths = replace(paths, base_checkpoint=root / f'location_fp32_seed{seed}' / 'last')
    start = time.perf_counter()
    conf = run_config(model, task, variant, epochs, steps, seed)
    (train_location if task == 'location' else distill)(conf, paths)
    return {'history': history(out), 'wall_s': time.perf_counter() - start}


def summarise(runs: dict, seeds: list[int]) -> dict:
    """Per task and variant: the final validation error per seed, its mean, and the mean
    difference to fp32 over the same seeds (the noise is the spread across seeds)."""
    finals = {k: r['history'][-1]['val_mean_error_m'] for k, r in runs.items()}
    out = {}
    for key in sorted({k.rsplit('_seed', 1)[0] for k in finals}):
        per_seed = [finals[f'{key}_seed{s}'] for s in seeds]
        task = key.split('_')[0]
        reference = [finals[f'{task}_fp32_seed{s}'] for s in seeds]
        out[key] = {'per_seed_m': [round(v, 3) for v in per_seed],
                    'mean_m': statistics.fmean(per_seed),
                    'minus_fp32_m': statistics.fmean(a - b for a, b in zip(per_seed, reference,
                                                                          strict=True)),
                    'fp32_seed_spread_m': max(reference) - min(reference)}
    return out


def main(args) -> dict:
    torch.set_num_threads(1)
    variants = [v for v in args.variants if v != 'bf16' or cpu_has_native_bf16()]
    report = {'benchmark': 'training-option accuracy', 'cpu_native_bf16': cpu_has_native_bf16(),
              'torch': torch.__version__, 'flat_world_sizes': SIZES,
              'steps_per_epoch': args.steps, 'variants': {v: VARIANTS[v] for v in variants},
              'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'models': {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.work_dir or tmp)
        for model in args.models:
            data_root = pinhole_data_root(root) if model == 'pinhole' else None
            runs = {}
            for seed in args.seeds:
                for task, epochs in (('location', args.base_epochs),
                                     ('distill', args.distill_epochs)):
                    for variant in variants:
                        if variant.endswith('bnfrozen') and model in WITHOUT_BATCHNORM:
                            continue
                        key = f'{task}_{variant}_seed{seed}'
                        runs[key] = train_one(model, task, variant, epochs, args.steps, seed,
                                              root / model, data_root)
                        last = runs[key]['history'][-1]
                        print(f'{model} {task:8s} {variant:8s} seed {seed}: val mean error '
                              f'{last["val_mean_error_m"]:.3f} m after {last["epoch"]} epochs '
                              f'({runs[key]["wall_s"]:.0f} s)', flush=True)
            report['models'][model] = {'runs': runs, 'summary': summarise(runs, args.seeds)}
            for key, values in report['models'][model]['summary'].items():
                print(f'{model} {key}: final val mean error {values["mean_m"]:.3f} m '
                      f'(seeds {values["per_seed_m"]}), minus fp32 '
                      f'{values["minus_fp32_m"]:+.3f} m', flush=True)
    print(f'wrote {write_json(args.out, report)}')
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=['lite0'], choices=list(MODELS))
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS),
                        help="fp32 (the plain loop) is the reference; the base GeoDistill "
                             "starts from is fp32's")
    parser.add_argument('--base-epochs', type=int, default=3)
    parser.add_argument('--distill-epochs', type=int, default=2)
    parser.add_argument('--steps', type=int, default=30)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='loop and data seeds: each variant trained once per seed')
    parser.add_argument('--work-dir', default=None,
                        help='keep the runs (and the pinhole data) here (default: temp)')
    parser.add_argument('--out', default=str(REPO / 'bench' / 'results' / 'train_accuracy.json'))
    args = parser.parse_args(argv)
    if 'fp32' not in args.variants:
        parser.error('--variants needs fp32: the reference run and the distillation base')
    return args


if __name__ == '__main__':
    main(parse_args())
