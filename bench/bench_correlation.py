#!/usr/bin/env python3
"""FFT correlation benchmark: the rotation search's one-satellite-against-N-templates case
and training's all-pairs case, against the textbook formula, as JSON.

    .venv/bin/python bench/bench_correlation.py [--out bench/results/correlation.json]

``current``: sliding_correlation._correlate_fft (flipped template, broadcast product for
one-against-many). ``textbook``: rfft2 of both, the template spectrum conjugated, the
channel sum by einsum, irfft2, rolled to the window offsets (what the code did before
2026-12-04). Shapes: the embedded pinhole model's finest level (24 channels, 48 x 48
satellite features, 47 x 47 templates); N = 21 yaw candidates (search) and an 8 x 8
all-pairs batch (training). Milliseconds per call, one thread, median of interleaved
repeats; the maximum absolute difference between the two says they agree.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import platform
import time

os.environ.setdefault('OMP_NUM_THREADS', '1')

from results_json import write_json  # noqa: E402
import torch  # noqa: E402

from geodistill_core.models.correlation.sliding_correlation import (  # noqa: E402
    _correlate_fft,
    _fast_length,
)

DEFAULT_OUT = Path(__file__).resolve().parent / 'results' / 'correlation.json'
CASES = {'search_1x21': (1, 21), 'training_8x8': (8, 8)}
CHANNELS, SAT_HW, TEMPLATE_HW = 24, (48, 48), (47, 47)


def textbook(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """'same'-position all-pairs correlation by conjugated spectra and einsum."""
    h, w = x.shape[-2:]
    r, c = k.shape[-2:]
    size = (_fast_length(h + (r - 1) // 2), _fast_length(w + (c - 1) // 2))
    x_f = torch.fft.rfft2(x, s=size)
    k_f = torch.fft.rfft2(k, s=size).conj()
    full = torch.fft.irfft2(torch.einsum('mcxy,ncxy->mnxy', x_f, k_f), s=size)
    full = torch.roll(full, shifts=((r - 1) // 2, (c - 1) // 2), dims=(-2, -1))
    return full[..., :h, :w]


def time_ms(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def run(repeats: int) -> dict:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    results = {}
    for name, (m, n) in CASES.items():
        x = torch.randn(m, CHANNELS, *SAT_HW, generator=g)
        k = torch.randn(n, CHANNELS, *TEMPLATE_HW, generator=g)

        def current(x=x, k=k):
            return _correlate_fft(x, k, 'same', True, torch.float32)

        def reference(x=x, k=k):
            return textbook(x, k)
        difference = float((current() - reference()).abs().max())
        scale = float(reference().abs().max())
        times = {'current': [], 'textbook': []}
        for _ in range(repeats):  # interleaved
            times['current'] += time_ms(current, 3)
            times['textbook'] += time_ms(reference, 3)
        med = {key: sorted(v)[len(v) // 2] for key, v in times.items()}
        results[name] = {'satellites': m, 'templates': n, 'ms_median': med,
                         'speedup': med['textbook'] / med['current'],
                         'max_abs_difference': difference, 'max_abs_value': scale}
    return results


def main(args=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT)
    parser.add_argument('--repeats', type=int, default=6)
    ns = parser.parse_args(args)
    report = {'cases': run(ns.repeats), 'machine': platform.processor() or platform.machine(),
              'torch': torch.__version__, 'load_average': os.getloadavg()}
    write_json(ns.out, report)
    for name, r in report['cases'].items():
        print(f"{name}: current {r['ms_median']['current']:.1f} ms, textbook "
              f"{r['ms_median']['textbook']:.1f} ms ({r['speedup']:.2f}x), max difference "
              f"{r['max_abs_difference']:.2g} of {r['max_abs_value']:.3g}")
    return ns.out


if __name__ == '__main__':
    main()
