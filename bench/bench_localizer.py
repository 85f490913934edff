"""Benchmark Localizer latency per frame, parameter counts and peak memory, written as JSON.

    .venv/bin/python bench/bench_localizer.py [--out bench/results/localizer.json]

Location configurations (random weights: pretrained=False, timing only), each through
`Localizer.localize` with batch 1 (resizing, estimator, heatmap decoding, copy to CPU),
BatchNorm folded as `Localizer.from_checkpoints` (the node) does; models with BatchNorm
also unfolded (`batchnorm_not_folded`):
- tiny: vgg16_unet_tiny, panorama 32x64, satellite 64 (the `tiny` preset);
- g2sweakly_vgg16: vgg16_unet, panorama 320x640, satellite 512 (levels 1/8 and 1/2);
- synthetic_kitti: efficientnet_lite0, pinhole 128x512, satellite 192 (the embedded
  default model's preset).
Orientation estimator forward: tiny (64 px) and full (EfficientNet-B0, 512 px downward
view and satellite, panorama 320x640). CPU always; CUDA too when available (synchronised
around each frame). Warm-up frames are excluded; each figure is over the timed frames,
stopping after --max-seconds per configuration once --min-frames are timed.
"""
from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass, replace
import logging
import math
import os
from pathlib import Path
import platform
import resource
import time

import numpy as np
from results_json import write_json
import torch

from geodistill_core.localizer import Localizer
from geodistill_core.training.config import ModelConfig
from geodistill_core.training.models import build_model
from geodistill_core.training.presets import preset

logger = logging.getLogger('bench_localizer')
DEFAULT_OUT = Path(__file__).resolve().parent / 'results' / 'localizer.json'
REFERENCE = {
    'g2sweakly_vgg_trainable_params_m': 4.8,
    'orientation_net_params_m': 59.6,
    'note': 'figures of the reference implementations (issue 4), in millions',
}
CPU_MEMORY_NOTE = ('CPU peak memory is resource.getrusage(RUSAGE_SELF).ru_maxrss: the whole '
                   "process's resident high-water mark (KiB on Linux). delta_mib is its rise "
                   'during a configuration, 0 when an earlier configuration already reached '
                   'it; configurations run small to large so the deltas are meaningful. '
                   'tracemalloc does not see torch allocations.')


@dataclass(frozen=True)
class LocationCase:
    name: str
    preset: str
    ground_hw: tuple[int, int]
    sat_px: int
    camera_model: str
    camera_height_m: float


LOCATION_CASES = (
    LocationCase('tiny_vgg16_unet_tiny', 'tiny', (32, 64), 64, 'panorama', 2.0),
    LocationCase('synthetic_kitti_efficientnet_lite0', 'synthetic_kitti', (128, 512), 192,
                 'pinhole', 1.65),
    LocationCase('g2sweakly_vgg16_unet', 'vigor_cross', (320, 640), 512, 'panorama', 2.0),
)
# name -> (orientation ModelConfig estimator dict, panorama (H, W))
ORIENTATION_CASES = {
    'orientation_tiny': ({'backbone': 'tiny', 'ground_channels': 32, 'satellite_channels': 32,
                          'bev_size_px': 64, 'fusion_channels': 32, 'mlp_hidden': 64},
                         (32, 64)),
    'orientation_efficientnet_b0': ({'backbone': 'efficientnet_b0', 'bev_size_px': 512},
                                    (320, 640)),
}


def _param_counts(model: torch.nn.Module) -> dict:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {'params_total': total, 'params_trainable': trainable,
            'params_total_m': round(total / 1e6, 3),
            'params_trainable_m': round(trainable / 1e6, 3)}


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _time_frames(fn, device: torch.device, warmup: int, min_frames: int, max_frames: int,
                 max_seconds: float) -> dict:
    """Latency per call (ms) over timed calls after `warmup` untimed ones, plus peak memory."""
    cuda = device.type == 'cuda'
    rss_before = _maxrss_mib()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
    times_ms = []
    start = time.perf_counter()
    while len(times_ms) < max_frames and (len(times_ms) < min_frames
                                         or time.perf_counter() - start < max_seconds):
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        times_ms.append((time.perf_counter() - t0) * 1e3)
    median = float(np.median(times_ms))
    result = {'frames_timed': len(times_ms), 'warmup_frames': warmup, 'median_ms': median,
              'p90_ms': float(np.percentile(times_ms, 90)), 'min_ms': min(times_ms),
              'frames_per_s': 1e3 / median}
    if cuda:
        result['peak_memory'] = {'kind': 'torch.cuda.max_memory_allocated',
                                 'mib': torch.cuda.max_memory_allocated(device) / 2 ** 20}
    else:
        after = _maxrss_mib()
        result['peak_memory'] = {'kind': 'ru_maxrss (process high-water mark)',
                                 'maxrss_mib': after, 'delta_mib': after - rss_before}
    return result


def _pinhole_K(hw: tuple[int, int]) -> np.ndarray:
    H, W = hw
    return np.array([[0.6 * W, 0.0, (W - 1) / 2], [0.0, 0.6 * W, (H - 1) / 2], [0.0, 0.0, 1.0]])


def bench_location(case: LocationCase, device: torch.device, timing: dict) -> dict:
    train_config = preset(case.preset, 'location')
    model_config = replace(train_config.model, pretrained=False, ground_weights=None,
                           satellite_weights=None)
    torch.manual_seed(0)
    model = build_model(model_config)
    counts = _param_counts(model)
    generator = torch.Generator().manual_seed(1)
    ground = torch.rand(1, 3, *case.ground_hw, generator=generator)
    satellite = torch.rand(1, 3, case.sat_px, case.sat_px, generator=generator)
    K = _pinhole_K(case.ground_hw) if case.camera_model == 'pinhole' else None

    def frame_of(fold: bool):
        localizer = Localizer(copy.deepcopy(model), kind=model_config.kind,
                              ground_hw=case.ground_hw, sat_size_px=case.sat_px,
                              camera_model=case.camera_model,
                              camera_height_m=case.camera_height_m, device=str(device),
                              fold_batchnorm=fold)
        return lambda: localizer.localize(ground, satellite, 0.2, yaw_prior_rad=math.pi / 2,
                                          K=K)

    frame = frame_of(True)  # as from_checkpoints (the node) builds it

    result = {'name': case.name, 'task': 'location (Localizer.localize, batch 1)',
              'device': str(device), 'model': {'kind': model_config.kind,
                                               'ground_backbone': model_config.ground_backbone,
                                               'satellite_backbone':
                                                   model_config.satellite_backbone,
                                               'levels': list(model_config.levels)},
              'ground_hw': list(case.ground_hw), 'sat_px': case.sat_px,
              'camera_model': case.camera_model, **counts}
    result.update(_time_frames(frame, device, **timing))
    if any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
        plain = _time_frames(frame_of(False), device, **timing)
        result['batchnorm_not_folded'] = {k: plain[k] for k in ('median_ms', 'p90_ms')}
    return result


def bench_orientation(name: str, device: torch.device, timing: dict) -> dict:
    estimator, pano_hw = ORIENTATION_CASES[name]
    config = ModelConfig(kind='orientation', ground_backbone=estimator['backbone'],
                         satellite_backbone=estimator['backbone'], pretrained=False,
                         estimator=dict(estimator))
    torch.manual_seed(0)
    model = build_model(config).to(device).eval()
    counts = _param_counts(model)
    size = estimator['bev_size_px']
    generator = torch.Generator().manual_seed(1)
    satellite = torch.rand(1, 3, size, size, generator=generator).to(device)
    pano = torch.rand(1, 3, *pano_hw, generator=generator).to(device)
    prior = torch.full((1,), math.pi / 2, device=device)

    def frame():
        with torch.inference_mode():
            return model(satellite, pano, prior)

    result = {'name': name, 'task': 'orientation forward (batch 1)', 'device': str(device),
              'backbone': estimator['backbone'], 'bev_size_px': size,
              'panorama_hw': list(pano_hw), **counts}
    result.update(_time_frames(frame, device, **timing))
    return result


def run_benchmark(devices: list[str], timing_small: dict, timing_full: dict) -> dict:
    result = {'machine': {'cpu_count': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
                          'torch': torch.__version__, 'python': platform.python_version(),
                          'cuda': torch.cuda.get_device_name(0)
                          if torch.cuda.is_available() else None,
                          'load_avg_at_start': os.getloadavg()},
              'reference': REFERENCE,
              'notes': [CPU_MEMORY_NOTE,
                        'random weights (pretrained=False): latency does not depend on them',
                        'wall-clock times; other jobs on a shared machine inflate them '
                        '(see load_avg)'],
              'timing': {'small': timing_small, 'full': timing_full}, 'results': []}
    for name in devices:
        device = torch.device(name)
        if device.type == 'cuda':  # the full configurations are fast there: time as many
            timing_full = dict(timing_full, max_frames=timing_small['max_frames'])
        for case in LOCATION_CASES:
            timing = timing_small if case.preset == 'tiny' else timing_full
            entry = bench_location(case, device, timing)
            logger.info('%s %s: %.1f ms median, %.2f M params (%.2f M trainable)', name,
                        case.name, entry['median_ms'], entry['params_total_m'],
                        entry['params_trainable_m'])
            result['results'].append(entry)
        for orientation in ORIENTATION_CASES:
            timing = timing_small if orientation.endswith('tiny') else timing_full
            entry = bench_orientation(orientation, device, timing)
            logger.info('%s %s: %.1f ms median, %.2f M params', name, orientation,
                        entry['median_ms'], entry['params_total_m'])
            result['results'].append(entry)
    result['machine']['load_avg_at_end'] = os.getloadavg()
    return result


def main(args=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='JSON output path')
    parser.add_argument('--devices', default='auto',
                        help="comma-separated devices, or 'auto': cpu (+ cuda when available)")
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--min-frames', type=int, default=3)
    parser.add_argument('--frames', type=int, default=20, help='max timed frames (tiny)')
    parser.add_argument('--full-frames', type=int, default=5,
                        help='max timed frames of the full configurations on the CPU (CUDA: '
                             '--frames)')
    parser.add_argument('--max-seconds', type=float, default=15.0,
                        help='stop timing a configuration after this once min-frames are done')
    ns = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    devices = (['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
               if ns.devices == 'auto' else ns.devices.split(','))
    small = {'warmup': ns.warmup + 1, 'min_frames': ns.min_frames, 'max_frames': ns.frames,
             'max_seconds': ns.max_seconds}
    full = dict(small, warmup=ns.warmup, max_frames=ns.full_frames)
    result = run_benchmark(devices, small, full)
    write_json(ns.out, result)
    logger.info('-> %s', ns.out)
    return ns.out


if __name__ == '__main__':
    main()
