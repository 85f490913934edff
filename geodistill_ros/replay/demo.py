"""``make demo`` / ``geodistill-demo``: the product end to end on a drive nobody trained on.

1. data: the synthetic 'demo' preset (a KITTI-format drive of 300 frames through
   SynthOldTown, an old_town city style never used for training, plus the GeoTIFF of that
   world) into ``<out>/data`` unless it is there already;
2. bag: geodistill-kitti2bag of that drive (seeded GNSS noise, 5 m per axis) into
   ``<out>/bag``;
3. replay: the bag through the real localizer node over DDS (own ROS domain,
   localhost only), paced by the node's output, with the embedded default model on the CPU;
4. a table: GNSS input error against localized error, lateral/longitudinal, yaw, rate,
   latency, frames, and where report.json and the pictures are.

``--frames N`` shortens the drive (its own ``data_<N>frames`` / ``bag_<N>frames`` folders,
generated with N frames). Everything is seeded (``--seed``): a rerun gives the same
numbers, except the timings.

``--panorama``: the same route driven with a roof-mounted 360 camera (synthetic preset
'demo_panorama': equirectangular 320 x 640 panoramas, centre column = heading, 2 m up, as
the VIGOR-style training data), converted and replayed with camera_model 'panorama' and the
embedded default panorama model (``--checkpoint`` for another); folders ``*_panorama``.
``panorama_missing`` lists what it lacks when that model is not installed.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import json
import logging
from pathlib import Path
import sys
import time

LOG = logging.getLogger(__name__)
DEMO_PRESET = 'demo'
PANORAMA_PRESET = 'demo_panorama'


def panorama_missing(checkpoint: str = '') -> list[str]:
    """What the panorama demo still lacks (empty when every piece exists); checkpoint: a
    panorama location checkpoint used instead of the embedded default model."""
    from geodistill_core.data.synthetic.presets import SYNTHETIC_PRESETS
    from geodistill_ros.node.model_crop import NODE_DEFAULTS_FILE, model_crop
    missing = []
    model = Path(checkpoint) if checkpoint else default_model_path('panorama')
    what = f'--checkpoint {model}' if checkpoint else 'the embedded default panorama model'
    if not (model / 'config.json').is_file():
        missing.append(f'{what} ({model / "config.json"} is missing)')
    elif model_crop(str(model), 'panorama') is None:
        missing.append(f'the satellite resolution of {what} (no meters_per_px in its '
                       f'config.json, no {NODE_DEFAULTS_FILE} beside it)')
    if PANORAMA_PRESET not in SYNTHETIC_PRESETS:
        missing.append(f'a VIGOR-style panorama drive exporter (synthetic preset '
                       f'{PANORAMA_PRESET!r})')
    return missing


def default_model_path(camera_model: str = 'pinhole'):
    from geodistill_core.localizer import ASSETS_DIR
    return ASSETS_DIR / f'default_{camera_model}_location'


def make_demo_data(out: Path, frames: int | None, seed: int,
                   preset_name: str = DEMO_PRESET) -> tuple[Path, Path, dict]:
    """(drive folder, GeoTIFF, synthetic_kitti.json) of the demo drive, generated if needed."""
    from geodistill_core.data.synthetic.presets import get_preset, make_synthetic
    preset = get_preset(preset_name)
    if frames is not None:
        preset = replace(preset, kitti_drive=replace(preset.kitti_drive, frames=frames))
    data = out / ('data' + _suffix(frames, preset_name == PANORAMA_PRESET))
    started = time.perf_counter()
    make_synthetic(preset, data, seed=seed, layout='kitti', progress=False)
    LOG.info('demo data ready in %s (%.0f s)', data, time.perf_counter() - started)
    kitti = data / 'kitti'
    meta = json.loads((kitti / 'synthetic_kitti.json').read_text())
    drive = meta['drives'][0]
    drive_dir = kitti / 'raw_data' / drive['date'] / drive['drive']
    map_path = (kitti / meta['cities'][drive['city']]['map']).resolve()
    return drive_dir, map_path, {**meta['cities'][drive['city']], 'drive': drive}


def convert(drive_dir: Path, bag: Path, seed: int) -> Path:
    """The drive as a bag at ``bag``; an existing bag of another conversion is replaced."""
    from geodistill_ros.bags.kitti2bag import convert_drive
    started = time.perf_counter()
    try:
        convert_drive(drive_dir, bag, seed=seed)
    except FileExistsError:
        LOG.info('%s holds another conversion: converting again', bag)
        convert_drive(drive_dir, bag, seed=seed, overwrite=True)
    LOG.info('bag ready: %s (%.0f s)', bag, time.perf_counter() - started)
    return bag


def _suffix(frames: int | None, panorama: bool) -> str:
    """Folder suffix of a demo variant: '', '_panorama', '_40frames', '_panorama_40frames'."""
    return ('_panorama' if panorama else '') + ('' if frames is None else f'_{frames}frames')


def _f(value, digits: int = 2, scale: float = 1.0, unit: str = '') -> str:
    return 'n/a' if value is None else f'{value * scale:.{digits}f}{unit}'


def table(report: dict, city: dict, out: Path) -> str:
    """The demo's summary table (plain text)."""
    m, frames, timing = report['metrics'], report['frames'], report['timing']
    gnss, est = m['gnss_on_output_frames'], m
    rows = [('mean error', 'mean', 2, 1.0, ' m'), ('median error', 'median', 2, 1.0, ' m'),
            ('R@1m', 'recall_1m', 0, 100.0, '%'), ('R@3m', 'recall_3m', 0, 100.0, '%'),
            ('R@5m', 'recall_5m', 0, 100.0, '%')]
    kind = ('panorama (360 camera, VIGOR-style)' if report['drive'].get('camera_model')
            == 'panorama' else 'KITTI')
    lines = [f"geodistill demo: {frames['images']} frames of a synthetic {kind} drive through "
             f"{city['name']} ({city['style']} style, not used for training)",
             f"model {report['model']} on {report['device']}; GNSS input noise "
             f"{report['drive']['noise']['sigma_m']:g} m per axis (seed "
             f"{report['drive']['seed']})", '',
             f"{'':26}{'GNSS input':>12}{'single frame':>14}{'fused (pose)':>14}"]
    single = report.get('metrics_single_frame') or {}

    def cell(block, key, digits, scale, unit, width=14):
        value = None if not block else block.get(key)
        return f'{_f(value, digits, scale, unit):>{width}}'
    for label, key, digits, scale, unit in rows:
        lines.append(f'{label:26}{_f(gnss["position"][key], digits, scale, unit):>12}'
                     + cell(single.get('position'), key, digits, scale, unit)
                     + cell(est['position'], key, digits, scale, unit))
    for axis in ('lateral', 'longitudinal'):
        lines.append(f'{axis + " |error| mean":26}{_f(gnss[axis]["mean"], 2, 1, " m"):>12}'
                     + cell(single.get(axis), 'mean', 2, 1, ' m')
                     + cell(est[axis], 'mean', 2, 1, ' m'))
    for label, key, digits, scale, unit in (('NEES mean (2 = consistent)', 'nees_mean', 2, 1,
                                             ''),
                                            ('inside 68% ellipse', 'inside_1sigma', 0, 100,
                                             '%'),
                                            ('inside 95% ellipse', 'inside_2sigma', 0, 100,
                                             '%'),
                                            ('independent frames (N_eff)',
                                             'effective_samples', 0, 1, '')):
        lines.append(f'{label:26}{"-":>12}'
                     + cell(single.get('consistency'), key, digits, scale, unit)
                     + cell(est['consistency'], key, digits, scale, unit))
    windows = report.get('comparison', {}).get('windows')
    if windows:
        lines.append(f"{'10-s windows worse than GNSS':26}{'-':>12}{'':>14}"
                     f"{windows['worse_than_gnss']:>8} of {windows['count']:<3}")
    yaw = m['yaw'] or {}
    heading = report['heading']
    yaw_mean = _f(yaw.get('mean'), 2, 1, ' deg')
    lines.append(f"{'yaw error mean':26}{'-':>12}{'':>14}{yaw_mean:>14}"
                 f"   (heading prior: {heading['source']}, noise {heading['noise_deg']:g} deg)")
    e2e, node = timing['latency_end_to_end_ms'], timing['node_latency_ms']
    rejected = sum(frames['rejected'].values())
    reasons = ', '.join(f'{k} x{n}' for k, n in sorted(frames['rejected'].items()))
    dropped = frames['dropped_busy'] + frames['not_received'] + frames['timeouts']
    lines += ['',
              f"frames     {frames['images']} played, {frames['processed']} processed, "
              f"{frames['outputs']} poses, {rejected} rejected"
              + (f' ({reasons})' if reasons else '') + f', {dropped} dropped',
              f"rate       {_f(timing['throughput_hz'], 1)} Hz (paced by the node, "
              f"{report['device']})",
              f"latency    p50 {_f(e2e['p50'], 0)} ms, p95 {_f(e2e['p95'], 0)} ms (image "
              f"published -> pose received; inside the node {_f(node['p50'], 0)}/"
              f"{_f(node['p95'], 0)} ms)",
              f"report     {out / 'report.json'}",
              'pictures   ' + ', '.join(str(Path(p)) for p in report['pictures'].values())]
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='geodistill-demo', description=(
        'Synthetic KITTI drive (or 360 panorama drive) -> rosbag -> the localizer node over '
        'DDS -> error table.'))
    p.add_argument('--frames', type=int, default=None,
                   help='shorten the drive to N frames (default: the full 300)')
    p.add_argument('--out', type=Path, default=Path('outputs/demo'), help='output folder')
    p.add_argument('--checkpoint', default='',
                   help='location checkpoint folder instead of the embedded default model')
    p.add_argument('--device', choices=('cpu', 'cuda', 'auto'), default='cpu')
    p.add_argument('--seed', type=int, default=0, help='seed of the drive and the GNSS noise')
    p.add_argument('--panorama', action='store_true',
                   help='the drive with a 360 camera and the panorama model (VIGOR-style)')
    p.add_argument('--log-level', default='INFO', choices=('DEBUG', 'INFO', 'WARNING'))
    return p


def main(args=None) -> int:
    ns = build_parser().parse_args(args)
    logging.basicConfig(level=ns.log_level, format='%(levelname)s %(name)s: %(message)s')
    if ns.panorama:
        missing = panorama_missing(ns.checkpoint)
        if missing:
            LOG.error('the panorama demo cannot run: it needs %s. Pass --checkpoint DIR (a '
                      'panorama location checkpoint), or run the pinhole demo (without '
                      '--panorama).', '; '.join(missing))
            return 2
    if ns.frames is not None and ns.frames < 2:
        LOG.error('--frames must be at least 2, got %d', ns.frames)
        return 2
    model = default_model_path('panorama' if ns.panorama else 'pinhole')
    if not ns.checkpoint and not (model / 'config.json').is_file():
        LOG.error('the embedded default model is not installed (%s is missing): reinstall '
                  'with `make setup`, or pass --checkpoint DIR', model)
        return 1
    if ns.checkpoint and not (Path(ns.checkpoint) / 'config.json').is_file():
        LOG.error('--checkpoint %s is not a checkpoint folder (no config.json)', ns.checkpoint)
        return 1
    from geodistill_ros.replay.evaluate import ReplayConfig, replay
    started = time.perf_counter()
    suffix = _suffix(ns.frames, ns.panorama)
    report_dir = ns.out / f'report{suffix}'
    try:
        drive_dir, map_path, city = make_demo_data(
            ns.out, ns.frames, ns.seed, PANORAMA_PRESET if ns.panorama else DEMO_PRESET)
        bag = convert(drive_dir, ns.out / f'bag{suffix}', ns.seed)
        result = replay(ReplayConfig(bag=bag, map_path=map_path, out_dir=report_dir,
                                     checkpoint=ns.checkpoint, device=ns.device,
                                     seed=ns.seed, isolated=True))
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError,
            TimeoutError) as err:
        LOG.error('demo failed: %s', err)
        return 1
    sys.stdout.write(table(result.report, city, report_dir) + '\n')
    LOG.info('demo finished in %.0f s', time.perf_counter() - started)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
