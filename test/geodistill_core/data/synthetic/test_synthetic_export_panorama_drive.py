"""Panorama drives (export_kitti camera='panorama'): size, marker, calib, and the centre
column looking along the vehicle heading (pinned against an independent pinhole render)."""
import csv
import math

import cv2
import numpy as np
import pytest

from geodistill_core.data.kitti import read_kitti_calib
from geodistill_core.data.kitti_camera import CAMERA_MARKER, read_drive_camera
from geodistill_core.data.synthetic.drive import hide_ground_cars_near
from geodistill_core.data.synthetic.export_kitti import (
    KittiDriveConfig,
    export_kitti_drive,
    write_kitti_calib,
)
from geodistill_core.data.synthetic.export_vigor import TRUTH_DIR
from geodistill_core.data.synthetic.georef import get_city
from geodistill_core.data.synthetic.pinhole import PinholeCamera, render_pinhole
from geodistill_core.data.synthetic.poses import CameraPose
from geodistill_core.data.synthetic.presets import get_preset

PANO_HW = (64, 128)
CONFIG = KittiDriveConfig(frames=3, satmap_px=32, margin_m=15.0, camera='panorama',
                          pano_hw=PANO_HW)
CITY = get_city('SynthOldTown')


@pytest.fixture(scope='module')
def drive(small_world_factory, tmp_path_factory):
    world = small_world_factory('old_town', 0)
    root = tmp_path_factory.mktemp('pano_drive')
    export = export_kitti_drive(world, CITY, root, 1, CONFIG, seed=0, progress=False)
    write_kitti_calib(root, export.date, panorama_hw=PANO_HW)
    drive_dir = root / 'raw_data' / export.date / export.drive
    return world, root, export, drive_dir


def read_rgb(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def test_panorama_frames_marker_and_calib(drive):
    _, root, export, drive_dir = drive
    images = sorted((drive_dir / 'image_02' / 'data').glob('*.png'))
    assert len(images) == CONFIG.frames
    assert all(read_rgb(p).shape == (*PANO_HW, 3) for p in images)
    camera = read_drive_camera(drive_dir)
    assert camera.camera_model == 'panorama' and camera.image_hw == PANO_HW
    assert (camera.forward_m, camera.right_m, camera.height_m) == (1.08, 0.26, 2.0)
    calib = read_kitti_calib(root / 'raw_data' / export.date / 'calib_cam_to_cam.txt')
    assert calib.image_hw == PANO_HW and not calib.P_rect_02.any()


def test_pinhole_drives_have_no_marker_and_keep_their_config(tmp_path):
    assert KittiDriveConfig().drive_camera() is None
    assert read_drive_camera(tmp_path) is None
    assert 'camera' not in get_preset('demo').to_json()['kitti_drive']
    assert get_preset('demo_panorama').to_json()['kitti_drive']['camera'] == 'panorama'
    with pytest.raises(ValueError, match='camera'):
        KittiDriveConfig(camera='fisheye')
    (tmp_path / CAMERA_MARKER).parent.mkdir()
    (tmp_path / CAMERA_MARKER).write_text('{"format": "other"}')
    with pytest.raises(ValueError, match='not a valid drive camera marker'):
        read_drive_camera(tmp_path)


def _pano_lookup(camera: PinholeCamera, hw, turn_rad: float, mirror: bool):
    """Panorama pixel (rows, cols) seen by each pinhole pixel, under the convention
    'centre column = forward, azimuth clockwise' (turn 0, no mirror) or a wrong one."""
    H, W = hw
    u, v = np.meshgrid(np.arange(camera.width_px), np.arange(camera.height_px))
    x, y = (u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy
    phi = np.arctan(x) * (-1.0 if mirror else 1.0) + turn_rad
    elevation = np.arctan2(-y, np.sqrt(1.0 + x * x))
    cols = np.rint((W - 1) / 2 + phi * W / (2 * math.pi)).astype(int) % W
    rows = np.clip(np.rint((math.pi / 2 - elevation) * H / math.pi - 0.5).astype(int), 0, H - 1)
    return rows, cols


def test_centre_column_looks_along_the_heading(drive):
    """A pinhole render at the camera's pose (independent renderer path) matches the
    exported panorama under the heading convention, not turned around or mirrored."""
    world, root, export, drive_dir = drive
    rows = list(csv.DictReader((root / TRUTH_DIR / f'{export.drive}.csv').read_text()
                               .splitlines()))
    shown = hide_ground_cars_near(world, export.gps_east_m, export.gps_north_m,
                                  CONFIG.clear_cars_radius_m)
    camera = PinholeCamera(width_px=96, height_px=48, fx=48.0, fy=48.0, cx=47.5, cy=23.5)
    for k, row in enumerate(rows):
        pose = CameraPose(float(row['camera_east_m']), float(row['camera_north_m']),
                          float(row['yaw_rad']), 2.0)
        pinhole = render_pinhole(shown, pose, camera, seed=1).rgb.astype(np.float64)
        pano = read_rgb(drive_dir / 'image_02' / 'data' / f'{k:010d}.png').astype(np.float64)
        errors = {}
        for name, turn, mirror in (('heading', 0.0, False), ('behind', math.pi, False),
                                   ('left', math.pi / 2, False), ('mirrored', 0.0, True)):
            r, c = _pano_lookup(camera, PANO_HW, turn, mirror)
            errors[name] = np.abs(pano[r, c] - pinhole).mean()
        others = min(v for n, v in errors.items() if n != 'heading')
        assert errors['heading'] < 0.7 * others, errors
