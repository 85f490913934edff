"""`geodistill-demo` end to end on a shortened drive: data, bag, node over DDS, table, report.

Uses the embedded default model when it is installed, else a tiny random-weight checkpoint
(--checkpoint): the checks are that every stage runs and the numbers are finite, not the
accuracy.
"""
import json
import math
from pathlib import Path
import subprocess
import sys

import pytest

pytest.importorskip('rclpy')

pytestmark = [pytest.mark.ros, pytest.mark.slow]
FRAMES = 20


def tiny_checkpoint(path: Path) -> Path:
    import torch

    from geodistill_core.training.config import ModelConfig
    from geodistill_core.training.models import build_model, save_trained_model
    config = ModelConfig(kind='correlation', ground_backbone='vgg16_unet_tiny',
                         satellite_backbone='vgg16_unet_tiny', pretrained=False,
                         camera_model='pinhole')
    torch.manual_seed(0)
    return save_trained_model(path, build_model(config), config,
                              {'ground_hw': [32, 128], 'satellite_hw': [64, 64]}, 0.5,
                              {'note': 'demo test, random weights'})


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_demo_runs_end_to_end_on_a_short_drive(ros_isolation, tmp_path):
    from geodistill_ros.replay.demo import default_model_path
    args = [sys.executable, '-m', 'geodistill_ros.replay.demo', '--frames', str(FRAMES),
            '--out', str(tmp_path / 'demo')]
    if not (default_model_path() / 'config.json').is_file():
        args += ['--checkpoint', str(tiny_checkpoint(tmp_path / 'tiny'))]
    proc = subprocess.run(args, env=ros_isolation, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = proc.stdout
    for row in ('GNSS input', 'single frame', 'fused (pose)', 'mean error', 'median error',
                'R@1m', 'R@3m', 'R@5m', 'lateral', 'longitudinal', 'NEES mean',
                'inside 95% ellipse', 'independent frames (N_eff)', 'yaw error', 'rate',
                'latency', 'report', 'pictures'):
        assert row in table, table
    assert f'frames     {FRAMES} played' in table, table
    report_dir = tmp_path / 'demo' / f'report_{FRAMES}frames'
    assert str(report_dir / 'report.json') in table
    report = json.loads((report_dir / 'report.json').read_text())
    metrics, frames = report['metrics'], report['frames']
    assert metrics['frames'] == FRAMES and frames['node_images_received'] == FRAMES
    # paced: every image went through the node once, nothing dropped or lost
    assert frames['processed'] + sum(frames['rejected'].values()) == FRAMES, frames
    assert frames['dropped_busy'] == frames['not_received'] == frames['timeouts'] == 0
    assert frames['outputs'] >= FRAMES // 2, frames
    for block in (metrics['position'], metrics['gnss_on_output_frames']['position']):
        assert all(_finite(block[k]) for k in ('mean', 'median', 'recall_1m', 'recall_5m'))
    # the published pose is the filter's: on this short drive it beats both its GNSS input
    # and the frames alone (the embedded default model; a tiny random model is not judged)
    comparison = report['comparison']
    if default_model_path().joinpath('config.json').is_file():
        fused = comparison['published']['mean']
        assert fused < comparison['gnss_input']['mean'], comparison
        assert fused < comparison['single_frame']['mean'], comparison
    assert _finite(metrics['lateral']['mean']) and _finite(metrics['yaw']['mean'])
    assert _finite(report['timing']['throughput_hz'])
    assert _finite(report['timing']['latency_end_to_end_ms']['p95'])
    for path in report['pictures'].values():
        assert Path(path).stat().st_size > 10_000
    # the same drive again: data and bag are reused, the numbers repeat
    again = subprocess.run(args, env=ros_isolation, capture_output=True, text=True,
                           timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'nothing to do' in again.stderr
    repeat = json.loads((report_dir / 'report.json').read_text())['metrics']
    assert repeat['position'] == metrics['position']


def test_panorama_demo_beats_gnss_on_a_short_drive(ros_isolation, tmp_path):
    """`make demo DEMO_ARGS=--panorama` shortened: the 360-camera drive through the real
    node with the embedded default panorama model, which must beat its GNSS input."""
    from geodistill_ros.replay.demo import panorama_missing
    if panorama_missing():
        pytest.fail(f'panorama demo pieces missing: {panorama_missing()}')
    frames = 12
    proc = subprocess.run([sys.executable, '-m', 'geodistill_ros.replay.demo', '--panorama',
                           '--frames', str(frames), '--out', str(tmp_path / 'demo')],
                          env=ros_isolation, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'synthetic panorama' in proc.stdout and f'frames     {frames} played' in proc.stdout
    report_dir = tmp_path / 'demo' / f'report_panorama_{frames}frames'
    report = json.loads((report_dir / 'report.json').read_text())
    metrics = report['metrics']
    assert report['frames']['outputs'] >= frames // 2, report['frames']
    gnss = metrics['gnss_on_output_frames']['position']['median']
    assert metrics['position']['median'] < gnss, (metrics['position'], gnss)


def _panorama_checkpoint(path: Path, meters_per_px) -> Path:
    path.mkdir(parents=True)
    (path / 'config.json').write_text(json.dumps({
        'input_sizes': {'ground_hw': [128, 256], 'satellite_hw': [256, 256]},
        'meters_per_px': meters_per_px, 'training_config': {'data': {'dataset': 'vigor'}}}))
    return path


def test_panorama_demo_names_what_is_missing(monkeypatch, tmp_path, caplog):
    import geodistill_core.localizer as localizer
    from geodistill_ros.replay import demo
    assets = tmp_path / 'assets'
    monkeypatch.setattr(localizer, 'ASSETS_DIR', assets)
    missing = demo.panorama_missing()
    assert len(missing) == 1 and 'embedded default panorama model' in missing[0]
    assert str(assets / 'default_panorama_location' / 'config.json') in missing[0]
    assert demo.main(['--panorama', '--out', str(tmp_path / 'out')]) == 2
    assert 'panorama demo cannot run' in caplog.text
    assert 'default_panorama_location' in caplog.text and '--checkpoint' in caplog.text
    assert not (tmp_path / 'out').exists()  # nothing generated
    # a model whose satellite resolution is unknown is missing a piece too
    unknown = _panorama_checkpoint(tmp_path / 'unknown', None)
    assert 'satellite resolution' in demo.panorama_missing(str(unknown))[0]
    assert demo.panorama_missing(str(_panorama_checkpoint(tmp_path / 'ok', 0.27))) == []
