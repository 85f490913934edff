"""KITTI raw drive -> rosbag2 -> read back: topics, stamps (UTC, ns), pixels, fixes, noise."""
from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import replace
import json
import math
from pathlib import Path
import time

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.image import message_to_cvimage
from rosbags.interfaces import QosDurability, QosReliability

from geodistill_core.data.oxts import OxtsRecord, format_kitti_timestamp, format_oxts_line
from geodistill_core.geodesy import LocalEnu
from geodistill_ros.bags.gnss_noise import GnssNoiseConfig, gnss_noise_enu_m
from geodistill_ros.bags.kitti2bag import SIDECAR_NAME, TOPICS, convert_drive, main, parse_datum
from geodistill_ros.bags.kitti_drive import quaternion_xyzw_from_rpy
from geodistill_ros.bags.messages import TYPESTORE
from geodistill_ros.bags.odometry_noise import OdometryNoiseConfig, odometry_noise

FIRST_STAMP = '2011-09-26 13:02:25.964389445'
FIRST_STAMP_NS = calendar.timegm((2011, 9, 26, 13, 2, 25)) * 10**9 + 964389445
P_RECT_02 = np.array([[721.5377, 0.0, 609.5593, 44.85728],
                      [0.0, 721.5377, 172.854, 0.2163791],
                      [0.0, 0.0, 1.0, 0.002745884]])
LAT0, LON0, ALT0 = 49.011212804408, 8.4228850417969, 112.83492279053
YAW_NE = math.pi / 4  # driving north-east
STEP_M = 1.0


def make_drive(root: Path, n: int, hw=(12, 20), seed=0) -> dict:
    """A KITTI raw drive in the official layout: n frames moving north-east at 1 m/frame."""
    date = '2011-09-26'
    drive_dir = root / 'raw_data' / date / f'{date}_drive_0001_sync'
    (drive_dir / 'image_02' / 'data').mkdir(parents=True)
    (drive_dir / 'oxts' / 'data').mkdir(parents=True)
    h, w = hw
    (root / 'raw_data' / date / 'calib_cam_to_cam.txt').write_text(
        'calib_time: 09-Jan-2012 13:57:47\n'
        f'S_rect_02: {w:.6e} {h:.6e}\n'
        'P_rect_02: ' + ' '.join(f'{v:.6e}' for v in P_RECT_02.ravel()) + '\n')
    enu = LocalEnu(LAT0, LON0, ALT0)
    rng = np.random.default_rng(seed)
    images, records, image_ns, oxts_ns = [], [], [], []
    for k in range(n):
        yy, xx = np.mgrid[0:h, 0:w]
        smooth = np.dstack([xx * 200 // w, yy * 200 // h, np.full_like(xx, 40 * k % 250)])
        rgb = (smooth + rng.integers(0, 6, (h, w, 3))).astype(np.uint8)
        name = f'{k:010d}'
        cv2.imwrite(str(drive_dir / 'image_02' / 'data' / f'{name}.png'),
                    cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        d = k * STEP_M
        lat, lon, alt = (float(v) for v in enu.to_geodetic(d * math.cos(YAW_NE),
                                                          d * math.sin(YAW_NE), 0.1 * k))
        record = OxtsRecord(lat, lon, alt, 0.01, -0.02, YAW_NE, 7.07, 7.07, 10.0, 0.0, 0.0,
                            0.0, 0.0, 9.8, 0.0, 0.0, 9.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                            0.05 + 0.01 * k, 0.02, 4, 10, 5, 5, 6)
        (drive_dir / 'oxts' / 'data' / f'{name}.txt').write_text(format_oxts_line(record) + '\n')
        images.append(rgb)
        records.append(record)
        oxts_ns.append(FIRST_STAMP_NS - 4_321_987 + k * 103_612_345)
        image_ns.append(FIRST_STAMP_NS + k * 103_612_347)
    for folder, stamps in (('image_02', image_ns), ('oxts', oxts_ns)):
        (drive_dir / folder / 'timestamps.txt').write_text(
            ''.join(format_kitti_timestamp(s) + '\n' for s in stamps))
    return {'drive_dir': drive_dir, 'images': images, 'records': records,
            'image_ns': image_ns, 'oxts_ns': oxts_ns}


def read_bag(path: Path) -> dict:
    """topic -> list of (bag time ns, message); also types, qos and storage."""
    messages = defaultdict(list)
    with AnyReader([path], default_typestore=TYPESTORE) as reader:
        for conn, t_ns, raw in reader.messages():
            messages[conn.topic].append((t_ns, reader.deserialize(raw, conn.msgtype)))
        types = {c.topic: c.msgtype for c in reader.connections}
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    return {'messages': messages, 'types': types, 'qos': qos}


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def rotate(q_xyzw, v):
    x, y, z, w = q_xyzw
    u = np.array([x, y, z])
    v = np.asarray(v, float)
    return v + 2.0 * np.cross(u, np.cross(u, v) + w * v)


@pytest.fixture(scope='module')
def drive5(tmp_path_factory):
    return make_drive(tmp_path_factory.mktemp('kitti'), 5)


@pytest.fixture(scope='module')
def bag5(drive5, tmp_path_factory):
    out = tmp_path_factory.mktemp('bags') / 'drive5'
    convert_drive(drive5['drive_dir'], out, seed=7)
    return read_bag(out), out


@pytest.fixture
def other_tz(monkeypatch):
    monkeypatch.setenv('TZ', 'America/Los_Angeles')
    time.tzset()
    assert time.timezone != 0
    yield
    monkeypatch.undo()
    time.tzset()


def test_topics_types_counts(bag5):
    bag, _ = bag5
    assert bag['types'] == {
        TOPICS['image']: 'sensor_msgs/msg/Image',
        TOPICS['camera_info']: 'sensor_msgs/msg/CameraInfo',
        TOPICS['fix']: 'sensor_msgs/msg/NavSatFix',
        TOPICS['fix_noisy']: 'sensor_msgs/msg/NavSatFix',
        TOPICS['tf_static']: 'tf2_msgs/msg/TFMessage',
        TOPICS['ground_truth_pose']: 'geometry_msgs/msg/PoseStamped',
        TOPICS['twist']: 'geometry_msgs/msg/TwistWithCovarianceStamped',
    }
    assert '/clock' not in bag['types']
    counts = {t: len(m) for t, m in bag['messages'].items()}
    assert counts.pop(TOPICS['tf_static']) == 1
    assert set(counts.values()) == {5}


def test_stamps_are_utc_to_the_nanosecond_in_any_time_zone(drive5, tmp_path, other_tz):
    out = convert_drive(drive5['drive_dir'], tmp_path / 'bag')
    bag = read_bag(out)
    assert drive5['image_ns'][0] == FIRST_STAMP_NS
    assert (drive5['drive_dir'] / 'image_02' / 'timestamps.txt').read_text().startswith(
        FIRST_STAMP + '\n')
    for topic, want in ((TOPICS['image'], drive5['image_ns']),
                        (TOPICS['camera_info'], drive5['image_ns']),
                        (TOPICS['fix'], drive5['oxts_ns']),
                        (TOPICS['fix_noisy'], drive5['oxts_ns']),
                        (TOPICS['ground_truth_pose'], drive5['oxts_ns'])):
        got = bag['messages'][topic]
        assert [stamp_ns(m) for _, m in got] == want, topic
        assert [t for t, _ in got] == want, topic  # bag log time = header stamp
    (t_tf, tf), = bag['messages'][TOPICS['tf_static']]
    assert t_tf == min(drive5['image_ns'][0], drive5['oxts_ns'][0])


def test_images_and_camera_info_equal_the_drive(drive5, bag5):
    bag, _ = bag5
    for (_, msg), rgb in zip(bag['messages'][TOPICS['image']], drive5['images'], strict=True):
        assert (msg.encoding, msg.height, msg.width, msg.step) == ('rgb8', 12, 20, 60)
        assert msg.header.frame_id == 'camera_color_left'
        np.testing.assert_array_equal(np.asarray(msg.data).reshape(12, 20, 3), rgb)
        np.testing.assert_array_equal(message_to_cvimage(msg, 'rgb8'), rgb)
    for _, info in bag['messages'][TOPICS['camera_info']]:
        np.testing.assert_array_equal(np.asarray(info.p).reshape(3, 4), P_RECT_02)
        np.testing.assert_array_equal(np.asarray(info.k).reshape(3, 3), P_RECT_02[:, :3])
        np.testing.assert_array_equal(np.asarray(info.r).reshape(3, 3), np.eye(3))
        assert len(info.d) == 0 and (info.height, info.width) == (12, 20)


def test_ground_truth_fix_equals_oxts(drive5, bag5):
    bag, _ = bag5
    for (_, fix), rec in zip(bag['messages'][TOPICS['fix']], drive5['records'], strict=True):
        assert (fix.latitude, fix.longitude, fix.altitude) == (rec.lat, rec.lon, rec.alt)
        np.testing.assert_allclose(np.asarray(fix.position_covariance).reshape(3, 3),
                                   np.eye(3) * rec.pos_accuracy ** 2, rtol=1e-12)
        assert fix.position_covariance_type == 2 and fix.status.status == 0
        assert fix.header.frame_id == 'gps'


def test_twist_is_the_oxts_velocity_plus_seeded_noise_with_its_covariance(drive5, bag5):
    bag, _ = bag5
    msgs = bag['messages'][TOPICS['twist']]
    config = OdometryNoiseConfig()
    noise = odometry_noise(5, config, seed=7)
    assert [t for t, _ in msgs] == drive5['oxts_ns']
    for k, (_, msg) in enumerate(msgs):
        assert msg.header.frame_id == 'base_link'  # REP-105: the twist of base_link
        record = drive5['records'][k]
        assert msg.twist.twist.linear.x == pytest.approx(record.vf + noise[k, 0], abs=1e-9)
        assert msg.twist.twist.linear.y == pytest.approx(record.vl + noise[k, 1], abs=1e-9)
        assert msg.twist.twist.angular.z == pytest.approx(record.wu + noise[k, 2], abs=1e-9)
        cov = np.asarray(msg.twist.covariance).reshape(6, 6)
        np.testing.assert_allclose(np.diag(cov)[[0, 1, 5]], [config.sigma_mps ** 2] * 2
                                   + [config.yaw_rate_sigma_rps ** 2])
    assert np.abs(noise).max() > 0  # the noise is there (and seeded: same draws here)
    # the GNSS noise of a drive does not change because odometry noise was added
    np.testing.assert_array_equal(odometry_noise(5, config, seed=7), noise)
    assert not np.allclose(odometry_noise(5, config, seed=8), noise)


def test_ground_truth_pose_is_the_fix_in_local_enu(drive5, bag5):
    bag, _ = bag5
    enu = LocalEnu(LAT0, LON0, ALT0)  # datum = the first fix
    poses = bag['messages'][TOPICS['ground_truth_pose']]
    for k, ((_, pose), rec) in enumerate(zip(poses, drive5['records'], strict=True)):
        assert pose.header.frame_id == 'map'
        p, q = pose.pose.position, pose.pose.orientation
        np.testing.assert_allclose([p.x, p.y, p.z], np.ravel(enu.to_enu(rec.lat, rec.lon,
                                                                         rec.alt)), atol=1e-6)
        # the drive heads north-east: x == y > 0, and 1 m per frame
        np.testing.assert_allclose([p.x, p.y], [k * STEP_M / math.sqrt(2)] * 2, atol=1e-6)
        forward = rotate((q.x, q.y, q.z, q.w), (1.0, 0.0, 0.0))
        assert math.atan2(forward[1], forward[0]) == pytest.approx(YAW_NE, abs=1e-9)
        want = quaternion_xyzw_from_rpy(rec.roll, rec.pitch, rec.yaw)
        np.testing.assert_allclose([q.x, q.y, q.z, q.w], want)


def test_given_datum_shifts_the_pose(drive5, tmp_path):
    datum = (LAT0 - 0.001, LON0 + 0.002, 100.0)
    bag = read_bag(convert_drive(drive5['drive_dir'], tmp_path / 'bag', datum=datum))
    enu = LocalEnu(*datum)
    (_, pose), *_ = bag['messages'][TOPICS['ground_truth_pose']]
    rec = drive5['records'][0]
    p = pose.pose.position
    np.testing.assert_allclose([p.x, p.y, p.z], np.ravel(enu.to_enu(rec.lat, rec.lon, rec.alt)),
                               atol=1e-6)
    assert p.x < -100 and p.y > 100  # the drive lies west and north of the datum
    side = json.loads((tmp_path / 'bag' / SIDECAR_NAME).read_text())
    assert side['datum'] == {'lat_deg': datum[0], 'lon_deg': datum[1], 'alt_m': datum[2],
                             'source': 'given'}


def test_tf_static_is_latched_and_the_camera_looks_forward(bag5):
    bag, _ = bag5
    (qos,) = bag['qos'][TOPICS['tf_static']]
    assert qos.durability == QosDurability.TRANSIENT_LOCAL and qos.depth == 1
    assert qos.reliability == QosReliability.RELIABLE
    assert bag['qos'][TOPICS['fix']][0].durability == QosDurability.VOLATILE
    (_, tf), = bag['messages'][TOPICS['tf_static']]
    by_child = {t.child_frame_id: t for t in tf.transforms}
    assert set(by_child) == {'gps', 'camera_color_left'}
    assert {t.header.frame_id for t in tf.transforms} == {'base_link'}
    cam = by_child['camera_color_left'].transform
    q = (cam.rotation.x, cam.rotation.y, cam.rotation.z, cam.rotation.w)
    np.testing.assert_allclose(rotate(q, (0, 0, 1)), (1, 0, 0), atol=1e-12)  # optical z fwd
    np.testing.assert_allclose(rotate(q, (1, 0, 0)), (0, -1, 0), atol=1e-12)  # x right
    np.testing.assert_allclose(rotate(q, (0, 1, 0)), (0, 0, -1), atol=1e-12)  # y down
    t = cam.translation
    np.testing.assert_allclose([t.x, t.y, t.z], [1.08, -0.26, 0.72], atol=1e-12)  # right: y<0


def noisy_enu(bag, datum=(LAT0, LON0, ALT0)):
    enu = LocalEnu(*datum)
    fixes = [m for _, m in bag['messages'][TOPICS['fix_noisy']]]
    truth = [m for _, m in bag['messages'][TOPICS['fix']]]

    def to_enu(msgs):
        return np.stack(enu.to_enu([m.latitude for m in msgs], [m.longitude for m in msgs],
                                   [m.altitude for m in msgs]), -1)
    return to_enu(fixes) - to_enu(truth), fixes


def test_noisy_fix_is_seeded(drive5, bag5, tmp_path):
    bag, _ = bag5
    again = read_bag(convert_drive(drive5['drive_dir'], tmp_path / 'same', seed=7))
    other = read_bag(convert_drive(drive5['drive_dir'], tmp_path / 'other', seed=8))
    short = read_bag(convert_drive(drive5['drive_dir'], tmp_path / 'short', seed=7,
                                   max_frames=3))

    def values(b):
        return [(m.latitude, m.longitude, m.altitude) for _, m in
                b['messages'][TOPICS['fix_noisy']]]
    assert values(again) == values(bag)
    assert values(short) == values(bag)[:3]  # max_frames keeps the noise of earlier frames
    assert all(a != b for a, b in zip(values(other), values(bag), strict=True))
    noise, fixes = noisy_enu(bag)
    want = gnss_noise_enu_m(drive5['oxts_ns'], GnssNoiseConfig(), 7)
    np.testing.assert_allclose(noise, want, atol=1e-6)
    for fix in fixes:  # honest: the stated covariance is sigma^2
        np.testing.assert_allclose(np.asarray(fix.position_covariance).reshape(3, 3),
                                   np.diag([25.0, 25.0, 25.0]))


def test_noise_statistics_match_the_config(tmp_path):
    drive = make_drive(tmp_path / 'kitti', 400, hw=(2, 4))
    config = GnssNoiseConfig(sigma_m=2.0, sigma_up_m=0.5, bias_east_m=3.0, bias_north_m=-1.0)
    bag = read_bag(convert_drive(drive['drive_dir'], tmp_path / 'bag', noise=config, seed=1))
    noise, _ = noisy_enu(bag)
    std_err = 2.0 / math.sqrt(400)
    np.testing.assert_allclose(noise[:, :2].mean(0), [3.0, -1.0], atol=4 * std_err)
    np.testing.assert_allclose(noise.std(0, ddof=1), [2.0, 2.0, 0.5], rtol=0.1)
    assert abs(np.corrcoef(noise[:, 0], noise[:, 1])[0, 1]) < 0.15


def test_random_walk_grows_with_time():
    stamps = np.arange(2000) * 100_000_000  # 10 Hz for 200 s
    config = GnssNoiseConfig(sigma_m=0.0, sigma_up_m=0.0, random_walk_m_per_sqrt_s=0.3)
    noise = gnss_noise_enu_m(stamps, config, seed=3)
    steps = np.diff(noise[:, :2], axis=0)
    np.testing.assert_allclose(steps.std(0), 0.3 * math.sqrt(0.1), rtol=0.08)
    assert noise[0, :2].tolist() == [0.0, 0.0] and np.all(noise[:, 2] == 0)
    white = gnss_noise_enu_m(stamps, replace(config, random_walk_m_per_sqrt_s=0.0), seed=3)
    assert np.all(white == 0)
    with pytest.raises(ValueError, match='sigma_m'):
        GnssNoiseConfig(sigma_m=-1.0)


def test_mcap_storage_reads_back_the_same(drive5, bag5, tmp_path):
    out = convert_drive(drive5['drive_dir'], tmp_path / 'bag_mcap', storage='mcap', seed=7)
    assert list(out.glob('*.mcap')) and not list(out.glob('*.db3'))
    assert 'storage_identifier: mcap' in (out / 'metadata.yaml').read_text()
    assert 'version: 8' in (out / 'metadata.yaml').read_text()
    bag = read_bag(out)
    ref, _ = bag5
    assert bag['types'] == ref['types']
    for topic in (TOPICS['fix'], TOPICS['fix_noisy']):
        assert ([(t, m.latitude, m.longitude) for t, m in bag['messages'][topic]]
                == [(t, m.latitude, m.longitude) for t, m in ref['messages'][topic]])
    assert bag['qos'][TOPICS['tf_static']][0].durability == QosDurability.TRANSIENT_LOCAL


def test_sqlite_default_is_version_8(bag5):
    _, out = bag5
    meta = (out / 'metadata.yaml').read_text()
    assert 'version: 8' in meta and 'storage_identifier: sqlite3' in meta
    assert list(out.glob('*.db3'))


def test_compressed_images(drive5, tmp_path):
    out = tmp_path / 'bag'
    main([str(drive5['drive_dir']), str(out), '--compressed', '--jpeg-quality', '95'])
    bag = read_bag(out)
    assert TOPICS['image'] not in bag['types']
    msgs = bag['messages'][TOPICS['image_compressed']]
    assert bag['types'][TOPICS['image_compressed']] == 'sensor_msgs/msg/CompressedImage'
    assert len(msgs) == 5
    _, msg = msgs[0]
    assert msg.format.endswith('jpeg compressed bgr8')
    bgr = cv2.imdecode(np.asarray(msg.data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr.shape == (12, 20, 3)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(float)
    assert np.abs(rgb - drive5['images'][0]).mean() < 5.0  # JPEG is lossy but close
    assert np.abs(rgb - drive5['images'][1]).mean() > 10.0  # and it is this frame


def test_cli_sidecar_rerun_and_overwrite(drive5, tmp_path):
    out = tmp_path / 'bag'
    args = [str(drive5['drive_dir']), str(out), '--no-compressed', '--seed', '3',
            '--sigma-m', '1.5', '--max-frames', '4', '--datum', f'{LAT0},{LON0}']
    main(args)
    side = json.loads((out / SIDECAR_NAME).read_text())
    assert side['seed'] == 3 and side['noise']['sigma_m'] == 1.5 and side['frame_count'] == 4
    assert side['compressed'] is False and side['datum']['alt_m'] == 0.0
    assert side['node_camera_offset'] == {'x_m': 1.08, 'y_m': -0.26, 'z_m': 0.72,
                                          'yaw_deg': 0.0}
    assert side['first_stamp_ns'] == drive5['oxts_ns'][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bag']  # no staging left
    assert [p.name for p in out.glob('*.db3')] == ['bag.db3']
    db = next(out.glob('*.db3'))
    mtime = db.stat().st_mtime_ns
    main(args)  # rerun: nothing to do
    assert db.stat().st_mtime_ns == mtime
    with pytest.raises(SystemExit, match='different conversion'):
        main(args + ['--seed', '4'])  # the last --seed wins
    main(args + ['--seed', '4', '--overwrite'])
    assert json.loads((out / SIDECAR_NAME).read_text())['seed'] == 4
    assert len(read_bag(out)['messages'][TOPICS['fix']]) == 4


def test_errors_name_the_missing_file(drive5, tmp_path):
    with pytest.raises(FileNotFoundError, match='image_02/data'):
        convert_drive(tmp_path / 'nowhere', tmp_path / 'bag')
    with pytest.raises(ValueError, match='storage'):
        convert_drive(drive5['drive_dir'], tmp_path / 'bag', storage='rosbag1')
    assert parse_datum('49.0,8.4') == (49.0, 8.4, 0.0)
    with pytest.raises(ValueError, match='lat,lon'):
        parse_datum('49.0')
