"""Panorama drives end to end: synthetic 360 drive -> geodistill-kitti2bag -> replay.

A 4-frame old_town drive with 32 x 64 panoramas and its GeoTIFF (make_synthetic), the tiny
random-weight panorama checkpoint: the checks are the plumbing (camera model through the
sidecar, camera_info, node parameters, every frame localized), not the accuracy.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip('rclpy')
from test_kitti2bag import read_bag, stamp_ns  # noqa: E402
from test_node_model import save_tiny_checkpoint  # noqa: E402

from geodistill_core.data.kitti_camera import CAMERA_MARKER  # noqa: E402
from geodistill_core.data.synthetic import GeoTiffConfig, SyntheticPreset  # noqa: E402
from geodistill_core.data.synthetic.export_kitti import KittiDriveConfig  # noqa: E402
from geodistill_core.data.synthetic.presets import make_synthetic  # noqa: E402
from geodistill_ros.bags import player as bp  # noqa: E402
from geodistill_ros.bags.gnss_noise import GnssNoiseConfig  # noqa: E402
from geodistill_ros.bags.kitti2bag import SIDECAR_NAME, TOPICS, convert_drive, main  # noqa: E402
from geodistill_ros.bags.messages import PANORAMA_DISTORTION_MODEL  # noqa: E402
from geodistill_ros.node.model_crop import NODE_DEFAULTS_FILE, crop_parameters, model_crop  # noqa
from geodistill_ros.replay.evaluate import ReplayConfig, node_parameters, replay  # noqa: E402

FRAMES, PANO_HW = 4, (32, 64)
MICRO_PANORAMA = SyntheticPreset(
    'micro_panorama', world_size_m=160.0, cell_m=0.25,
    kitti_drive=KittiDriveConfig(frames=FRAMES, satmap_px=32, margin_m=30.0,
                                 camera='panorama', pano_hw=PANO_HW),
    kitti_train_cities=(), kitti_test2_drives=1, geotiff=GeoTiffConfig(meters_per_px=0.5))
NOISE = GnssNoiseConfig(sigma_m=1.0, sigma_up_m=1.0)


@pytest.fixture(scope='module')
def drive(tmp_path_factory):
    root = tmp_path_factory.mktemp('pano_replay')
    kitti = make_synthetic(MICRO_PANORAMA, root / 'data', seed=0, layout='kitti',
                           progress=False) / 'kitti'
    meta = json.loads((kitti / 'synthetic_kitti.json').read_text())
    d = meta['drives'][0]
    drive_dir = kitti / 'raw_data' / d['date'] / d['drive']
    bag = convert_drive(drive_dir, root / 'bag', noise=NOISE, seed=1)
    return {'root': root, 'drive_dir': drive_dir, 'bag': bag,
            'map': (kitti / meta['cities'][d['city']]['map']).resolve(),
            'checkpoint': save_tiny_checkpoint(root / 'tiny_panorama', 'panorama')}


def test_kitti2bag_round_trip_of_a_panorama_drive(drive):
    sidecar = json.loads((drive['bag'] / SIDECAR_NAME).read_text())
    assert sidecar['camera_model'] == 'panorama' and sidecar['frame_count'] == FRAMES
    offset = sidecar['node_camera_offset']  # marker: 1.08 m forward, 0.26 m right, 2 m up
    assert (offset['x_m'], offset['y_m'], offset['yaw_deg']) == (1.08, -0.26, 0.0)
    assert offset['z_m'] == pytest.approx(2.0 - 0.93)
    bag = read_bag(drive['bag'])['messages']
    images = bag[TOPICS['image']]
    assert len(images) == FRAMES
    files = sorted((drive['drive_dir'] / 'image_02' / 'data').glob('*.png'))
    for (t_ns, msg), path in zip(images, files, strict=True):
        assert (msg.height, msg.width) == PANO_HW and t_ns == stamp_ns(msg)
        rgb = np.asarray(msg.data, np.uint8).reshape(*PANO_HW, 3)
        assert np.array_equal(rgb, cv2.imread(str(path))[..., ::-1])
    infos = bag[TOPICS['camera_info']]
    assert [stamp_ns(m) for _, m in infos] == [stamp_ns(m) for _, m in images]
    info = infos[0][1]
    assert info.distortion_model == PANORAMA_DISTORTION_MODEL
    assert (info.height, info.width) == PANO_HW
    assert not np.any(info.k) and not np.any(info.p)  # uncalibrated: no pinhole matrix


def test_camera_model_option_must_agree_with_the_marker(drive, tmp_path):
    with pytest.raises(ValueError, match='camera.json says'):
        convert_drive(drive['drive_dir'], tmp_path / 'bag', camera_model='pinhole')
    with pytest.raises(SystemExit, match='camera.json says'):
        main([str(drive['drive_dir']), str(tmp_path / 'bag'), '--camera-model', 'pinhole'])
    assert (drive['drive_dir'] / CAMERA_MARKER).is_file()


def test_node_parameters_of_a_panorama_bag(drive, tmp_path):
    bag = bp.open_drive_bag(drive['bag'])
    assert bag.camera_model == 'panorama'
    values = node_parameters(bag, ReplayConfig(bag=drive['bag'], map_path=drive['map'],
                                               out_dir=tmp_path,
                                               checkpoint=str(drive['checkpoint'])))
    assert values['camera_model'] == 'panorama'
    assert (values['crop_size_m'], values['crop_size_px']) == (32.0, 128)  # 64 px x 0.5 m


def test_offline_replay_of_a_panorama_drive(drive):
    result = replay(ReplayConfig(bag=drive['bag'], map_path=drive['map'],
                                 out_dir=drive['root'] / 'offline', offline=True,
                                 checkpoint=str(drive['checkpoint']), plots=False))
    report = result.report
    assert report['drive']['camera_model'] == 'panorama'
    assert report['node_parameters']['camera_model'] == 'panorama'
    assert report['frames']['images'] == FRAMES and report['frames']['outputs'] == FRAMES
    # camera_info is uncalibrated, and the panorama path never reads it
    assert report['frames']['rejected'] == {}
    assert report['metrics']['frames'] == FRAMES
    assert math.isfinite(report['metrics']['position']['mean'])
    assert report['metrics']['yaw']['mean'] == pytest.approx(0.0, abs=1e-3)  # OXTS prior
    assert json.loads(result.report_path.read_text())['mode'] == 'offline'


def _record(path: Path, **data) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    record = {'input_sizes': {'ground_hw': [128, 256], 'satellite_hw': [256, 256]},
              'meters_per_px': None,
              'training_config': {'data': {'dataset': 'vigor', 'sat_size': 256, **data}}}
    (path / 'config.json').write_text(json.dumps(record))
    return path


def test_crop_of_a_panorama_model_trained_on_cities_of_several_resolutions(tmp_path):
    # synthetic training cities 0.110, 0.105, 0.115 m/px at 640 px -> 0.275 m/px at 256 px
    bench = _record(tmp_path / 'bench',
                    cities=['SynthDowntown', 'SynthSuburb', 'SynthIndustrial'])
    size_m, size_px = model_crop(str(bench), 'panorama')
    assert size_px == 512 and size_m == pytest.approx(0.110 * 640 / 256 * 256)
    # a value stored beside the model wins over the cities
    (bench / NODE_DEFAULTS_FILE).write_text(json.dumps({'meters_per_px': 0.3}))
    assert model_crop(str(bench), 'panorama') == pytest.approx((0.3 * 256, 512))
    unknown = _record(tmp_path / 'unknown', cities=['Atlantis'])
    assert model_crop(str(unknown), 'panorama') is None
    with pytest.raises(ValueError, match=NODE_DEFAULTS_FILE):
        crop_parameters(str(unknown), 'panorama', {})
    assert crop_parameters(str(unknown), 'panorama', {'crop_size_m': 70.0}) == {}
    assert crop_parameters(str(unknown), 'pinhole', {}) == {}  # the node's defaults


@pytest.mark.ros
@pytest.mark.slow
def test_dds_replay_of_a_panorama_drive(ros_isolation, drive, tmp_path):
    """The node process over DDS: it does not subscribe to camera_info for panoramas, and
    the player does not wait for it to."""
    dds = replay(ReplayConfig(bag=drive['bag'], map_path=drive['map'],
                              out_dir=tmp_path / 'dds', checkpoint=str(drive['checkpoint']),
                              plots=False))
    frames = dds.report['frames']
    assert frames['images'] == FRAMES and frames['outputs'] == FRAMES, frames
