"""Accuracy check of CPU bfloat16 autocast: the same short training run in float32 and in
bfloat16 (LoopConfig.amp), compared on the validation localisation error.

    python bench/bench_train_accuracy.py                  # Lite0, JSON in bench/results/
    python bench/bench_train_accuracy.py --models lite0 vgg

Data: the procedural flat world (training.flat_world; panoramas rendered exactly by the
projection conventions, so the weak objective can learn the task in minutes), 256
training and 96 validation items, panorama 64x128, satellite 128 px at 0.5 m/px.
Models: 'lite0' is the embedded default's architecture (EfficientNet-Lite0 with its
ImageNet weights, levels 1/8 + 1/4) on panoramas; 'vgg' the VGG16-UNet of the G2SWeakly
setting (random initialisation: no weights file is bundled).
Runs per model and precision, channels-last, one thread, same seeds: the weakly supervised
base (--base-epochs x --steps), then GeoDistill (--distill-epochs x --steps) from the
float32 base. Reported: the validation mean localisation error after every epoch
(select_metric 'mean_error_m': the validation split's position labels, never a test
split) and wall-clock per run.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import json
from pathlib import Path
import tempfile
import time

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
}


def _flat_world(config: DataConfig, split: str, root):
    return FlatWorldDataset(split, size=SIZES[split], ground_hw=config.ground_hw,
                            sat_size=config.sat_size, seed=config.seed)


register_dataset(DATASET, _flat_world)


def run_config(model: str, task: str, amp: str, epochs: int, steps: int) -> TrainConfig:
    data = DataConfig(dataset=DATASET, ground_hw=(64, 128), sat_size=128, batch_size=8,
                      min_distance_m=0.0, num_workers=0)
    loop = LoopConfig(epochs=epochs, steps_per_epoch=steps, select_metric='mean_error_m',
                      amp=amp, device='cpu', progress=False, tensorboard=False,
                      checkpoint_every_steps=10_000)
    return TrainConfig(name=f'accuracy_{model}_{task}_{amp}', task=task, data=data,
                       model=MODELS[model], loop=loop,
                       distill=DistillConfig(ema_every_steps=max(1, steps // 2)))


def history(run_dir: Path) -> list[dict]:
    progress = read_training_meta(run_dir / 'state')['progress']
    return [{'epoch': h['epoch'], 'val_mean_error_m': h.get('mean_error_m'),
             'train_loss': h['train_loss']} for h in progress['history']]


def main(args) -> dict:
    torch.set_num_threads(1)
    report = {'benchmark': 'bf16 autocast accuracy', 'cpu_native_bf16': cpu_has_native_bf16(),
              'torch': torch.__version__, 'sizes': SIZES, 'steps_per_epoch': args.steps,
              'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'models': {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.work_dir or tmp)
        for model in args.models:
            runs = {}
            for task, epochs in (('location', args.base_epochs),
                                 ('distill', args.distill_epochs)):
                for amp in ('none', 'bf16'):
                    conf = run_config(model, task, amp, epochs, args.steps)
                    out = root / model / f'{task}_{amp}'
                    paths = RunPaths(out)
                    if task == 'distill':
                        paths = replace(paths, base_checkpoint=root / model / 'location_none'
                                        / 'last')
                    start = time.perf_counter()
                    (train_location if task == 'location' else distill)(conf, paths)
                    runs[f'{task}_{amp}'] = {'history': history(out),
                                             'wall_s': time.perf_counter() - start}
                    last = runs[f'{task}_{amp}']['history'][-1]
                    print(f'{model} {task:8s} {amp:4s}: val mean error '
                          f'{last["val_mean_error_m"]:.3f} m after {last["epoch"]} epochs '
                          f'({runs[f"{task}_{amp}"]["wall_s"]:.0f} s)', flush=True)
            report['models'][model] = runs
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + '\n')
    print(f'wrote {out}')
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=['lite0'], choices=list(MODELS))
    parser.add_argument('--base-epochs', type=int, default=3)
    parser.add_argument('--distill-epochs', type=int, default=2)
    parser.add_argument('--steps', type=int, default=30)
    parser.add_argument('--work-dir', default=None, help='keep the runs here (default: temp)')
    parser.add_argument('--out', default=str(REPO / 'bench' / 'results' / 'train_accuracy.json'))
    return parser.parse_args(argv)


if __name__ == '__main__':
    main(parse_args())
