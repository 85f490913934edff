"""Channels-last against contiguous memory format, per backbone: where does it help?

    python bench/bench_memory_format.py [--out bench/results/memory_format.json]

Each backbone (random weights: the speed does not depend on them) at the input size its
setting uses, one thread, on the CPU:
- inference: the eval-mode forward under no_grad (the Localizer's and the teacher's pass);
- training: a train-mode forward and backward of the sum of squared outputs (the student's
  backbone share of a step).
Contiguous and channels-last runs are interleaved (--repeats), each median of --steps
timed calls after one warm-up; reported per backbone and pass: the medians, the ratio
contiguous / channels-last (> 1: channels-last is faster), and whether the outputs agree.
LoopConfig.channels_last (training) and the Localizer (inference) convert models and
images with training/loop.to_channels_last / images_channels_last.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import platform
import statistics
import time

os.environ.setdefault('OMP_NUM_THREADS', '1')

from results_json import write_json  # noqa: E402
import torch  # noqa: E402

from geodistill_core.models.backbones import BackboneConfig, build_backbone  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# name -> (batch, H, W): the setting that uses it
CASES = {
    'vgg16_unet_g2s': (1, 320, 640),      # the paper's G2SWeakly setting (panorama)
    'efficientnet_lite0': (8, 128, 512),  # the embedded pinhole default, batch 8
    'efficientnet_b0': (2, 320, 640),     # the orientation estimator's ground encoder
    'dinov2_vitb14_dpt': (1, 320, 640),   # the reference's VIGOR features (frozen trunk)
}


def _levels(out) -> list[torch.Tensor]:
    return list(out.values()) if isinstance(out, dict) else list(out)


def _time(fn, steps: int) -> float:
    fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_backbone(name: str, steps: int, repeats: int) -> dict:
    torch.manual_seed(0)
    batch, H, W = CASES[name]
    models = {}
    for layout in ('contiguous', 'channels_last'):
        torch.manual_seed(0)
        model = build_backbone(BackboneConfig(name=name, weights=None, pretrained=False))
        if layout == 'channels_last':
            model = model.to(memory_format=torch.channels_last)
        models[layout] = model
    images = torch.rand(batch, 3, H, W, generator=torch.Generator().manual_seed(1))
    inputs = {'contiguous': images.contiguous(),
              'channels_last': images.to(memory_format=torch.channels_last)}

    def infer(layout):
        model = models[layout].eval()
        with torch.no_grad():
            return _levels(model(inputs[layout]))

    def train(layout):
        model = models[layout].train()
        model.zero_grad(set_to_none=True)
        loss = sum((level.float() ** 2).mean() for level in _levels(model(inputs[layout])))
        if loss.requires_grad:
            loss.backward()

    a, b = infer('contiguous'), infer('channels_last')
    max_diff = max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))
    out = {'batch': batch, 'input_hw': [H, W], 'outputs_max_abs_diff': max_diff}
    for pass_name, fn in (('inference', infer), ('training', train)):
        runs = {'contiguous': [], 'channels_last': []}
        for _ in range(repeats):
            for layout in runs:
                runs[layout].append(_time(lambda layout=layout, fn=fn: fn(layout), steps))
        medians = {k: statistics.median(v) for k, v in runs.items()}
        speedup = medians['contiguous'] / medians['channels_last']
        out[pass_name] = {'contiguous_s': medians['contiguous'],
                          'channels_last_s': medians['channels_last'],
                          'speedup_channels_last': speedup, 'runs_s': runs}
        print(f'{name:20s} {pass_name:9s} contiguous {medians["contiguous"] * 1e3:8.1f} ms, '
              f'channels-last {medians["channels_last"] * 1e3:8.1f} ms '
              f'({out[pass_name]["speedup_channels_last"]:.2f}x)', flush=True)
    return out


def main(args) -> dict:
    torch.set_num_threads(1)
    report = {'benchmark': 'memory format per backbone', 'torch': torch.__version__,
              'machine': platform.processor() or platform.machine(), 'threads': 1,
              'load_avg_at_start': os.getloadavg(),
              'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'backbones': {}}
    for name in args.backbones:
        report['backbones'][name] = bench_backbone(name, args.steps, args.repeats)
    print(f'wrote {write_json(args.out, report)}')
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--backbones', nargs='+', default=list(CASES), choices=list(CASES))
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--out', default=str(REPO / 'bench' / 'results' / 'memory_format.json'))
    return parser.parse_args(argv)


if __name__ == '__main__':
    main(parse_args())
