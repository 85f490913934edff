"""Training-step benchmark: samples/s and peak memory per setting, side by side with a
baseline revision of this repository.

    python bench/bench_train.py                       # all settings, JSON in bench/results/
    python bench/bench_train.py --settings default --repeats 3
    python bench/bench_train.py --baseline-rev none   # current code only

Settings (the presets' models, random weights, one synthetic batch):
- vgg: G2SWeakly-style VGG16-UNet (preset vigor_cross), panorama 320x640, satellite 512,
  batch 2 by default (--vgg-batch; one fp32 step takes about 30 s on one core);
- lite0: EfficientNet-Lite0 (synthetic_bench), panorama 128x256, satellite 256, batch 8;
- default: the embedded default model (synthetic_kitti), pinhole 128x512, satellite 192,
  batch 8.

Variants, each run in a fresh subprocess (so ru_maxrss is that variant's peak), repeats
interleaved (head, fp32, bf16, head, ...) so that load on a shared machine hits all alike:
- head: the training step of the baseline revision (--baseline-rev, default the commit this
  benchmark was written against), exported with `git archive` to a temporary folder and
  imported from there: float32, contiguous, as that code trains;
- fp32: the current code with its default loop config (channels-last, float32);
- bf16: the current code with LoopConfig.amp='bf16' (skipped where the CPU has no native
  bfloat16);
- bf16_ckpt: bf16 plus LoopConfig.activation_checkpointing (VGG only: the memory option;
  not run by default, --variants head fp32 bf16 bf16_ckpt);
- fp32_bnbatch / fp32_bnfrozen: fp32 with LoopConfig.batchnorm forced to 'batch' (batch
  statistics) or 'frozen' (running statistics, folded into the convolutions:
  models/frozen_batchnorm.py), whatever the preset's default (not run by default);
- refstep: the reference implementation's GeoDistill step structure (tongshw/GeoDistill
  train_*.py: train_epoch_geodistill) around the current code's model, so that the model is
  identical and only the step differs: the teacher (a deep copy whose parameters still
  require grad) runs in eval mode *with* autograd, its scores are the loss target without
  a detach, so backward also runs through the teacher and keeps its activations; float32,
  contiguous; clipping and AdamW on the student as in the reference (--task distill only;
  not run by default: --variants head refstep fp32 bf16 bf16_ckpt). The reference itself
  cannot run here as published: its VIGOR training takes DINOv2 features (weights from the
  hub) and its VGG network is the KITTI pinhole one, which its training script no longer
  imports; the step structure is what this variant reproduces.

Each variant runs Trainer.train_step (the real loop: autocast, memory format, clipping,
AdamW) on the GeoDistill step (--task distill: teacher pass + masked student + backward;
--task weak: the base model's in-batch triplet step): warm-up steps, then timed steps.
Speed is samples per second of process CPU time (time.process_time; with one thread the
step's compute time, what wall-clock time is on an idle core: far less exposed to other
jobs on a shared machine than wall-clock time, which is reported too as
wall_samples_per_s). Reported per variant: median samples/s over the repeats, peak RSS
(ru_maxrss, MB) and the step's own peak (peak RSS minus the RSS just before the first
step, MB); per setting the ratios to head (of the medians, and repeat by repeat). One
thread per run (OMP_NUM_THREADS=1, torch.set_num_threads(1)).
"""
from __future__ import annotations

import argparse
from dataclasses import fields, replace
import json
import math
import os
from pathlib import Path
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from results_json import write_json

REPO = Path(__file__).resolve().parent.parent
BASELINE_REV = 'b9ac02b'  # the training step before issue 16 (float32, contiguous)
SETTINGS = {'vgg': 'vigor_cross', 'lite0': 'synthetic_bench', 'default': 'synthetic_kitti'}
# The workload of a setting pinned here, so that the baseline revision (whose presets may
# differ: the default model was 64x256 with a 0.4 template before issue 12) times the same
# step as the current code.
PINNED = {'default': {'data': {'ground_hw': (128, 512), 'sat_size': 192},
                      'model': {'template_fraction': 1.0},
                      'weak': {'gnss_window_m': 14.2}}}
VARIANTS = ('head', 'refstep', 'fp32', 'bf16', 'bf16_ckpt', 'fp32_bnbatch', 'fp32_bnfrozen')
CHECKPOINTABLE = ('vgg',)  # BatchNorm backbones refuse activation checkpointing


# ---------------------------------------------------------------------------- worker

def _rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def synthetic_batch(conf, batch_size: int, seed: int = 0) -> dict:
    """One collated batch of the reader's keys with random images (speed only)."""
    import torch
    H, W = conf.data.ground_hw
    S = conf.data.sat_size
    g = torch.Generator().manual_seed(seed)
    pinhole = conf.model.camera_model == 'pinhole'
    batch = {'ground': torch.rand(batch_size, 3, H, W, generator=g),
             'satellite': torch.rand(batch_size, 3, S, S, generator=g),
             'sat_meters_per_px': torch.full((batch_size,), 0.2, dtype=torch.float64),
             'camera_height_m': torch.full((batch_size,), 1.65 if pinhole else 2.0),
             'yaw_rad': torch.full((batch_size,), math.pi / 2),
             'yaw_prior_rad': torch.full((batch_size,), math.pi / 2)}
    if pinhole:
        K = torch.tensor([[0.6 * W, 0.0, (W - 1) / 2], [0.0, 0.6 * W, (H - 1) / 2],
                          [0.0, 0.0, 1.0]])
        batch['K'] = K.expand(batch_size, 3, 3).clone()
    return batch


class _Items:
    """A dataset of batch_size items (the Trainer needs one to build its sampler)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        raise RuntimeError('the benchmark feeds its batch to train_step directly')


def reference_step_structure(objective) -> None:
    """Make a DistillObjective step like the reference's (see 'refstep' above): teacher
    parameters requiring grad, the teacher pass under autograd, its scores not detached."""
    import torch

    from geodistill_core.losses import sharpened_log_softmax, soft_cross_entropy
    from geodistill_core.training.adapter import batch_to_location_inputs, location_scores
    from geodistill_core.training.ground_masks import draw_ground_mask
    module = objective.train_module
    teacher = objective.teacher
    for p in teacher.parameters():
        p.requires_grad_(True)

    def forward(batch: dict, step_seed: int = 0) -> dict:
        inputs = batch_to_location_inputs(batch, module.yaw_key)
        teacher.eval()
        teacher_scores = location_scores(teacher, inputs).scores  # autograd on, no detach
        generator = torch.Generator().manual_seed(step_seed)
        mask = draw_ground_mask(module.config, module.camera_model, inputs['ground_images'],
                                generator, teacher)
        masked = {**inputs, 'ground_images': mask.model_input(inputs['ground_images'])}
        student_scores = location_scores(module.student, masked, mask.visible_cols).scores
        # the reference's cross_entropy: softmax of the teacher's scores as the target,
        # NOT detached (our losses.distillation_cross_entropy detaches it)
        cfg = module.loss_config
        tau = cfg.tau if cfg.sharpen else 1.0
        loss = torch.stack([
            soft_cross_entropy(sharpened_log_softmax(t.float(), tau).exp(),
                               sharpened_log_softmax(s.float(), tau))
            for t, s in zip(teacher_scores, student_scores, strict=True)]).mean()
        return {'loss': loss, 'visible_fraction': loss.new_ones(())}
    module.forward = forward


def run_worker(setting: str, task: str, batch_size: int, amp: str, channels_last: bool | None,
               warmup: int, steps: int, checkpointing: bool = False,
               reference_structure: bool = False, batchnorm: str = 'keep') -> dict:
    """Time Trainer.train_step of `setting` with the code importable here."""
    import torch
    torch.set_num_threads(1)
    import geodistill_core
    from geodistill_core.training.config import LoopConfig
    from geodistill_core.training.distill import DistillObjective
    from geodistill_core.training.distributed import init_distributed
    from geodistill_core.training.loop import Trainer
    from geodistill_core.training.models import build_model
    from geodistill_core.training.objective import WeakObjective
    from geodistill_core.training.presets import preset

    conf = preset(SETTINGS[setting], task)
    loop_fields = {f.name for f in fields(LoopConfig)}
    loop = {'amp': amp, 'device': 'cpu', 'progress': False, 'tensorboard': False}
    if channels_last is not None:
        if 'channels_last' not in loop_fields:
            raise SystemExit('this code has no LoopConfig.channels_last')
        loop['channels_last'] = channels_last
    if checkpointing:
        loop['activation_checkpointing'] = True
    if batchnorm != 'keep':
        if 'batchnorm' not in loop_fields:
            raise SystemExit('this code has no LoopConfig.batchnorm')
        loop['batchnorm'] = batchnorm
    pinned = PINNED.get(setting, {})
    conf = replace(conf, loop=replace(conf.loop, **loop),
                   data=replace(conf.data, batch_size=batch_size, num_workers=0,
                                **pinned.get('data', {})),
                   model=replace(conf.model, pretrained=False, **pinned.get('model', {})),
                   weak=replace(conf.weak, **pinned.get('weak', {})))
    torch.manual_seed(0)
    model = build_model(conf.model)
    if task == 'distill':
        objective = DistillObjective(model, conf.distill, conf.weak, conf.model.camera_model,
                                     conf.data.yaw_key)
        if reference_structure:
            reference_step_structure(objective)
    else:
        if reference_structure:
            raise SystemExit('refstep times the GeoDistill step: use --task distill')
        objective = WeakObjective(model, conf.weak, conf.data.yaw_key)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(conf, objective, _Items(batch_size), None, run_dir,
                          init_distributed('cpu'), lambda *a: None)
        batch = synthetic_batch(conf, batch_size)
        rss_before = _rss_mb()
        for _ in range(warmup):
            trainer.train_step(batch)
        times, cpu_times = [], []
        for _ in range(steps):
            t0, c0 = time.perf_counter(), time.process_time()
            logged = trainer.train_step(batch)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    step_s, cpu_step_s = statistics.median(times), statistics.median(cpu_times)
    return {'setting': setting, 'task': task, 'batch_size': batch_size,
            'amp': conf.loop.amp, 'amp_active': str(trainer.amp_dtype),
            'channels_last': getattr(conf.loop, 'channels_last', False),
            'activation_checkpointing': checkpointing,
            'batchnorm': getattr(conf.loop, 'batchnorm', 'batch'),
            'reference_structure': reference_structure,
            'step_s': step_s, 'wall_samples_per_s': batch_size / step_s,
            'cpu_step_s': cpu_step_s, 'samples_per_s': batch_size / cpu_step_s,
            'step_times_s': times, 'step_cpu_times_s': cpu_times, 'peak_rss_mb': peak,
            'rss_before_step_mb': rss_before,
            'step_peak_mb': peak - rss_before, 'final_loss': logged['loss'],
            'code': str(Path(geodistill_core.__file__).resolve().parent.parent)}


# ---------------------------------------------------------------------------- driver

def export_revision(rev: str, into: Path) -> Path:
    """`git archive` of the package at `rev` into `into` (no change to the repository)."""
    archive = subprocess.run(['git', '-C', str(REPO), 'archive', rev, 'geodistill_core',
                              'package.xml'], check=True, capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', str(into)], input=archive, check=True)
    return into


def run_variant(variant: str, setting: str, args, baseline_root: Path | None) -> dict:
    batch = args.vgg_batch if setting == 'vgg' else args.batch
    cmd = [sys.executable, str(Path(__file__).resolve()), '--worker', '--settings', setting,
           '--task', args.task, '--batch', str(batch), '--warmup', str(args.warmup),
           '--steps', str(args.vgg_steps if setting == 'vgg' else args.steps)]
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    if variant == 'head':
        env['PYTHONPATH'] = str(baseline_root)
        cmd += ['--amp', 'none', '--channels-last', 'keep']
    elif variant == 'refstep':
        env['PYTHONPATH'] = str(REPO)
        cmd += ['--amp', 'none', '--channels-last', 'off', '--reference-structure']
    else:
        env['PYTHONPATH'] = str(REPO)
        memory_format = {True: 'on', False: 'off', None: 'keep'}[args.channels_last]
        cmd += ['--amp', 'bf16' if variant.startswith('bf16') else 'none', '--channels-last',
                memory_format] + (['--checkpointing'] if variant == 'bf16_ckpt' else [])
        if variant.startswith('fp32_bn'):
            cmd += ['--batchnorm', variant.removeprefix('fp32_bn')]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise RuntimeError(f'{variant} {setting} failed:\n{done.stderr[-3000:]}')
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result['variant'] = variant
    return result


def summarise(runs: list[dict], variants: list[str]) -> dict:
    out = {}
    for variant in variants:
        mine = [r for r in runs if r['variant'] == variant]
        if not mine:
            continue
        out[variant] = {
            'samples_per_s': statistics.median(r['samples_per_s'] for r in mine),
            'samples_per_s_runs': [round(r['samples_per_s'], 4) for r in mine],
            'wall_samples_per_s': statistics.median(r['wall_samples_per_s'] for r in mine),
            'peak_rss_mb': statistics.median(r['peak_rss_mb'] for r in mine),
            'step_peak_mb': statistics.median(r['step_peak_mb'] for r in mine),
            'amp_active': mine[0]['amp_active'], 'channels_last': mine[0]['channels_last'],
            'activation_checkpointing': mine[0].get('activation_checkpointing', False),
            'code': mine[0]['code']}
    if 'head' in out:
        head = out['head']
        for values in out.values():
            values['speed_ratio_vs_head'] = values['samples_per_s'] / head['samples_per_s']
            # each repeat's variant against the head run next to it in time (less exposed
            # to load that changes between repeats)
            values['speed_ratio_per_repeat'] = [
                round(r / h, 3) for r, h in zip(values['samples_per_s_runs'],
                                                head['samples_per_s_runs'], strict=False)]
            values['peak_rss_ratio_vs_head'] = values['peak_rss_mb'] / head['peak_rss_mb']
            values['step_peak_ratio_vs_head'] = values['step_peak_mb'] / head['step_peak_mb']
    if 'refstep' in out:  # against the reference's step structure (same model)
        ref = out['refstep']
        for values in out.values():
            values['speed_ratio_vs_refstep'] = values['samples_per_s'] / ref['samples_per_s']
            values['peak_rss_ratio_vs_refstep'] = values['peak_rss_mb'] / ref['peak_rss_mb']
            values['step_peak_ratio_vs_refstep'] = values['step_peak_mb'] / ref['step_peak_mb']
    return out


def main(args) -> dict:
    import torch

    from geodistill_core.precision import cpu_has_native_bf16
    variants = [v for v in args.variants
                if not (v == 'head' and args.baseline_rev == 'none')
                and not (v.startswith('bf16') and not cpu_has_native_bf16())
                and not (v == 'refstep' and args.task != 'distill')]
    report = {'benchmark': 'training step', 'task': args.task, 'repeats': args.repeats,
              'baseline_rev': args.baseline_rev, 'torch': torch.__version__,
              'machine': platform.processor() or platform.machine(),
              'cpu_native_bf16': cpu_has_native_bf16(), 'threads': 1,
              'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'settings': {}}
    with tempfile.TemporaryDirectory() as tmp:
        baseline = export_revision(args.baseline_rev, Path(tmp)) if 'head' in variants else None
        for setting in args.settings:
            runs = []
            for repeat in range(args.repeats):
                for variant in variants:
                    if variant == 'bf16_ckpt' and setting not in CHECKPOINTABLE:
                        continue
                    result = run_variant(variant, setting, args, baseline)
                    runs.append(result)
                    print(f'{setting:8s} {variant:5s} #{repeat + 1}: '
                          f'{result["samples_per_s"]:7.3f} samples/s (wall '
                          f'{result["wall_samples_per_s"]:7.3f}), peak RSS '
                          f'{result["peak_rss_mb"]:6.0f} MB (step {result["step_peak_mb"]:5.0f}'
                          f' MB), loss {result["final_loss"]:.4f}', flush=True)
            summary = summarise(runs, variants)
            report['settings'][setting] = {'batch_size': runs[0]['batch_size'],
                                           'variants': summary, 'runs': runs}
            for variant, values in summary.items():
                ratio = values.get('speed_ratio_vs_head')
                print(f'{setting:8s} {variant:5s} median {values["samples_per_s"]:.3f} samples/s'
                      + (f' = {ratio:.2f}x head, peak RSS {values["peak_rss_ratio_vs_head"]:.2f}x'
                         f', step memory {values["step_peak_ratio_vs_head"]:.2f}x'
                         if ratio else '')
                      + (f'; vs the reference step {values["speed_ratio_vs_refstep"]:.2f}x'
                         f' speed, peak RSS {values["peak_rss_ratio_vs_refstep"]:.2f}x, step'
                         f' memory {values["step_peak_ratio_vs_refstep"]:.2f}x'
                         if 'speed_ratio_vs_refstep' in values else ''), flush=True)
    print(f'wrote {write_json(args.out, report)}')
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--settings', nargs='+', default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument('--variants', nargs='+', default=['head', 'fp32', 'bf16'],
                        choices=VARIANTS)
    parser.add_argument('--checkpointing', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--reference-structure', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--task', default='distill', choices=('distill', 'weak'))
    parser.add_argument('--batch', type=int, default=8, help='lite0 and default settings')
    parser.add_argument('--vgg-batch', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--vgg-steps', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--baseline-rev', default=BASELINE_REV,
                        help="git revision timed as 'head' ('none': skip)")
    parser.add_argument('--channels-last', default='on', choices=('on', 'off', 'keep'),
                        help="current code's LoopConfig.channels_last ('keep': its default)")
    parser.add_argument('--amp', default='none', help=argparse.SUPPRESS)
    parser.add_argument('--batchnorm', default='keep', choices=('keep', 'batch', 'frozen'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--out', default=str(REPO / 'bench' / 'results' / 'train.json'))
    args = parser.parse_args(argv)
    args.channels_last = {'on': True, 'off': False, 'keep': None}[args.channels_last]
    return args


if __name__ == '__main__':
    ARGS = parse_args()
    if ARGS.worker:
        print(json.dumps(run_worker(ARGS.settings[0], ARGS.task, ARGS.batch, ARGS.amp,
                                    ARGS.channels_last, ARGS.warmup, ARGS.steps,
                                    ARGS.checkpointing, ARGS.reference_structure,
                                    ARGS.batchnorm)))
    else:
        main(ARGS)
