"""Replay evaluation: a tiny KITTI drive -> bag -> the node (offline and over DDS) -> metrics.

The drive runs straight at 30 deg (north of east), 1 m per frame at 10 Hz, over the node
tests' textured GeoTIFF; OXTS stamps lead the image stamps by 4 ms, so truth and GNSS are
interpolated to each image. The model is the tiny random-weight checkpoint: the checks are
the plumbing (same frames, same outputs over DDS as offline, truth/GNSS at the right
stamps), not the accuracy.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip('rclpy')
from test_node_harness import CENTRE_LAT_DEG, CENTRE_LON_DEG, write_geotiff  # noqa: E402
from test_node_model import save_tiny_checkpoint  # noqa: E402

from geodistill_core.data.oxts import (  # noqa: E402
    OxtsRecord,
    format_kitti_timestamp,
    format_oxts_line,
)
from geodistill_core.geodesy import LocalEnu  # noqa: E402
from geodistill_ros.bags import player as bp  # noqa: E402
from geodistill_ros.bags.gnss_noise import GnssNoiseConfig, gnss_noise_enu_m  # noqa: E402
from geodistill_ros.bags.kitti2bag import convert_drive  # noqa: E402
from geodistill_ros.node.config import config_from_values  # noqa: E402
from geodistill_ros.replay.evaluate import (  # noqa: E402
    ReplayConfig,
    compare_records,
    main,
    model_crop,
    node_parameters,
    replay,
    write_params_file,
)

FRAMES = 12
YAW_RAD = math.radians(30.0)
START_EN_M = (-10.0, -5.0)  # from the map centre
T0_NS = 1317046945_000000000
OXTS_LEAD_NS = 4_000_000
IMAGE_HW = (48, 160)
P_RECT = np.array([[100.0, 0.0, 79.5, 0.0], [0.0, 100.0, 23.5, 0.0], [0.0, 0.0, 1.0, 0.0]])
NOISE = GnssNoiseConfig(sigma_m=2.0, sigma_up_m=2.0)
NOISE_SEED = 3


def make_drive(root: Path) -> Path:
    """A KITTI raw drive (official layout) over write_geotiff's map; returns drive_dir."""
    date = '2011_09_26'
    drive_dir = root / 'raw_data' / date / f'{date}_drive_0001_sync'
    for folder in ('image_02', 'oxts'):
        (drive_dir / folder / 'data').mkdir(parents=True)
    h, w = IMAGE_HW
    (root / 'raw_data' / date / 'calib_cam_to_cam.txt').write_text(
        f'S_rect_02: {w:.6e} {h:.6e}\nP_rect_02: '
        + ' '.join(f'{v:.6e}' for v in P_RECT.ravel()) + '\n')
    enu = LocalEnu(CENTRE_LAT_DEG, CENTRE_LON_DEG, 110.0)
    rng = np.random.default_rng(0)
    c, s = math.cos(YAW_RAD), math.sin(YAW_RAD)
    for k in range(FRAMES):
        lat, lon, alt = (float(v) for v in enu.to_geodetic(START_EN_M[0] + k * c,
                                                          START_EN_M[1] + k * s, 0.0))
        name = f'{k:010d}'
        cv2.imwrite(str(drive_dir / 'image_02' / 'data' / f'{name}.png'),
                    rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        record = OxtsRecord(lat, lon, alt, 0.0, 0.0, YAW_RAD, 10 * s, 10 * c, 10.0, 0.0, 0.0,
                            0.0, 0.0, 9.8, 0.0, 0.0, 9.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05,
                            0.02, 4, 10, 5, 5, 6)
        (drive_dir / 'oxts' / 'data' / f'{name}.txt').write_text(format_oxts_line(record) + '\n')
    for folder, lead in (('image_02', 0), ('oxts', OXTS_LEAD_NS)):
        (drive_dir / folder / 'timestamps.txt').write_text(''.join(
            format_kitti_timestamp(T0_NS - lead + k * 100_000_000) + '\n'
            for k in range(FRAMES)))
    return drive_dir


@pytest.fixture(scope='module')
def drive(tmp_path_factory):
    root = tmp_path_factory.mktemp('replay')
    bag = convert_drive(make_drive(root), root / 'bag', noise=NOISE, seed=NOISE_SEED)
    return {'bag': bag, 'map': write_geotiff(root / 'map.tif'),
            'checkpoint': save_tiny_checkpoint(root / 'tiny_pinhole'), 'root': root}


def config(drive, out: Path, **kwargs) -> ReplayConfig:
    return ReplayConfig(bag=drive['bag'], map_path=drive['map'], out_dir=out,
                        checkpoint=str(drive['checkpoint']), **kwargs)


@pytest.fixture(scope='module')
def offline(drive):
    return replay(config(drive, drive['root'] / 'offline', offline=True))


def test_play_order_puts_each_image_after_its_inputs(drive):
    bag = bp.open_drive_bag(drive['bag'])
    events = list(bp.play_events(bag))
    stamps = [e.stamp_ns for e in events]
    assert stamps == sorted(stamps)
    images = [i for i, e in enumerate(events) if e.role == 'image']
    assert len(images) == FRAMES
    for i in images:  # camera_info of the same stamp and the fix 4 ms earlier precede it
        before = events[:i]
        assert any(e.role == 'camera_info' and e.stamp_ns == events[i].stamp_ns for e in before)
        assert any(e.role == 'fix_input' and e.stamp_ns == events[i].stamp_ns - OXTS_LEAD_NS
                   for e in before)
    short = list(bp.play_events(bag, max_frames=3))
    assert [e.role for e in short].count('image') == 3 and short[-1].role == 'image'


def test_heading_feed_is_the_oxts_yaw_plus_seeded_noise(drive):
    bag = bp.open_drive_bag(drive['bag'])
    poses = bp.read_role(bag, 'truth_pose')
    exact = [bp.HeadingFeed('oxts').yaw_for(e) for e in poses]
    assert np.allclose(exact, YAW_RAD, atol=1e-9)
    noisy = [bp.HeadingFeed('oxts', 2.0, seed=5).yaw_for(e) for e in poses]
    again = [bp.HeadingFeed('oxts', 2.0, seed=5).yaw_for(e) for e in poses]
    assert noisy == again and not np.allclose(noisy, exact)
    assert np.degrees(np.abs(np.array(noisy) - YAW_RAD)).max() < 8.0  # 4 sigma
    assert bp.HeadingFeed('none').yaw_for(poses[0]) is None


def test_heading_feed_gnss_velocity_is_the_truth_velocity_plus_seeded_noise(drive):
    bag = bp.open_drive_bag(drive['bag'])
    poses = bp.read_role(bag, 'truth_pose')
    feed = bp.HeadingFeed('gnss_velocity', velocity_noise_mps=1e-4)
    samples = [feed.velocity_for(e) for e in poses]
    assert samples[0] is None and all(s is not None for s in samples[1:])
    assert all(feed.yaw_for(e) is None for e in poses)  # no heading_prior alongside
    for a, b, sample in zip(poses, poses[1:], samples[1:], strict=False):
        dt = (b.stamp_ns - a.stamp_ns) * 1e-9
        pa, pb = a.msg.pose.position, b.msg.pose.position
        assert sample[0] == pytest.approx((pb.x - pa.x) / dt, abs=1e-3)
        assert sample[1] == pytest.approx((pb.y - pa.y) / dt, abs=1e-3)
        assert sample[2] == 1e-4
    noisy = [bp.HeadingFeed('gnss_velocity', seed=3).velocity_for(e) for e in poses[:2]]
    again = [bp.HeadingFeed('gnss_velocity', seed=3).velocity_for(e) for e in poses[:2]]
    assert noisy == again and noisy[1] != samples[1]
    with pytest.raises(ValueError, match='velocity noise'):
        bp.HeadingFeed('gnss_velocity', velocity_noise_mps=0.0)


def test_node_parameters_come_from_the_sidecar_and_the_checkpoint(drive, tmp_path):
    bag = bp.open_drive_bag(drive['bag'])
    values = node_parameters(bag, config(drive, tmp_path, params={'max_fix_age_s': 1}))
    datum = bag.sidecar['datum']
    assert values['datum.latitude_deg'] == datum['lat_deg']
    assert values['camera_offset.x_m'] == pytest.approx(1.08)
    assert values['camera_offset.y_m'] == pytest.approx(-0.26)
    # tiny checkpoint: 64 px at 0.5 m/px -> 32 m crops, cut at 128 px
    assert (values['crop_size_m'], values['crop_size_px']) == (32.0, 128)
    assert values['max_fix_age_s'] == 1.0 and isinstance(values['max_fix_age_s'], float)
    node_config = config_from_values(values)  # valid for the node as is
    assert node_config.datum.lat_deg == datum['lat_deg']
    tree = yaml.safe_load(write_params_file(values, tmp_path / 'p.yaml').read_text())
    params = tree['/**']['ros__parameters']
    assert params['datum']['longitude_deg'] == datum['lon_deg']
    assert params['map_source']['path'] == str(Path(drive['map']).resolve())


def test_crop_of_a_kitti_trained_checkpoint_is_the_readers_crop(tmp_path):
    """Trainer checkpoints record no meters_per_px: the KITTI reader's crop stands in."""
    from geodistill_core.data.kitti import KITTI_SATMAP_METERS_PER_PX
    record = {'input_sizes': {'ground_hw': [64, 256], 'satellite_hw': [192, 192]},
              'meters_per_px': None,
              'training_config': {'data': {'dataset': 'kitti',
                                           'reader_options': {'sat_crop_px': 256}}}}
    (tmp_path / 'config.json').write_text(json.dumps(record))
    size_m, size_px = model_crop(str(tmp_path), 'pinhole')
    assert size_px == 256 and size_m == pytest.approx(256 * KITTI_SATMAP_METERS_PER_PX)
    assert size_m == pytest.approx(50.13, abs=0.01)
    record['training_config']['data'] = {'dataset': 'vigor'}
    (tmp_path / 'config.json').write_text(json.dumps(record))
    assert model_crop(str(tmp_path), 'pinhole') is None  # node defaults then
    assert model_crop(str(tmp_path / 'missing'), 'pinhole') is None


def test_offline_replay_scores_every_frame_at_its_stamp(drive, offline):
    records, report = offline.records, offline.report
    assert len(records) == FRAMES and report['frames']['outputs'] == FRAMES
    assert report['frames']['rejected'] == {} and report['metrics']['coverage'] == 1.0
    c, s = math.cos(YAW_RAD), math.sin(YAW_RAD)
    frac = OXTS_LEAD_NS / 100_000_000  # each image is 4 % of a frame after its OXTS sample
    for k, r in enumerate(records[:-1]):  # the last image is past the last OXTS sample
        assert r.stamp_ns == T0_NS + k * 100_000_000
        assert np.allclose(r.truth_xy_m, ((k + frac) * c, (k + frac) * s), atol=1e-3)
        assert r.truth_yaw_rad == pytest.approx(YAW_RAD, abs=1e-9)
    # GNSS input = truth + the seeded noise of kitti2bag (interpolated the same way)
    oxts_ns = [T0_NS - OXTS_LEAD_NS + k * 100_000_000 for k in range(FRAMES)]
    noise = gnss_noise_enu_m(oxts_ns, NOISE, NOISE_SEED)[:, :2]
    expected = noise[:-1] + frac * (noise[1:] - noise[:-1])
    gnss_err = np.array([np.subtract(r.gnss_xy_m, r.truth_xy_m) for r in records[:-1]])
    assert np.allclose(gnss_err, expected, atol=2e-3)
    est_err = [math.dist(r.estimate_xy_m, r.truth_xy_m) for r in records]
    assert report['metrics']['position']['mean'] == pytest.approx(np.mean(est_err))
    # yaw: the model has no orientation estimator, the pose carries the OXTS heading prior
    assert report['metrics']['yaw']['mean'] == pytest.approx(0.0, abs=1e-3)
    saved = json.loads(offline.report_path.read_text())
    assert saved['metrics']['frames'] == FRAMES and saved['mode'] == 'offline'
    lines = (offline.out_dir / 'frames.csv').read_text().splitlines()
    assert len(lines) == FRAMES + 1
    # pose_single, frame by frame: the same columns, scored as metrics_single_frame is
    single = np.genfromtxt(offline.out_dir / 'frames_single.csv', delimiter=',', names=True)
    assert single.size == FRAMES
    assert np.mean(single['error_m']) == pytest.approx(
        saved['metrics_single_frame']['position']['mean'], rel=1e-5)
    for name in ('trajectory', 'error_over_time', 'error_cdf'):
        assert Path(saved['pictures'][name]).stat().st_size > 10_000


def test_offline_replay_is_deterministic(drive, offline, tmp_path):
    again = replay(config(drive, tmp_path, offline=True, plots=False))
    diff = compare_records(offline.records, again.records)
    assert diff['common'] == FRAMES and diff['max_position_difference_m'] == 0.0


def test_cli_offline_and_bad_input(drive, tmp_path):
    args = [str(drive['bag']), '--map', str(drive['map']), '--checkpoint',
            str(drive['checkpoint']), '--offline', '--frames', '4', '--no-plots']
    assert main(args + ['--out', str(tmp_path / 'cli')]) == 0
    report = json.loads((tmp_path / 'cli' / 'report.json').read_text())
    assert report['frames']['images'] == 4
    assert main([str(tmp_path / 'no_bag'), '--map', str(drive['map']), '--offline']) == 1


@pytest.mark.ros
@pytest.mark.slow
def test_dds_replay_through_the_node_process_matches_offline(ros_isolation, drive, offline,
                                                              tmp_path):
    dds = replay(config(drive, tmp_path / 'dds'))
    frames = dds.report['frames']
    assert frames['images'] == FRAMES and frames['outputs'] == FRAMES, frames
    assert frames['node_images_received'] == FRAMES and frames['dropped_busy'] == 0
    diff = compare_records(offline.records, dds.records)
    assert diff['common'] == FRAMES
    # the single-frame poses are the same computation: identical
    single_dds, single_off = dds.report['metrics_single_frame'], \
        offline.report['metrics_single_frame']
    for block in ('position', 'lateral', 'longitudinal'):
        for key in ('mean', 'median', 'recall_5m'):
            assert single_dds[block][key] == pytest.approx(single_off[block][key], abs=1e-6)
    assert single_dds['consistency']['nees_mean'] == pytest.approx(
        single_off['consistency']['nees_mean'], rel=1e-6)
    # the filter sees fixes, odometry and frames in the order DDS delivers them (no order
    # across topics; late fixes are carried forward by the odometry): close, not identical
    assert diff['max_yaw_difference_rad'] < 1e-6
    assert dds.report['metrics']['position']['mean'] == pytest.approx(
        offline.report['metrics']['position']['mean'], abs=0.5)
    timing = dds.report['timing']
    assert timing['throughput_hz'] > 0 and timing['latency_end_to_end_ms']['p50'] > 0
    assert 'ready:' in (tmp_path / 'dds' / 'node.log').read_text()
    # at a fixed rate the node takes what it can; every image it got is accounted for
    timed = replay(config(drive, tmp_path / 'rate', rate=2.0, plots=False))
    f = timed.report['frames']
    assert f['images'] == FRAMES and f['outputs'] >= 1
    assert f['outputs'] + f['dropped_busy'] + sum(f['rejected'].values()) == \
        f['node_images_received']
