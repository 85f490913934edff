"""Benchmark the synthetic world: generation time and render throughput, written as JSON.

    .venv/bin/python bench/bench_synthetic.py [--out bench/results/synthetic.json]

Panoramas (320x640 and 512x1024), KITTI-like pinhole frames (1242x375) and 640x640
satellite crops are rendered from street poses of one world; each figure is the median
over the timed frames after one warm-up frame. `export_tiny` times the `tiny` export preset
(VIGOR + KITTI layouts + maps, presets.make_synthetic) end to end, with its size on disk.
Wall-clock and process CPU time are both reported (other jobs on a shared machine inflate
wall time; CPU time counts all threads).
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import os
from pathlib import Path
import platform
import statistics
import tempfile
import time

import cv2
import numpy as np
from results_json import write_json
import torch

from geodistill_core.data.synthetic import (
    CITY_STYLES,
    KITTI_CAMERA,
    KITTI_CAMERA_HEIGHT_M,
    CameraPose,
    WorldConfig,
    generate_world,
    make_synthetic,
    render_panorama,
    render_pinhole,
    render_satellite,
    sample_street_poses,
)
from geodistill_core.geometry.raster import NorthUpCrop

DEFAULT_OUT = Path(__file__).resolve().parent / 'results' / 'synthetic.json'


@dataclass(frozen=True)
class BenchConfig:
    size_m: float = 320.0
    cell_m: float = 0.125
    style: str = 'grid_downtown'
    seed: int = 0
    frames: int = 20
    all_styles: bool = True


def _timed(fn, n: int) -> dict:
    """Median wall and CPU seconds per call over n calls (after one warm-up call)."""
    fn(0)
    wall, cpu = [], []
    for i in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        fn(i + 1)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    med_wall, med_cpu = statistics.median(wall), statistics.median(cpu)
    return {'frames': n, 'median_wall_s': med_wall, 'median_cpu_s': med_cpu,
            'per_second_wall': 1.0 / med_wall, 'per_second_cpu': 1.0 / med_cpu}


def _export_tiny(seed: int) -> dict:
    """Wall/CPU seconds and bytes of make_synthetic('tiny') into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        w0, c0 = time.perf_counter(), time.process_time()
        make_synthetic('tiny', Path(tmp), seed=seed, progress=False)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        files = [p for p in Path(tmp).rglob('*') if p.is_file()]
        return {'preset': 'tiny', 'wall_s': wall, 'cpu_s': cpu, 'files': len(files),
                'bytes': sum(p.stat().st_size for p in files)}


def run_benchmark(config: BenchConfig) -> dict:
    """Run every measurement; returns the JSON-ready result dict."""
    result = {'config': asdict(config), 'machine': {
        'cpu_count': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
        'cv2_threads': cv2.getNumThreads(), 'numpy': np.__version__,
        'python': platform.python_version(), 'load_avg_at_start': os.getloadavg()}}
    styles = sorted(CITY_STYLES) if config.all_styles else [config.style]
    generation = {}
    world = None
    for style in styles:
        wc = WorldConfig(style=style, size_m=config.size_m, cell_m=config.cell_m)
        w0, c0 = time.perf_counter(), time.process_time()
        w = generate_world(wc, config.seed)
        generation[style] = {'wall_s': time.perf_counter() - w0,
                             'cpu_s': time.process_time() - c0, 'cells': w.grid.rows ** 2,
                             'buildings': len(w.buildings), 'trees': len(w.trees),
                             'cars': len(w.cars), 'roads': len(w.roads.edges)}
        if style == config.style:
            world = w
    if world is None:
        world = generate_world(WorldConfig(style=config.style, size_m=config.size_m,
                                           cell_m=config.cell_m), config.seed)
    result['world_generation'] = generation
    n = config.frames
    poses = sample_street_poses(world, n + 1, seed=config.seed + 1, yaw_mode='uniform')

    def pano(hw):
        return lambda i: render_panorama(world, poses.pose(i), hw[0], hw[1], seed=i)

    def pinhole(i):
        p = poses.pose(i)
        pose = CameraPose(p.east_m, p.north_m, p.yaw_rad, KITTI_CAMERA_HEIGHT_M)
        return render_pinhole(world, pose, KITTI_CAMERA, seed=i)

    def satellite(i):
        crop = NorthUpCrop(640, 640, 0.11, poses.east_m[i], poses.north_m[i])
        return render_satellite(world, crop, seed=i)

    result['panorama_320x640'] = _timed(pano((320, 640)), n)
    result['panorama_512x1024'] = _timed(pano((512, 1024)), max(n // 2, 3))
    result['pinhole_375x1242'] = _timed(pinhole, n)
    result['satellite_640x640'] = _timed(satellite, n)
    result['export_tiny'] = _export_tiny(config.seed)
    result['load_avg_at_end'] = os.getloadavg()
    return result


def main(args=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='JSON output path')
    parser.add_argument('--frames', type=int, default=BenchConfig.frames)
    parser.add_argument('--size-m', type=float, default=BenchConfig.size_m)
    parser.add_argument('--cell-m', type=float, default=BenchConfig.cell_m)
    parser.add_argument('--style', default=BenchConfig.style, choices=sorted(CITY_STYLES))
    parser.add_argument('--seed', type=int, default=BenchConfig.seed)
    parser.add_argument('--one-style', action='store_true',
                        help='time world generation for --style only')
    ns = parser.parse_args(args)
    config = BenchConfig(size_m=ns.size_m, cell_m=ns.cell_m, style=ns.style, seed=ns.seed,
                         frames=ns.frames, all_styles=not ns.one_style)
    result = run_benchmark(config)
    write_json(ns.out, result)
    pano = result['panorama_320x640']
    print(f"panorama 320x640: {pano['per_second_wall']:.1f}/s wall, "
          f"{pano['per_second_cpu']:.1f}/s cpu; pinhole: "
          f"{result['pinhole_375x1242']['per_second_wall']:.1f}/s wall; "
          f"world generation ({config.style}): "
          f"{result['world_generation'][config.style]['wall_s']:.2f} s -> {ns.out}")
    return ns.out


if __name__ == '__main__':
    main()
