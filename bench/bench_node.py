"""Benchmark the localizer node end to end over DDS: per-stage latency and rates, as JSON.

    .venv/bin/python bench/bench_node.py [--out bench/results/node.json] [--seconds 15]

A real LocalizerNode and a publisher node share one isolated rclpy context (the node tests'
NodeHarness; random ROS_DOMAIN_ID, localhost-only discovery). KITTI-size 1242x375 rgb8
images, CameraInfo and NavSatFix (a vehicle driving a 40 m circle at 8 m/s, so the yaw prior
comes from the fix track) are published over DDS; the map is a textured GeoTIFF in UTM 32N
written to a temporary folder. The model is the embedded default (Localizer.default
('pinhole')) when installed, else the same architecture (preset synthetic_kitti) with random
weights; ``model.source`` says which one ran. Per device (CPU, and CUDA when present):

- ``rate``: images at the KITTI camera rate (10 Hz): output rate vs input rate, drops;
- ``max``: images at 30 Hz: outputs per second under the drop policy (CUDA: also
  ``max_fast_input`` at 120 Hz, towards the 100 Hz GPU target).

- ``drive`` (CPU; ``--drive s1``, the default, or another bench_fusion drive; ``none``
  skips it): a synthetic KITTI drive (bench/bench_fusion.py's, generated under
  ``--drive-root`` when missing) replayed over DDS at the camera rate through the node with
  its defaults and *no heading topic*: the yaw comes from the rotation search and the yaw
  tracker, as on a vehicle without an INS. Real images let the tracker lock, so this is
  the steady-state rate; the random images above never lock it (with ``--yaw-search
  rotation`` they measure the untracked worst case). Reports output rate, drops, node and
  end-to-end latency, published yaw median and fused mean error.

Each phase also counts images lost in transport, dropped while busy, rejected (by reason),
``processing_limited_hz`` (1 / p50 of the node's stage total) and ``process_cpu_cores``
(CPU seconds of this process, all threads, per wall second; at most the core count).
Stages per processed frame (ms, p50/p95/mean): the node pipeline's own laps (decode,
pairing, crop, post_processing = pose/covariance conversion, publish) with its ``inference``
lap split by hooks on the Localizer into model_input (batching, resize, copy to device),
orientation (null: the pinhole model has none, yaw comes from the prior), location (the
location model's forward) and heatmap (heatmap -> pose, probabilities, copy to CPU).
``node_latency`` is the node's own image-callback -> published time (as in /diagnostics);
``end_to_end`` is image publish -> pose received by the subscriber (DDS both ways).
The machine may be shared: the load average is recorded at start and end.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
from pathlib import Path
import platform
import random
import subprocess
import sys
import tempfile
import time

import numpy as np
from results_json import write_json
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / 'bench' / 'results' / 'node.json'
TARGET_HZ = {'cpu': 10.0, 'cuda': 100.0}
STAGES = ('decode', 'pairing', 'crop', 'model_input', 'orientation', 'location', 'heatmap',
          'post_processing', 'publish', 'inference', 'node_total')
IMAGE_HW = (375, 1242)
K_KITTI = np.array([[721.5377, 0.0, 609.5593], [0.0, 721.5377, 172.854], [0.0, 0.0, 1.0]])
CIRCLE_RADIUS_M, SPEED_MPS = 40.0, 8.0
LOG = logging.getLogger('bench_node')


def isolate_ros() -> str:
    """Random domain, localhost-only discovery (before rclpy.init); returns the domain."""
    domain = str(random.SystemRandom().randint(1, 100))
    os.environ['ROS_DOMAIN_ID'] = domain
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ['ROS_LOCALHOST_ONLY'] = '1'  # pre-Jazzy spelling
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    return domain


def model_checkpoint(tmp: Path) -> tuple[str, dict]:
    """('' for the embedded default | a random-weight checkpoint of its architecture, info)."""
    from geodistill_core.localizer import ASSETS_DIR
    default = ASSETS_DIR / 'default_pinhole_location'
    if (default / 'config.json').is_file():
        return '', {'source': 'embedded_default', 'path': str(default)}
    from dataclasses import replace

    from geodistill_core.training.models import build_model, save_trained_model
    from geodistill_core.training.presets import preset
    config = replace(preset('synthetic_kitti', 'location').model, pretrained=False)
    torch.manual_seed(0)
    path = save_trained_model(tmp / 'random_pinhole_location', build_model(config), config,
                              {'ground_hw': [128, 512], 'satellite_hw': [192, 192]},
                              50.13 / 192, {'note': 'bench_node: random weights'})
    return str(path), {'source': 'random_weights_same_architecture', 'path': str(path),
                       'reason': f'{default} not installed'}


class StageRecorder:
    """Per-frame stage seconds: the pipeline's laps plus the split of its inference lap."""

    def __init__(self, node):
        self.frames: list[dict] = []
        self._marks: dict[str, float] = {}
        localizer = node.localizer
        cuda = getattr(localizer, 'device', torch.device('cpu')).type == 'cuda'
        self._sync = torch.cuda.synchronize if cuda else (lambda: None)
        self.has_orientation = getattr(localizer, 'orientation_model', None) is not None
        for name in ('location', 'orientation'):
            model = getattr(localizer, f'{name}_model', None)
            if model is not None:
                model.register_forward_pre_hook(self._hook(f'{name}_start'))
                model.register_forward_hook(self._hook(f'{name}_end'))
        runner = getattr(localizer, 'onnx_runner', None)
        if runner is not None:  # backend onnxruntime: time the runner as the location stage
            localizer.onnx_runner = _TimedRunner(runner, self._hook('location_start'),
                                                 self._hook('location_end'))
        localize = localizer.localize

        def timed_localize(*args, **kwargs):
            self._marks = {'start': time.perf_counter()}
            out = localize(*args, **kwargs)
            self._marks['end'] = time.perf_counter()
            return out

        localizer.localize = timed_localize
        localized = node.stats.localized

        def record(confidence, fix_age_s, low, published, latency_s, stages_s):
            localized(confidence, fix_age_s, low, published, latency_s, stages_s)
            self.frames.append(self._frame(latency_s, stages_s))

        node.stats.localized = record

    def _hook(self, key: str):
        def hook(*_):
            self._sync()
            self._marks[key] = time.perf_counter()
        return hook

    def _frame(self, latency_s: float, stages_s: dict) -> dict:
        m = self._marks
        orientation = (m['orientation_end'] - m['orientation_start']
                       if 'orientation_end' in m else None)
        if 'location_start' not in m:  # the rotation search scores through the model's
            m = {**m, 'location_start': m['start'], 'location_end': m['end']}  # parts: all
        location = m['location_end'] - m['location_start']  # of localize is 'location'
        frame = {'decode': stages_s['decode'], 'pairing': stages_s['pairing'],
                 'crop': stages_s['crop'], 'orientation': orientation, 'location': location,
                 'model_input': max(m['location_start'] - m['start'] - (orientation or 0.0),
                                    0.0),
                 'heatmap': m['end'] - m['location_end'],
                 'post_processing': stages_s['post'], 'publish': stages_s['publish'],
                 'inference': stages_s['inference'], 'node_total': sum(stages_s.values()),
                 'node_latency': latency_s, 'done_s': time.perf_counter()}
        return frame


class _TimedRunner:
    """An onnxruntime location runner whose calls mark the location stage."""

    def __init__(self, runner, start, end):
        self.runner, self.start, self.end = runner, start, end

    def __call__(self, *args, **kwargs):
        self.start()
        out = self.runner(*args, **kwargs)
        self.end()
        return out


def _ms(values) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    ms = np.asarray(values) * 1e3
    return {'p50': float(np.percentile(ms, 50)), 'p95': float(np.percentile(ms, 95)),
            'mean': float(ms.mean()), 'n': int(ms.size)}


class Drive:
    """Publishes fix + image pairs at a rate through a NodeHarness and collects poses."""

    def __init__(self, harness, recorder: StageRecorder, images: list):
        from geometry_msgs.msg import PoseWithCovarianceStamped

        from geodistill_ros.node.messages import stamp_to_ns
        from geodistill_ros.node.topics import POSE_QOS
        self.h, self.recorder, self.images = harness, recorder, images
        self.poses: list[tuple[int, float]] = []
        self.sent: dict[int, float] = {}
        self.origin_s = time.perf_counter()
        harness.tester.create_subscription(
            PoseWithCovarianceStamped, 'pose',
            lambda msg: self.poses.append((stamp_to_ns(msg.header.stamp),
                                           time.perf_counter())), POSE_QOS)

    def publish_pair(self, index: int, wait_fix: bool = False) -> int:
        from test_node_harness import STAMP_NS, en_to_latlon, fix_msg

        from geodistill_ros.node.messages import ns_to_stamp
        t = time.perf_counter() - self.origin_s
        stamp_ns = STAMP_NS + int(t * 1e9)
        angle = SPEED_MPS / CIRCLE_RADIUS_M * t
        lat, lon = en_to_latlon(CIRCLE_RADIUS_M * np.cos(angle),
                                CIRCLE_RADIUS_M * np.sin(angle))
        if wait_fix:
            self.h.send_fix(stamp_ns, lat, lon)
        else:
            self.h.fix_pub.publish(fix_msg(stamp_ns, lat, lon))
        msg = self.images[index % len(self.images)]
        msg.header.stamp = ns_to_stamp(stamp_ns)
        self.sent[stamp_ns] = time.perf_counter()
        self.h.image_pub.publish(msg)
        return stamp_ns

    def warm_up(self, frames: int) -> None:
        """A few frames processed one at a time (first-call allocations), then forgotten."""
        for i in range(frames):
            done = len(self.recorder.frames)
            self.publish_pair(i, wait_fix=True)
            self.h.spin_until(lambda d=done: len(self.recorder.frames) > d
                              and not self.h.node.busy, 60.0, 'a warm-up frame')
        self.h.spin_for(0.3)

    def phase(self, rate_hz: float, seconds: float) -> dict:
        """Publish at rate_hz for seconds, drain, and summarise what this phase produced."""
        node, stats = self.h.node, self.h.node.stats
        before = {'images': stats.received_total['image'], 'outputs': stats.totals['outputs'],
                  'dropped': stats.totals['dropped_busy'],
                  'rejected': dict(stats.rejections_total)}
        first_frame, first_pose = len(self.recorder.frames), len(self.poses)
        stamps, period = [], 1.0 / rate_hz
        start = next_s = time.perf_counter()
        cpu_start = time.process_time()
        while time.perf_counter() < start + seconds:
            now = time.perf_counter()
            if now >= next_s:
                stamps.append(self.publish_pair(len(stamps)))
                next_s = max(next_s + period, now)  # late ticks are not bunched up
            self.h.executor.spin_once(timeout_sec=min(max(next_s - time.perf_counter(), 0.0),
                                                      0.005))
        elapsed = time.perf_counter() - start
        cpu_s = time.process_time() - cpu_start
        self.h.spin_until(lambda: not node.busy, 30.0, 'the last frame')
        self.h.spin_for(0.3)
        sent = set(stamps)
        latencies = [t - self.sent[s] for s, t in self.poses[first_pose:] if s in sent]
        frames = self.recorder.frames[first_frame:]
        received = stats.received_total['image'] - before['images']
        outputs = stats.totals['outputs'] - before['outputs']
        summary = {
            'input_rate_hz': rate_hz, 'seconds': elapsed, 'images_published': len(stamps),
            'published_rate_hz': len(stamps) / elapsed, 'images_received': received,
            'lost_in_transport': len(stamps) - received,
            'processed': len(frames), 'outputs': outputs, 'poses_received': len(latencies),
            'output_rate_hz': len(latencies) / elapsed,
            'dropped_busy': stats.totals['dropped_busy'] - before['dropped'],
            'rejected': {reason: n - before['rejected'].get(reason, 0) for reason, n in
                         stats.rejections_total.items() if n > before['rejected'].get(reason, 0)},
            'process_cpu_cores': cpu_s / elapsed,
            'stages_ms': {s: _ms(f[s] for f in frames) for s in STAGES},
            'node_latency_ms': _ms(f['node_latency'] for f in frames),
            'end_to_end_ms': _ms(latencies)}
        total = summary['stages_ms']['node_total']
        summary['processing_limited_hz'] = 1e3 / total['p50'] if total else 0.0
        return summary


def _images(count: int) -> list:
    from geodistill_ros.node.messages import rgb_to_image_msg
    rng = np.random.default_rng(0)
    return [rgb_to_image_msg(rng.integers(0, 256, IMAGE_HW + (3,), dtype=np.uint8), 0,
                             'camera') for _ in range(count)]


def bench_device(device: str, tif: Path, checkpoint: str, ns) -> dict:
    from test_node_harness import NodeHarness, base_overrides
    overrides = base_overrides(tif, crop_size_m=50.13, crop_size_px=192, device=device,
                               location_checkpoint=checkpoint, backend=ns.backend,
                               yaw_search=ns.yaw_search,
                               **({} if ns.prior_range_deg is None else {
                                   'heading_source': 'fixed',
                                   'default_yaw_range_deg': ns.prior_range_deg}),
                               diagnostics_period_s=1.0,
                               warning_throttle_s=5.0)
    with NodeHarness(overrides) as h:
        recorder = StageRecorder(h.node)
        drive = Drive(h, recorder, _images(4))
        h.send_camera_info(K=K_KITTI, hw=IMAGE_HW)
        drive.warm_up(ns.warmup_frames)
        result = {'device': str(h.node.localizer.device),
                  'has_orientation_model': recorder.has_orientation,
                  'rate': drive.phase(ns.rate_hz, ns.seconds),
                  'max': drive.phase(ns.max_rate_hz, ns.max_seconds)}
        if device == 'cuda':
            result['max_fast_input'] = drive.phase(ns.cuda_max_rate_hz, ns.max_seconds)
        if h.diagnostics:
            status = h.diagnostics[-1].status[0]
            result['last_diagnostics'] = {kv.key: kv.value for kv in status.values}
    target = TARGET_HZ[device]
    best = max(result[k]['output_rate_hz'] for k in ('rate', 'max', 'max_fast_input')
               if k in result)
    result['target_hz'] = target
    result['meets_target'] = bool(max(best, result['rate']['processing_limited_hz'])
                                  >= target if device == 'cuda'
                                  else result['rate']['output_rate_hz'] >= 0.95 * target)
    return result


def drive_phase(name: str, root: Path, out_dir: Path) -> dict:
    """The node over DDS on bench_fusion's drive `name` at camera rate, no heading topic."""
    sys.path.insert(0, str(ROOT / 'bench'))
    import bench_fusion

    bag, map_path = bench_fusion.prepare(root, bench_fusion.DRIVES[name], 'pinhole', None)
    # a fresh process: Fast DDS reads its (large-message) profile once per process, and the
    # phases above already created participants with the default one
    subprocess.run([sys.executable, '-m', 'geodistill_ros.replay.evaluate', str(bag),
                    '--map', str(map_path), '--out', str(out_dir), '--rate', '1.0',
                    '--heading', 'none', '--no-plots', '--log-level', 'WARNING'],
                   check=True, cwd=ROOT)
    report = json.loads((out_dir / 'report.json').read_text())
    frames, timing = report['frames'], report['timing']
    return {'drive': name, 'bag': str(bag), 'images': frames['images'],
            'outputs': frames['outputs'], 'dropped_busy': frames['dropped_busy'],
            'output_rate_hz': timing['throughput_hz'],
            'input_rate_hz': frames['images'] / timing['wall_s'],
            'node_latency_ms': timing['node_latency_ms'],
            'end_to_end_ms': timing['latency_end_to_end_ms'],
            'published_yaw_median_deg': (report['metrics'].get('yaw') or {}).get('median'),
            'fused_mean_m': report['metrics']['position']['mean'],
            'gnss_mean_m': report['metrics']['gnss']['position']['mean']}


def run_benchmark(ns) -> dict:
    domain = isolate_ros()
    sys.path.insert(0, str(ROOT / 'test' / 'geodistill_ros' / 'node'))
    from test_node_harness import write_geotiff
    result = {'machine': {
        'cpu_count': os.cpu_count(), 'torch_threads': torch.get_num_threads(),
        'torch': torch.__version__, 'python': platform.python_version(),
        'cuda': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        'load_avg_at_start': os.getloadavg(), 'ros_domain_id': int(domain)},
        'config': {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(ns).items()
                   if k != 'out'},
        'image': {'hw': list(IMAGE_HW), 'encoding': 'rgb8', 'transport': 'raw'}}
    with tempfile.TemporaryDirectory(prefix='bench_node_') as tmp:
        tif = write_geotiff(Path(tmp) / 'map.tif', half_extent_m=120.0, res_m=0.2)
        checkpoint, result['model'] = model_checkpoint(Path(tmp))
        devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
        for device in devices:
            result[device] = bench_device(device, tif, checkpoint, ns)
        if 'cuda' not in devices:
            result['cuda'] = {'skipped': 'torch.cuda.is_available() is False'}
        if ns.drive != 'none':
            drive = drive_phase(ns.drive, ns.drive_root, Path(tmp) / 'drive')
            drive['meets_target'] = drive['output_rate_hz'] >= 0.95 * TARGET_HZ['cpu']
            result['cpu']['drive'] = drive
    result['machine']['load_avg_at_end'] = os.getloadavg()
    return result


def _line(name: str, r: dict) -> str:
    stages = ', '.join(f"{s} {v['p50']:.1f}" for s, v in r['rate']['stages_ms'].items()
                       if v and s not in ('inference', 'node_total'))
    rate, top = r['rate'], r['max']
    e2e = rate['end_to_end_ms'] or {'p50': float('nan'), 'p95': float('nan')}
    return (f"{name}: {rate['output_rate_hz']:.1f} Hz out of {rate['published_rate_hz']:.1f} "
            f"Hz in (drops {rate['dropped_busy']}), {top['output_rate_hz']:.1f} Hz at "
            f"{top['published_rate_hz']:.0f} Hz in; end-to-end p50/p95 {e2e['p50']:.0f}/"
            f"{e2e['p95']:.0f} ms; stage p50 ms: {stages}; target {r['target_hz']:g} Hz "
            f"{'met' if r['meets_target'] else 'MISSED'}")


def main(args=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='JSON output path')
    parser.add_argument('--seconds', type=float, default=15.0, help='rate phase length')
    parser.add_argument('--max-seconds', type=float, default=8.0, help='max phase length')
    parser.add_argument('--rate-hz', type=float, default=10.0, help='camera rate')
    parser.add_argument('--max-rate-hz', type=float, default=30.0)
    parser.add_argument('--cuda-max-rate-hz', type=float, default=120.0)
    parser.add_argument('--warmup-frames', type=int, default=3)
    parser.add_argument('--backend', choices=('torch', 'onnxruntime'), default='torch',
                        help='location model runtime (node parameter backend)')
    parser.add_argument('--yaw-search', default='none', choices=('none', 'auto', 'rotation'),
                        help="the node's yaw_search; 'none' (default) is what 'auto' does "
                             "with an INS heading topic; this drive has no heading topic, so "
                             "'rotation' searches every frame, 'auto' priors within "
                             "yaw_search_auto_max_range_deg")
    parser.add_argument('--prior-range-deg', type=float, default=None,
                        help='a fixed yaw prior of this half-range (default: the node\'s; '
                             'this drive has no heading topic and no fix track: +-180)')
    parser.add_argument('--drive', default='s1',
                        choices=('none', 'demo', 's1', 's2', 's3', 's4'),
                        help='bench_fusion drive replayed at camera rate without a heading '
                             "topic ('none': skip)")
    parser.add_argument('--drive-root', type=Path, default=ROOT / 'outputs' / 'bench_fusion',
                        help='where bench_fusion drives are (generated when missing)')
    ns = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    result = run_benchmark(ns)
    write_json(ns.out, result)
    for device in ('cpu', 'cuda'):
        if 'rate' in result[device]:
            LOG.info(_line(device, result[device]))
    drive = result['cpu'].get('drive')
    if drive:
        LOG.info('cpu, drive %s without a heading topic (yaw tracking): %.2f Hz out of %.2f Hz'
                 ' in (%d of %d frames, %d dropped), node latency p50/p95 %.0f/%.0f ms, yaw '
                 'median %.2f deg, fused %.2f m (GNSS %.2f m)', drive['drive'],
                 drive['output_rate_hz'], drive['input_rate_hz'], drive['outputs'],
                 drive['images'], drive['dropped_busy'], drive['node_latency_ms']['p50'],
                 drive['node_latency_ms']['p95'], drive['published_yaw_median_deg'] or math.nan,
                 drive['fused_mean_m'], drive['gnss_mean_m'])
    LOG.info('model %s; load average %s -> %s; wrote %s', result['model']['source'],
             result['machine']['load_avg_at_start'], result['machine']['load_avg_at_end'],
             ns.out)
    return ns.out


if __name__ == '__main__':
    main()
