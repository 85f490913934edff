#!/usr/bin/env python3
"""Cost of the node's sequence filter per camera frame (target: at most 5 ms on the CPU).

One SequenceFusion with the node's default settings (config/localize.yaml: 0.5 m cells,
64 m window) driven like a 10 Hz drive: per frame one fix, one odometry sample and one
calibrated heatmap of the embedded default models' sizes (pinhole 96 x 96, panorama
128 x 128 cells), a straight road with a turn, one thread. Timed: ``step`` (prediction,
fix update with gating, heatmap update, estimate, window recentring); the first frames
(initialisation) are skipped. Writes bench/results/filter.json.

    python bench/bench_filter.py [--frames 600]
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
import platform
import time

os.environ.setdefault('OMP_NUM_THREADS', '1')

import numpy as np  # noqa: E402
from results_json import write_json  # noqa: E402

from geodistill_core.filtering import (  # noqa: E402
    FusionConfig,
    HeatmapMeasurement,
    SequenceFusion,
    TwistSample,
)

RESULTS = Path(__file__).resolve().parent / 'results' / 'filter.json'


def heatmap(truth, centre, cells: int, cell_m: float, rng) -> HeatmapMeasurement:
    e = (np.arange(cells) - (cells - 1) / 2) * cell_m
    east, north = np.meshgrid(e, -e)
    d2 = (east + centre[0] - truth[0]) ** 2 + (north + centre[1] - truth[1]) ** 2
    p = np.exp(-0.5 * d2 / 1.5 ** 2) + rng.random((cells, cells)) * 1e-3
    return HeatmapMeasurement(p / p.sum(), cell_m, np.asarray(centre), 0.0, (0.0, 0.0),
                              0.01 / cells ** 2)


def run(frames: int, cells: int, cell_m: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    fusion = SequenceFusion(FusionConfig())
    pos, yaw, times = np.zeros(2), 0.0, []
    for k in range(frames):
        stamp = 1_000_000_000_000 + k * 100_000_000
        yaw_rate = 0.3 if (k // 150) % 2 else 0.0
        fusion.add_twist(TwistSample(stamp, 8.0, 0.0, yaw_rate, np.diag([0.01, 0.01, 1e-4])))
        fix = pos + rng.normal(0, 5.0, 2)
        fusion.add_fix(stamp, fix, np.eye(2) * 25.0)
        measurement = heatmap(pos, fix, cells, cell_m, rng)
        started = time.perf_counter()
        fusion.step(stamp, yaw, measurement)
        times.append(time.perf_counter() - started)
        pos = pos + 0.8 * np.array([math.cos(yaw), math.sin(yaw)])
        yaw += yaw_rate * 0.1
    t = np.array(times[10:]) * 1e3
    return {'frames': len(t), 'heatmap_cells': cells, 'window_cells': fusion.grid.size,
            'mean_ms': float(t.mean()), 'p50_ms': float(np.percentile(t, 50)),
            'p95_ms': float(np.percentile(t, 95)), 'max_ms': float(t.max())}


def main(args=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--frames', type=int, default=600)
    p.add_argument('--results', type=Path, default=RESULTS)
    ns = p.parse_args(args)
    rows = {'pinhole_heatmap_96': run(ns.frames, 96, 0.522),
            'panorama_heatmap_128': run(ns.frames, 128, 0.4)}
    out = {'benchmark': 'filter', 'target_ms_per_frame': 5.0,
           'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
           'machine': {'cpu': platform.processor() or platform.machine(),
                       'cores': os.cpu_count(), 'load_1min': os.getloadavg()[0]},
           'results': rows}
    write_json(ns.results, out)
    for name, r in rows.items():
        print(f"{name}: mean {r['mean_ms']:.2f} ms, p50 {r['p50_ms']:.2f} ms, p95 "
              f"{r['p95_ms']:.2f} ms, max {r['max_ms']:.2f} ms per frame "
              f"({r['window_cells']}^2 cells)")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
