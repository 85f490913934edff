"""Replay evaluation: a drive bag through the localizer node, scored against ground truth.

``geodistill-replay BAG --map MAP.tif --out DIR`` starts the real node (console script
``localizer_node``, use_sim_time) as a subprocess, configured from the bag's sidecar (datum,
camera mount, image transport) and the model (crop size from its training resolution),
plays the bag to it over DDS (``bags.player``: original stamps, /clock, waiting for each
image's outcome or at ``--rate``), records its outputs and writes into DIR:

- ``report.json``: ``metrics`` (trajectory_metrics: localized and GNSS-input error, R@1/3/5
  m, lateral/longitudinal, yaw, rates, latency, covariance consistency), ``frames``
  (counts: outputs, rejections by reason, dropped, resent), ``timing`` (wall time,
  throughput, end-to-end and node latency), ``node_parameters``, ``heading``, ``pictures``;
- ``frames.csv`` (one row per image: the published pose), ``frames_single.csv`` (the same
  columns for pose_single, when the node published it), ``node.yaml`` (the node's
  parameters), ``node.log``;
- ``trajectory.png`` (truth, GNSS, localized over the satellite map), ``error_over_time.png``,
  ``error_cdf.png`` (replay.plots).

``--offline`` runs the same frames without DDS: the node's own LocalizationPipeline,
FixBuffer pairing and Localizer in this process, every image processed (deterministic; the
paced DDS replay processes the same frames, so their metrics agree). Truth and the GNSS
input are taken at each image stamp (interpolated); frames without output count as misses
in ``position_all_frames``.

Modules of ``geodistill_ros.replay``: records (config and records), offline (the run
without DDS), comparison (GNSS / single frame / fused side by side), dds (the node
subprocess and the player), plots, trajectory_metrics, this one (node parameters, scoring,
the report and the command line).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np
import yaml

from geodistill_core.geodesy import LocalEnu
from geodistill_ros.bags import player as bp
from geodistill_ros.node.fix_buffer import FixBuffer
from geodistill_ros.node.model_crop import crop_parameters, model_crop  # noqa: F401 (re-export)
from geodistill_ros.node.params import SPECS
from geodistill_ros.replay.comparison import side_by_side
from geodistill_ros.replay.dds import run_dds, write_params_file  # noqa: F401 (re-export)
from geodistill_ros.replay.offline import run_offline
from geodistill_ros.replay.plots import write_report_plots
from geodistill_ros.replay.records import (  # noqa: F401 (re-export)
    FrameOutput,
    ReplayConfig,
    ReplayResult,
    RunOutcome,
)
from geodistill_ros.replay.trajectory_metrics import (
    FrameRecord,
    evaluate_trajectory,
    stack_records,
)
from geodistill_ros.satellite import MapSourceError, make_source

LOG = logging.getLogger(__name__)


# --- node configuration -------------------------------------------------------------------

def node_parameters(bag: bp.DriveBag, config: ReplayConfig) -> dict:
    """Flat parameter name -> value for the node (also the offline run's NodeConfig)."""
    sidecar = bag.sidecar
    camera_model = sidecar.get('camera_model', 'pinhole')
    datum, mount = sidecar['datum'], sidecar.get('node_camera_offset', {})
    values = {
        'camera_model': camera_model,
        'image_transport': 'compressed' if sidecar.get('compressed') else 'raw',
        'datum.latitude_deg': datum['lat_deg'], 'datum.longitude_deg': datum['lon_deg'],
        'datum.altitude_m': datum.get('alt_m', 0.0),
        'map_source.kind': 'geotiff', 'map_source.path': str(Path(config.map_path).resolve()),
        'location_checkpoint': (str(Path(config.checkpoint).resolve()) if config.checkpoint
                                else ''),
        'device': config.device, 'publish_heatmap': True, 'diagnostics_period_s': 0.1,
        **{f'camera_offset.{k}': v for k, v in mount.items()}}
    values.update(crop_parameters(config.checkpoint, camera_model, config.params))
    values.update(config.params)
    for name, value in values.items():  # ROS parameters are typed: 49 is not a double
        spec = SPECS.get(name)
        if spec is not None and spec.type.name == 'DOUBLE' and isinstance(value, int):
            values[name] = float(value)
    values['publish_heatmap'] = True  # the paced player's per-frame completion signal
    return values


# --- scoring and report -------------------------------------------------------------------

def gnss_input_at(bag: bp.DriveBag, stamps_ns: np.ndarray, datum) -> np.ndarray:
    """The GNSS input (noisy fix stream, interpolated) at each stamp, map xy (N, 2)."""
    fixes = bp.read_input_fixes(bag)
    buffer = FixBuffer(max_fixes=len(fixes) + 2, backwards_reset_s=None)
    for fix in fixes:
        buffer.insert(fix)
    xy = np.full((len(stamps_ns), 2), np.nan)
    for k, stamp in enumerate(stamps_ns):
        lookup = buffer.at(int(stamp), max_age_s=1.0)
        if lookup.ok:
            fix = lookup.fix
            alt = fix.alt_m if math.isfinite(fix.alt_m) else 0.0
            x, y, _ = datum.to_enu(fix.lat_deg, fix.lon_deg, alt)
            xy[k] = float(x), float(y)
    return xy


def frame_records(bag: bp.DriveBag, outcome: RunOutcome, datum,
                  outputs: dict | None = None) -> list[FrameRecord]:
    """One FrameRecord per image played: truth and GNSS at its stamp, the node's output
    (``outputs``: stamp -> FrameOutput; default the pose topic's, outcome.outputs)."""
    outputs = outcome.outputs if outputs is None else outputs
    stamps = np.array(outcome.image_stamps, np.int64)
    truth_xy, truth_yaw = bp.read_truth(bag).at(stamps)
    gnss_xy = gnss_input_at(bag, stamps, datum)
    records = []
    for k, stamp in enumerate(stamps.tolist()):
        out = outputs.get(stamp)
        records.append(FrameRecord(
            stamp, tuple(truth_xy[k]), float(truth_yaw[k]), tuple(gnss_xy[k]),
            estimate_xy_m=None if out is None else tuple(out.xy_m),
            estimate_yaw_rad=None if out is None else out.yaw_rad,
            estimate_cov_xy_m2=None if out is None else out.cov_xy_m2,
            confidence=None if out is None else out.confidence,
            latency_s=None if out is None else out.latency_s))
    return records


def compare_records(a: list[FrameRecord], b: list[FrameRecord]) -> dict:
    """Per-frame agreement of two runs of the same frames (e.g. DDS against offline)."""
    ea = {r.stamp_ns: r for r in a if r.estimate_xy_m is not None}
    eb = {r.stamp_ns: r for r in b if r.estimate_xy_m is not None}
    common = sorted(set(ea) & set(eb))
    dxy = [math.dist(ea[s].estimate_xy_m, eb[s].estimate_xy_m) for s in common]
    dyaw = [abs(math.remainder(ea[s].estimate_yaw_rad - eb[s].estimate_yaw_rad, math.tau))
            for s in common]
    return {'frames': (len(a), len(b)), 'outputs': (len(ea), len(eb)), 'common': len(common),
            'max_position_difference_m': max(dxy, default=0.0),
            'max_yaw_difference_rad': max(dyaw, default=0.0)}


def _map_background(values: dict, datum, arrays, margin_m: float = 25.0):
    """(satellite RGB, NorthUpCrop) under the tracks, or (None, None) where not covered."""
    points = np.concatenate([arrays.truth_xy_m, arrays.gnss_xy_m, arrays.estimate_xy_m])
    points = points[np.isfinite(points).all(1)]
    centre = 0.5 * (points.min(0) + points.max(0))
    lat, lon, _ = datum.to_geodetic(centre[0], centre[1], 0.0)
    options = {'path': values['map_source.path']} if values['map_source.kind'] == 'geotiff' else {
        k: values[f'map_source.{k}'] for k in ('root', 'zoom', 'ext', 'tms')}
    with make_source(values['map_source.kind'], **options) as source:
        for margin in (margin_m, 0.4 * margin_m, 0.0):
            size_m = float((points.max(0) - points.min(0)).max()) + 2.0 * margin + 1.0
            size_px = int(np.clip(size_m / 0.2, 256, 1200))
            try:
                crop = source.crop(float(lat), float(lon), size_m, size_px, datum=datum)
            except MapSourceError as err:
                LOG.info('map background with a %.0f m margin: %s', margin, err)
                continue
            return crop.image, crop.north_up_crop()
    return None, None


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _percentiles_ms(values) -> dict:
    v = np.asarray([x for x in values if x is not None], np.float64) * 1e3
    if not v.size:
        return {'p50': math.nan, 'p95': math.nan}
    return {'p50': float(np.percentile(v, 50)), 'p95': float(np.percentile(v, 95))}


def write_frames_csv(path: Path, records: list[FrameRecord]) -> Path:
    rows = ['stamp_ns,truth_x_m,truth_y_m,truth_yaw_deg,gnss_x_m,gnss_y_m,est_x_m,est_y_m,'
            'est_yaw_deg,error_m,gnss_error_m,cov_xx_m2,cov_xy_m2,cov_yy_m2,latency_ms']
    for r in records:
        est = r.estimate_xy_m or (math.nan, math.nan)
        cov = np.full((2, 2), np.nan) if r.estimate_cov_xy_m2 is None else r.estimate_cov_xy_m2
        yaw = math.nan if r.estimate_yaw_rad is None else math.degrees(r.estimate_yaw_rad)
        values = [*r.truth_xy_m, math.degrees(r.truth_yaw_rad), *r.gnss_xy_m, *est, yaw,
                  math.dist(est, r.truth_xy_m), math.dist(r.gnss_xy_m, r.truth_xy_m),
                  cov[0, 0], cov[0, 1], cov[1, 1],
                  math.nan if r.latency_s is None else r.latency_s * 1e3]
        rows.append(f'{r.stamp_ns},' + ','.join(f'{v:.6f}' for v in values))
    path.write_text('\n'.join(rows) + '\n')
    return path


def replay(config: ReplayConfig) -> ReplayResult:
    """Run one replay (module doc) and write its report; returns the report and records."""
    if config.max_frames is not None and config.max_frames < 1:
        raise ValueError(f'max_frames must be >= 1, got {config.max_frames}')
    if config.rate is not None and not config.rate > 0:
        raise ValueError(f'rate must be > 0 (1.0 = real time), got {config.rate}')
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bag = bp.open_drive_bag(config.bag)
    values = node_parameters(bag, config)
    outcome = (run_offline(bag, values, config) if config.offline
               else run_dds(bag, values, config, out_dir))
    if not outcome.image_stamps:
        raise RuntimeError(f'{config.bag}: no image was played')
    datum = LocalEnu(values['datum.latitude_deg'], values['datum.longitude_deg'],
                     values['datum.altitude_m'])
    records = frame_records(bag, outcome, datum)
    metrics = evaluate_trajectory(records)
    single_records = frame_records(bag, outcome, datum, outcome.single_outputs)
    single = (evaluate_trajectory(single_records).to_dict() if outcome.single_outputs
              else None)
    pictures = {}
    if config.plots:
        arrays = stack_records(records)
        satellite, crop = _map_background(values, datum, arrays)
        pictures = write_report_plots(out_dir, arrays, satellite, crop,
                                      single=stack_records(single_records)
                                      if outcome.single_outputs else None)
    counts = outcome.counts
    processed = counts['outputs'] + (counts['low_confidence']
                                     if values.get('low_confidence_policy') != 'inflate' else 0)
    report = _json_safe({
        'format': 'geodistill_replay', 'format_version': 1,
        'mode': 'offline' if config.offline else 'dds',
        'pacing': ('every image, one at a time' if config.offline else
                   'wait for each output' if config.rate is None else f'rate {config.rate:g}'),
        'bag': str(Path(config.bag).resolve()), 'map': values['map_source.path'],
        'model': values['location_checkpoint'] or 'embedded default',
        'device': values['device'],
        'drive': {k: bag.sidecar.get(k) for k in ('date', 'drive', 'frame_count', 'seed',
                                                  'noise', 'datum', 'camera_model')},
        'heading': bp.HeadingFeed(config.heading, config.heading_noise_deg, config.seed,
                                  config.gnss_velocity_noise_mps).describe(),
        'frames': dict(counts, processed=processed),
        'timing': {'wall_s': outcome.wall_s,
                   'throughput_hz': processed / outcome.wall_s if outcome.wall_s > 0 else None,
                   'latency_end_to_end_ms': _percentiles_ms(
                       o.latency_s for o in outcome.outputs.values()),
                   'node_latency_ms': outcome.node_latency_ms,
                   'fusion_ms': {'p50': outcome.node_latency_ms.get('fusion_p50'),
                                 'p95': outcome.node_latency_ms.get('fusion_p95')}},
        'metrics': metrics.to_dict(),
        'metrics_single_frame': single,
        'comparison': side_by_side(metrics.to_dict(), single, records),
        'fusion': outcome.fusion,
        'node_parameters': values, 'notes': outcome.notes,
        'pictures': {k: str(p) for k, p in pictures.items()}})
    report_path = out_dir / 'report.json'
    report_path.write_text(json.dumps(report, indent=2) + '\n')
    write_frames_csv(out_dir / 'frames.csv', records)
    if outcome.single_outputs:
        write_frames_csv(out_dir / 'frames_single.csv', single_records)
    return ReplayResult(report, records, out_dir, report_path, pictures)


def summary_lines(report: dict) -> list[str]:
    """A few lines: GNSS input against single-frame and published error, frames, rate."""
    m, f, t = report['metrics'], report['frames'], report['timing']
    single = report.get('metrics_single_frame')

    def err(block):
        return (f"mean {_num(block.get('mean'))} m, median {_num(block.get('median'))} m, "
                f"R@1/3/5 m {_pct(block.get('recall_1m'))}/{_pct(block.get('recall_3m'))}/"
                f"{_pct(block.get('recall_5m'))}")

    def nees(metrics):
        c = metrics['consistency']
        return (f", NEES {_num(c.get('nees_mean'))}, inside 95% "
                f"{_pct(c.get('inside_2sigma'))}")
    lines = [f"GNSS input : {err(m['gnss']['position'])}"]
    if single is not None:
        lines.append(f"single     : {err(single['position'])}{nees(single)}")
    return lines + [
            f"published  : {err(m['position'])}{nees(m)}",
            f"frames     : {f['images']} played, {f['outputs']} localized, "
            f"{sum(f['rejected'].values())} rejected, {f['dropped_busy']} dropped",
            f"rate       : {_num(t['throughput_hz'], 1)} Hz, latency p50/p95 "
            f"{_num(t['latency_end_to_end_ms']['p50'], 0)}/"
            f"{_num(t['latency_end_to_end_ms']['p95'], 0)} ms"]


def _num(value, digits: int = 2) -> str:
    return 'n/a' if value is None else f'{value:.{digits}f}'


def _pct(value) -> str:
    return 'n/a' if value is None else f'{100.0 * value:.0f}%'


def parse_node_param(text: str) -> tuple[str, object]:
    """'fusion.camera_weight:=0.5' -> ('fusion.camera_weight', 0.5): a node parameter
    override as on the ros2 command line (the value read as YAML)."""
    name, sep, value = text.partition(':=')
    if not sep or not name:
        raise argparse.ArgumentTypeError(f'expected NAME:=VALUE, got {text!r}')
    return name, yaml.safe_load(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='geodistill-replay', description=(
        'Replay a drive bag (geodistill-kitti2bag) through the localizer node over DDS and '
        'score it against ground truth: report.json and pictures in --out.'))
    p.add_argument('bag', type=Path, help='bag folder with geodistill_drive.json')
    p.add_argument('--map', type=Path, required=True, dest='map_path',
                   help="the drive's satellite GeoTIFF")
    p.add_argument('--out', type=Path, default=Path('outputs/replay'), help='report folder')
    p.add_argument('--checkpoint', default='',
                   help="location checkpoint folder ('' = the embedded default model)")
    p.add_argument('--device', choices=('cpu', 'cuda', 'auto'), default='cpu')
    p.add_argument('--offline', action='store_true',
                   help='no DDS: the node pipeline in this process, every image processed')
    p.add_argument('--rate', type=float, default=None,
                   help='play at this multiple of real time (default: as fast as the node '
                   'keeps up, waiting for each output)')
    p.add_argument('--frames', type=int, default=None, help='replay only the first N images')
    p.add_argument('--heading', choices=bp.HEADING_SOURCES, default='oxts',
                   help="heading input: the bag's OXTS attitude as heading_prior (an INS), "
                   "gnss_velocity (a GNSS receiver's east/north velocity from the ground "
                   "truth with --gnss-velocity-noise-mps, the node's course-over-ground "
                   'prior) or none (the node uses the fix track)')
    p.add_argument('--gnss-velocity-noise-mps', type=float, default=0.1,
                   help='with --heading gnss_velocity: per-axis noise (1 sigma, seeded)')
    p.add_argument('--heading-noise-deg', type=float, default=0.0,
                   help='Gaussian noise added to the OXTS heading (1 sigma, seeded)')
    p.add_argument('--seed', type=int, default=0, help='seed of the heading noise')
    p.add_argument('-p', '--param', type=parse_node_param, action='append', default=[],
                   metavar='NAME:=VALUE', help='extra node parameter (YAML value)')
    p.add_argument('--isolated', action='store_true',
                   help='own random ROS_DOMAIN_ID, localhost-only discovery')
    p.add_argument('--no-dds-profile', action='store_true',
                   help='do not give Fast DDS the large shared-memory profile (raw images '
                   'above 512 KiB then travel as UDP fragments and may be lost)')
    p.add_argument('--frame-timeout-s', type=float, default=60.0)
    p.add_argument('--no-plots', action='store_true')
    p.add_argument('--log-level', default='INFO', choices=('DEBUG', 'INFO', 'WARNING'))
    return p


def main(args=None) -> int:
    ns = build_parser().parse_args(args)
    logging.basicConfig(level=ns.log_level, format='%(levelname)s %(name)s: %(message)s')
    config = ReplayConfig(bag=ns.bag, map_path=ns.map_path, out_dir=ns.out,
                          checkpoint=ns.checkpoint, device=ns.device, offline=ns.offline,
                          rate=ns.rate, max_frames=ns.frames, heading=ns.heading,
                          heading_noise_deg=ns.heading_noise_deg, seed=ns.seed,
                          gnss_velocity_noise_mps=ns.gnss_velocity_noise_mps,
                          params=dict(ns.param), frame_timeout_s=ns.frame_timeout_s,
                          isolated=ns.isolated, large_message_profile=not ns.no_dds_profile,
                          plots=not ns.no_plots)
    try:
        result = replay(config)
    except (FileNotFoundError, ValueError, RuntimeError, TimeoutError) as err:
        LOG.error('%s', err)
        return 1
    for line in summary_lines(result.report):
        LOG.info(line)
    LOG.info('report: %s', result.report_path)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
