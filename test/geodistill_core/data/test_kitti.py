"""Tests for the KITTI reader (Shi & Li protocol) on a tiny dataset in the official layout."""
import dataclasses
import datetime
import math

import cv2
import numpy as np
import pytest
import torch

from geodistill_core.data.kitti import (
    KITTI_SATMAP_METERS_PER_PX,
    KittiDataset,
    read_kitti_calib,
)
from geodistill_core.data.oxts import OXTS_FIELD_NAMES, OxtsRecord, format_oxts_line
from geodistill_core.geodesy import LocalEnu
from geodistill_core.geometry import offset_en_m_to_pixel

DATE = '2011_09_26'
DRIVES = {f'{DATE}_drive_0001_sync': (math.pi / 2, 0.0, 2.0, -2.5),  # OXTS yaw per frame
          f'{DATE}_drive_0002_sync': (0.7, -1.2, 3.0)}
IMAGE_HW = (40, 124)  # written ground images; S_rect_02 = 124 40
SATMAP_PX, SAT_CROP_PX, MPP = 81, 31, 1.0
CFG = dict(ground_size=(16, 64), sat_crop_px=SAT_CROP_PX, sat_size=SAT_CROP_PX,
           shift_range_m=5.0, rotation_range_deg=10.0, satmap_meters_per_px=MPP)
P_RECT_02 = (721.5377, 0.0, 609.5593, 44.85728, 0.0, 721.5377, 172.854, 0.2163791,
             0.0, 0.0, 1.0, 0.002745884)
CALIB = f"""calib_time: 09-Jan-2012 13:57:47
corner_dist: 9.950000e-02
S_00: 1.392000e+03 5.120000e+02
P_rect_00: 7.000000e+02 0.000000e+00 6.000000e+02 0.000000e+00 0.000000e+00 7.000000e+02 \
1.700000e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
S_rect_00: 1.242000e+03 3.750000e+02
S_02: 1.392000e+03 5.120000e+02
P_rect_02: {' '.join(f'{v:e}' for v in P_RECT_02)}
S_rect_02: {IMAGE_HW[1]:e} {IMAGE_HW[0]:e}
"""
# test1 lines for drive 1: dx dy dtheta, with the expected camera-minus-centre offsets for
# the frame yaws (north, east, 2.0 rad, -2.5 rad) and shift range 5 m.
TEST1 = ((0.5, 0.0, 0.0), (0.0, -0.5, 0.5), (-0.3, 0.8, -1.0), (1.0, -1.0, 0.2))


def camera_from_gps(yaw):
    forward, right = np.array([math.cos(yaw), math.sin(yaw)]), np.array(
        [math.sin(yaw), -math.cos(yaw)])
    return 1.08 * forward + 0.26 * right


def oxts_line(lat, lon, yaw):
    values = dict.fromkeys(OXTS_FIELD_NAMES, 0.0)
    values.update(lat=lat, lon=lon, alt=112.0, yaw=yaw, navstat=4, numsats=10, posmode=4,
                  velmode=4, orimode=0)
    for name in ('navstat', 'numsats', 'posmode', 'velmode', 'orimode'):
        values[name] = int(values[name])
    return format_oxts_line(OxtsRecord(**values))


def gps(drive_index, frame):
    return 49.01 + 0.002 * drive_index + 0.0001 * frame, 8.43 + 0.0002 * frame


def satmap(yaw):
    """North-up satmap centred on the GPS with a blob at the camera's true position."""
    cam_e, cam_n = camera_from_gps(yaw)
    mid = (SATMAP_PX - 1) / 2
    rows, cols = np.mgrid[:SATMAP_PX, :SATMAP_PX].astype(float)
    row_c, col_c = mid - cam_n / MPP, mid + cam_e / MPP
    blob = 20 + 200 * np.exp(-0.5 * ((rows - row_c) ** 2 + (cols - col_c) ** 2) / 1.2**2)
    return np.repeat(blob[..., None], 3, axis=2).astype(np.uint8)


def write_png(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def build_kitti(root):
    rng = np.random.default_rng(0)
    (root / 'raw_data' / DATE).mkdir(parents=True)
    (root / 'raw_data' / DATE / 'calib_cam_to_cam.txt').write_text(CALIB)
    names = []
    for d, (drive, yaws) in enumerate(DRIVES.items()):
        drive_dir = root / 'raw_data' / DATE / drive
        for f, yaw in enumerate(yaws):
            frame = f'{f:010d}'
            write_png(drive_dir / 'image_02' / 'data' / f'{frame}.png',
                      rng.integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8))
            (drive_dir / 'oxts' / 'data').mkdir(parents=True, exist_ok=True)
            (drive_dir / 'oxts' / 'data' / f'{frame}.txt').write_text(
                oxts_line(*gps(d, f), yaw) + '\n')
            write_png(root / 'satmap' / DATE / drive / f'{frame}.png', satmap(yaw))
            names.append(f'{DATE}/{drive}/{frame}.png')
        if d == 0:
            stamps = [f'2011-09-26 13:02:{25 + f}.{964389445 + f:09d}' for f in range(len(yaws))]
            (drive_dir / 'image_02' / 'timestamps.txt').write_text('\n'.join(stamps) + '\n')
    (root / 'train_files.txt').write_text('\n'.join(names) + '\n')
    n1 = len(DRIVES[f'{DATE}_drive_0001_sync'])
    (root / 'test1_files.txt').write_text('\n'.join(
        f'{n} {dx} {dy} {dt}' for n, (dx, dy, dt) in zip(names[:n1], TEST1, strict=True)))
    (root / 'test2_files.txt').write_text('\n'.join(f'{n} 0.1 0.2 0.3' for n in names[n1:]))


@pytest.fixture(scope='module')
def kitti_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('KITTI')
    build_kitti(root)
    return root


def test_satmap_resolution_constant():
    # Web Mercator zoom 18, scale 2, latitude 49.015 deg (method.md section 6).
    assert KITTI_SATMAP_METERS_PER_PX == pytest.approx(0.19583, abs=1e-5)


def test_k_is_p_rect_02_scaled_to_the_ground_size(kitti_root):
    calib = read_kitti_calib(kitti_root / 'raw_data' / DATE / 'calib_cam_to_cam.txt')
    assert calib.image_hw == IMAGE_HW
    np.testing.assert_allclose(calib.P_rect_02.ravel(), P_RECT_02, rtol=1e-6)
    item = KittiDataset(kitti_root, 'test1', **CFG)[0]
    assert item['ground'].shape == (3, 16, 64) and item['ground'].dtype == torch.float32
    K = item['K'].double()
    sx, sy = 64 / IMAGE_HW[1], 16 / IMAGE_HW[0]
    expected = [[721.5377 * sx, 0, (609.5593 + 0.5) * sx - 0.5],
                [0, 721.5377 * sy, (172.854 + 0.5) * sy - 0.5], [0, 0, 1]]
    np.testing.assert_allclose(K.numpy(), expected, rtol=1e-6)
    # Counter-examples: not camera 00's matrix, not the half-pixel-blind cx * s.
    assert abs(K[0, 2].item() - 609.5593 * sx) > 0.2
    assert abs(K[0, 0].item() - 700.0 * sx) > 1.0


def blob_centroid(satellite):
    img = (satellite.mean(0) - 25.0 / 255.0).clamp(min=0).numpy()
    rows, cols = np.mgrid[:img.shape[0], :img.shape[1]]
    return (img * rows).sum() / img.sum(), (img * cols).sum() / img.sum()


def test_shift_convention_offsets_and_satellite_content(kitti_root):
    ds = KittiDataset(kitti_root, 'test1', **CFG)
    yaws = DRIVES[f'{DATE}_drive_0001_sync']
    for index, ((dx, dy, dtheta), yaw) in enumerate(zip(TEST1, yaws, strict=True)):
        item = ds[index]
        assert item['shift_dx_dy_dtheta'].tolist() == pytest.approx([dx, dy, dtheta])
        forward = np.array([math.cos(yaw), math.sin(yaw)])
        left = np.array([-math.sin(yaw), math.cos(yaw)])
        expected = 5.0 * (dx * forward + dy * left)  # camera minus satellite centre
        offset = item['eval_true_offset_en_m'].numpy()
        np.testing.assert_allclose(offset, expected, atol=1e-5)
        # The camera blob drawn into the satmap appears where the offset says.
        row, col = offset_en_m_to_pixel(offset[0], offset[1], SAT_CROP_PX, SAT_CROP_PX,
                                        item['sat_meters_per_px'].item())
        np.testing.assert_allclose(blob_centroid(item['satellite']), (row, col), atol=0.06)
        # Yaw: OXTS yaw; prior = yaw - dtheta * 10 deg; noise = prior - yaw.
        assert item['yaw_rad'].item() == pytest.approx(yaw, abs=1e-6)
        assert item['yaw_noise_rad'].item() == pytest.approx(-math.radians(10 * dtheta))
        assert item['yaw_prior_rad'].item() == pytest.approx(
            math.remainder(yaw - math.radians(10 * dtheta), 2 * math.pi), abs=1e-6)
    # Pins with numbers: facing north, dx = +0.5 puts the camera 2.5 m north of the centre;
    # facing east, dy = -0.5 puts it 2.5 m to the right, i.e. south (not north, not east).
    np.testing.assert_allclose(ds[0]['eval_true_offset_en_m'].numpy(), [0.0, 2.5], atol=1e-5)
    np.testing.assert_allclose(ds[1]['eval_true_offset_en_m'].numpy(), [0.0, -2.5], atol=1e-5)
    assert ds[1]['yaw_prior_rad'].item() == pytest.approx(-math.radians(5.0), abs=1e-6)


def test_camera_gps_offset_is_forward_and_right(kitti_root):
    # With zero shift the camera (1.08 m ahead, 0.26 m right of the GPS) is at the centre.
    root = kitti_root
    ds = KittiDataset(root, 'test1', **CFG)
    zero = dataclasses.replace(ds.entries[1], dx_dy_dtheta=(0.0, 0.0, 0.0))
    ds.entries = (zero,)
    item = ds[0]
    assert item['eval_true_offset_en_m'].tolist() == [0.0, 0.0]
    mid = (SAT_CROP_PX - 1) / 2
    np.testing.assert_allclose(blob_centroid(item['satellite']), (mid, mid), atol=0.06)
    # Counter-example: a crop centred on the GPS (offset ignored) would show the blob of
    # this east-facing frame 1.08 px east and 0.26 px south of the centre.
    assert ds.entries[0].drive.endswith('0001_sync') and DRIVES[ds.entries[0].drive][1] == 0.0
    ignored = np.array([mid + 0.26, mid + 1.08])
    assert np.linalg.norm(np.array(blob_centroid(item['satellite'])) - ignored) > 0.9


def test_resize_scales_meters_per_px(kitti_root):
    ds = KittiDataset(kitti_root, 'test2', **{**CFG, 'sat_size': 16})
    item = ds[0]
    assert item['satellite'].shape == (3, 16, 16)
    assert item['sat_meters_per_px'].item() == pytest.approx(MPP * SAT_CROP_PX / 16)
    assert item['camera_height_m'].item() == pytest.approx(1.65)
    assert item['timestamp_ns'].item() == -1  # drive 2 has no timestamps.txt


def test_timestamps(kitti_root):
    ds = KittiDataset(kitti_root, 'test1', **CFG)
    # Frame 2: 2011-09-26 13:02:27.964389447 UTC.
    seconds = int(datetime.datetime(2011, 9, 26, 13, 2, 27,
                                    tzinfo=datetime.timezone.utc).timestamp())
    assert ds[2]['timestamp_ns'].item() == seconds * 10**9 + 964389447
    assert ds[2]['timestamp_ns'].dtype == torch.int64


def test_training_values_are_seeded_per_item(kitti_root):
    ds = KittiDataset(kitti_root, 'train', val_fraction=0.0, seed=5, **CFG)
    assert len(ds) == 7 and all(e.dx_dy_dtheta is None for e in ds.entries)
    values = [ds.protocol_values(i) for i in range(len(ds))]
    for i, v in enumerate(values):
        rng = np.random.default_rng(np.random.SeedSequence([5, i]))
        assert v == pytest.approx(tuple(rng.uniform(-1, 1, 3)))
    assert ds[3]['shift_dx_dy_dtheta'].tolist() == pytest.approx(values[3])
    again = KittiDataset(kitti_root, 'train', val_fraction=0.0, seed=5, **CFG)
    assert [again.protocol_values(i) for i in range(len(ds))] == values
    ds.set_epoch(1)
    assert [ds.protocol_values(i) for i in range(len(ds))] != values


def test_val_holds_out_whole_drives(kitti_root):
    train = KittiDataset(kitti_root, 'train', val_fraction=0.5, **CFG)
    val = KittiDataset(kitti_root, 'val', val_fraction=0.5, **CFG)
    assert len(train) + len(val) == 7
    assert len({e.drive for e in train.entries}) == len({e.drive for e in val.entries}) == 1
    assert {e.drive for e in train.entries}.isdisjoint(e.drive for e in val.entries)


def test_sampling_layout_is_the_noisy_centre(kitti_root):
    ds = KittiDataset(kitti_root, 'test1', **CFG)
    layout = ds.sampling_layout()
    ref = LocalEnu(*gps(0, 0))
    expected = []
    for i, yaw in enumerate(DRIVES[f'{DATE}_drive_0001_sync']):
        e, n, _ = ref.to_enu(*gps(0, i))
        true_camera = np.array([e, n]) + camera_from_gps(yaw)
        expected.append(true_camera - ds[i]['eval_true_offset_en_m'].numpy())
    expected = np.array(expected)
    np.testing.assert_allclose(layout.positions_m[:, :2] - layout.positions_m[:1, :2],
                               expected - expected[:1], atol=1e-3)
    assert layout.tile_keys[0] == frozenset({ds.entries[0].name})


def test_errors_name_the_path(kitti_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='lacks raw_data/ or satmap/'):
        KittiDataset(tmp_path / 'nowhere', 'test1')
    with pytest.raises(FileNotFoundError, match='nosplits/test2_files.txt'):
        KittiDataset(kitti_root, 'test2', split_dir=tmp_path / 'nosplits')
    with pytest.raises(ValueError, match='split must be one of'):
        KittiDataset(kitti_root, 'test')
    bad = tmp_path / 'splits'
    bad.mkdir()
    name = f'{DATE}/{DATE}_drive_0001_sync/0000000000.png'
    for text, message in ((f'{name} 0 0 0\n{DATE}/0000000001.png 0 0 0', r'test1_files.txt:2'),
                          (f'{name} 0 1.5 0', r':1: dx dy dtheta must lie in \[-1, 1\]'),
                          (f'{name} 0 x 0', ':1: dx dy dtheta must be numbers'),
                          (f'{name} 0 0', ':1: expected')):
        (bad / 'test1_files.txt').write_text(text)
        with pytest.raises(ValueError, match=message):
            KittiDataset(kitti_root, 'test1', split_dir=bad, **CFG)
    # A satmap too small for crop + shift is an error, never a black border.
    small = KittiDataset(kitti_root, 'test1', **{**CFG, 'sat_crop_px': 75})
    with pytest.raises(ValueError, match='leaves the 81x81 image'):
        small[3]
    # Missing satmap, image size disagreeing with S_rect_02, missing calibration.
    broken = tmp_path / 'K'
    build_kitti(broken)
    (broken / 'satmap' / DATE / f'{DATE}_drive_0002_sync' / '0000000001.png').unlink()
    with pytest.raises(FileNotFoundError, match='drive_0002_sync/0000000001.png'):
        KittiDataset(broken, 'test2', **CFG)[1]
    calib = broken / 'raw_data' / DATE / 'calib_cam_to_cam.txt'
    calib.write_text(CALIB.replace(f'S_rect_02: {IMAGE_HW[1]:e}', 'S_rect_02: 1.242000e+03'))
    with pytest.raises(ValueError, match=r'S_rect_02 of 2011_09_26 says \(40, 1242\)'):
        KittiDataset(broken, 'test1', **CFG)[0]
    calib.write_text('calib_time: 09-Jan-2012 13:57:47\n')
    with pytest.raises(ValueError, match='needs P_rect_02'):
        KittiDataset(broken, 'test1', **CFG)[0]
    calib.unlink()
    with pytest.raises(FileNotFoundError, match='calib_cam_to_cam.txt'):
        KittiDataset(broken, 'test1', **CFG)[0]
