"""Export synthetic drives in the KITTI raw layout of Shi & Li (read by ``data.kitti``).

    <root>/raw_data/<date>/calib_cam_to_cam.txt                     P_rect_02, S_rect_02
    <root>/raw_data/<date>/<date>_drive_<nnnn>_sync/image_02/data/<10 digits>.png
    <root>/raw_data/<date>/<date>_drive_<nnnn>_sync/image_02/timestamps.txt
    <root>/raw_data/<date>/<date>_drive_<nnnn>_sync/oxts/data/<10 digits>.txt
    <root>/raw_data/<date>/<date>_drive_<nnnn>_sync/oxts/timestamps.txt
    <root>/satmap/<date>/<date>_drive_<nnnn>_sync/<10 digits>.png  north-up, on the GPS
    <root>/{train,test1,test2}_files.txt
    <root>/synthetic_truth/<drive>.csv                               world-frame truth

A drive follows ``sample_drive`` (right-hand lane, rounded corners, constant speed). Its
path is the OXTS (GPS/IMU) point; the camera image_02 sits at the reader's offset from it
(``data.kitti.camera_from_gps_en_m``: 1.08 m forward, 0.26 m right) and 1.65 m above the
ground, and is rendered there with the KITTI-like camera (1242 x 375, fx 721.5377). Ground
cars within ``clear_cars_radius_m`` of the path are removed from the ground view (the
vehicle would drive through them); the satellite keeps them.

``camera='panorama'`` (a roof-mounted 360 camera, for VIGOR-style models) renders image_02
as an equirectangular panorama of ``pano_hw`` whose centre column looks along the vehicle's
heading (the OXTS yaw; azimuth clockwise to the right), at the same roof point as KITTI's
camera but VIGOR's camera height (2 m, what panorama models are trained at). Such a drive
carries ``image_02/camera.json`` (``data.kitti_camera``) and its date's calib gives S_rect_02
= the panorama size with an all-zero P_rect_02. Pinhole drives are written exactly as before.

Time: frames are nominally 10 Hz with a seeded jitter (std ``stamp_jitter_ms``, 1 ms
resolution, at most +-4 ms). The OXTS record of a frame is the vehicle state at the image's
instant, so image_02/timestamps.txt and oxts/timestamps.txt hold the same stamps.

OXTS (30 fields, data.oxts): lat/lon from the city's Georeference, alt = ground height +
0.93 m (the OXTS unit's height); roll = pitch = 0 (flat world, level camera); yaw = map yaw
in world axes (0 = east, CCW); vn, ve, vf from the path (vl = vu = 0); accelerations are
specific forces (gravity included: az = au = 9.80665); wz = wu = yaw rate; RTK-like status
fields. Satmaps are ``satmap_px`` squares at data.kitti.KITTI_SATMAP_METERS_PER_PX centred
on the GPS position; the default 832 px covers the reader's default crop (512 px) at any
+-20 m protocol shift and heading (813 px needed; ``min_satmap_px``).

Split lines: train '<date>/<drive>/<frame>.png'; test1/test2 add 'dx dy dtheta', seeded
U(-1, 1), in the reader's convention (test1: drives in the training cities, test2: in
other cities).
"""
from __future__ import annotations

from dataclasses import astuple, dataclass
import datetime as dt
import logging
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from geodistill_core.data.kitti import (
    KITTI_CAMERA_HEIGHT_M,
    KITTI_GPS_TO_CAMERA_FORWARD_M,
    KITTI_GPS_TO_CAMERA_RIGHT_M,
    KITTI_SATMAP_METERS_PER_PX,
    KITTI_SPLIT_FILES,
    camera_from_gps_en_m,
)
from geodistill_core.data.kitti_camera import (
    CAMERA_MARKER,
    CAMERA_MODELS,
    DriveCamera,
    camera_marker_bytes,
)
from geodistill_core.data.oxts import OxtsRecord, format_kitti_timestamp, format_oxts_line
from geodistill_core.data.synthetic.drive import hide_ground_cars_near, sample_drive
from geodistill_core.data.synthetic.export_io import item_seed, write_bytes_atomic, write_image
from geodistill_core.data.synthetic.export_vigor import TRUTH_DIR
from geodistill_core.data.synthetic.georef import CITY_INDEX, SyntheticCity
from geodistill_core.data.synthetic.panorama import render_panorama
from geodistill_core.data.synthetic.pinhole import KITTI_CAMERA, PinholeCamera, render_pinhole
from geodistill_core.data.synthetic.poses import VIGOR_CAMERA_HEIGHT_M, CameraPose
from geodistill_core.data.synthetic.satellite import render_satellite
from geodistill_core.data.synthetic.world import World
from geodistill_core.geodesy import wrap_angle_rad
from geodistill_core.geometry.raster import NorthUpCrop

logger = logging.getLogger(__name__)

KITTI_OXTS_HEIGHT_M = 0.93
"""Height of the OXTS unit above the ground (KITTI sensor setup), metres."""
GRAVITY_MPS2 = 9.80665
DENSE_HZ = 1000
MAX_JITTER_MS = 4
_DRIVE, _FRAME, _SATMAP, _STAMPS = 11, 12, 13, 14  # seed purposes
_NS_PER_S = 1_000_000_000
PANORAMA_CAMERA_HEIGHT_M = VIGOR_CAMERA_HEIGHT_M
"""Height of a panorama drive's 360 camera above the ground (VIGOR's, as its models)."""


@dataclass(frozen=True)
class KittiDriveConfig:
    """One drive's export settings.

    frames: number of frames (10 Hz). speed_mps: (min, max) of the drive's constant speed.
    satmap_px: side of the satellite crops. margin_m: the route keeps this far from the
    world's edge. stamp_jitter_ms: std of the frame-time jitter. clear_cars_radius_m: ground
    cars this close to the path are removed from the ground view. camera: 'pinhole' (KITTI's
    image_02) or 'panorama' (equirectangular, ``pano_hw`` (H, W), centre column forward).
    """

    frames: int = 100
    speed_mps: tuple[float, float] = (6.0, 10.0)
    satmap_px: int = 832
    margin_m: float = 40.0
    stamp_jitter_ms: float = 1.5
    clear_cars_radius_m: float = 3.0
    camera: str = 'pinhole'
    pano_hw: tuple[int, int] = (320, 640)

    def __post_init__(self):
        if self.frames < 2 or not 0 < self.speed_mps[0] <= self.speed_mps[1]:
            raise ValueError(f'need frames >= 2 and 0 < speed min <= max; got {self.frames}, '
                             f'{self.speed_mps}')
        if self.satmap_px < 16 or self.stamp_jitter_ms < 0:
            raise ValueError(f'bad satmap_px {self.satmap_px} or jitter {self.stamp_jitter_ms}')
        if self.camera not in CAMERA_MODELS or len(self.pano_hw) != 2 or min(self.pano_hw) < 8:
            raise ValueError(f'camera must be one of {CAMERA_MODELS} and pano_hw (H, W) >= 8 '
                             f'px; got {self.camera!r}, {self.pano_hw}')

    def drive_camera(self) -> DriveCamera | None:
        """The image_02 marker of a panorama drive (None for pinhole drives: no marker)."""
        if self.camera == 'pinhole':
            return None
        return DriveCamera('panorama', tuple(self.pano_hw), KITTI_GPS_TO_CAMERA_FORWARD_M,
                           KITTI_GPS_TO_CAMERA_RIGHT_M, PANORAMA_CAMERA_HEIGHT_M)


def min_satmap_px(sat_crop_px: int = 512, shift_range_m: float = 20.0,
                  meters_per_px: float = KITTI_SATMAP_METERS_PER_PX) -> int:
    """Smallest satmap from which the reader can cut ``sat_crop_px`` at every protocol value.

    The crop centre is GPS + camera offset - shift * (dx forward + dy left); with dx, dy in
    [-1, 1] at a diagonal heading one map axis gets up to shift * sqrt(2), plus the
    GPS-to-camera distance (1.11 m). Defaults (512 px, 20 m): 813 px.
    """
    reach_m = shift_range_m * math.sqrt(2.0) + math.hypot(KITTI_GPS_TO_CAMERA_FORWARD_M,
                                                          KITTI_GPS_TO_CAMERA_RIGHT_M)
    return int(math.ceil(sat_crop_px + 2 * reach_m / meters_per_px))


def drive_folder(date: str, number: int) -> str:
    """'<date>_drive_<nnnn>_sync'."""
    return f'{date}_drive_{number:04d}_sync'


def frame_names(date: str, number: int, frames: int) -> list[str]:
    """Split-file names '<date>/<drive>/<frame>.png' of a drive's frames."""
    drive = drive_folder(date, number)
    return [f'{date}/{drive}/{k:010d}.png' for k in range(frames)]


def calib_text(camera: PinholeCamera = KITTI_CAMERA,
               panorama_hw: tuple[int, int] | None = None) -> str:
    """calib_cam_to_cam.txt for the synthetic rig: image_02 is the rectified reference
    camera (identity rectification, zero baseline in P_rect_02). panorama_hw (H, W): a
    panorama rig instead: S_rect_02 is its size, K_02 and P_rect_02 are zero."""
    eye = ' '.join(f'{v:e}' for v in np.eye(3).ravel())
    K = camera.K if panorama_hw is None else np.zeros((3, 3))
    P = np.concatenate([K, np.zeros((3, 1))], axis=1)
    width, height = ((camera.width_px, camera.height_px) if panorama_hw is None
                     else (panorama_hw[1], panorama_hw[0]))
    size = f'{width:e} {height:e}'
    return '\n'.join([
        'calib_time: 01-Jan-2024 12:00:00', 'corner_dist: 9.950000e-02',
        f'S_02: {size}', f'K_02: {" ".join(f"{v:e}" for v in K.ravel())}',
        f'D_02: {" ".join(f"{0.0:e}" for _ in range(5))}', f'R_02: {eye}',
        f'T_02: {" ".join(f"{0.0:e}" for _ in range(3))}', f'S_rect_02: {size}',
        f'R_rect_02: {eye}', f'P_rect_02: {" ".join(f"{v:e}" for v in P.ravel())}', ''])


def write_kitti_calib(root: str | Path, date: str, camera: PinholeCamera = KITTI_CAMERA,
                      panorama_hw: tuple[int, int] | None = None) -> Path:
    path = Path(root) / 'raw_data' / date / 'calib_cam_to_cam.txt'
    write_bytes_atomic(path, calib_text(camera, panorama_hw).encode())
    return path


@dataclass(frozen=True)
class KittiDriveExport:
    """A written drive's ground truth, arrays (N,) in the world frame of its city."""

    date: str
    drive: str
    names: tuple[str, ...]
    time_ns: np.ndarray
    gps_east_m: np.ndarray
    gps_north_m: np.ndarray
    camera_east_m: np.ndarray
    camera_north_m: np.ndarray
    yaw_rad: np.ndarray
    records: tuple[OxtsRecord, ...]


def _clean(record: OxtsRecord) -> OxtsRecord:
    """Round-off (|v| < 1e-9, e.g. the yaw rate on a straight) written as exact zeros."""
    return OxtsRecord(*(0.0 if isinstance(v, float) and abs(v) < 1e-9 else v
                        for v in astuple(record)))


def _start_ns(date: str, number: int, rng: np.random.Generator) -> int:
    day = dt.datetime.strptime(date, '%Y_%m_%d').replace(tzinfo=dt.timezone.utc)
    start = day + dt.timedelta(hours=11, minutes=7 * number)
    seconds = int((start - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).total_seconds())
    return seconds * _NS_PER_S + int(rng.integers(0, _NS_PER_S))


def export_kitti_drive(world: World, city: SyntheticCity, root: str | Path, number: int,
                       config: KittiDriveConfig, seed: int, progress: bool = True,
                       ) -> KittiDriveExport:
    """Write drive ``number`` of ``city`` (date city.kitti_date) under ``root``; returns its
    ground truth. Existing frame files are kept (resume)."""
    root, key, date = Path(root), CITY_INDEX[city.name], city.kitti_date
    if world.style.name != city.style:
        raise ValueError(f'{city.name} has style {city.style!r}, the world {world.style.name!r}')
    rng = np.random.default_rng(item_seed(seed, key, _STAMPS, number))
    jitter_max = min(MAX_JITTER_MS, int(3 * config.stamp_jitter_ms))
    jitter = np.clip(np.rint(rng.normal(0.0, config.stamp_jitter_ms, config.frames)),
                     -jitter_max, jitter_max).astype(np.int64)
    step = DENSE_HZ // 10
    index = MAX_JITTER_MS + step * np.arange(config.frames) + jitter
    speed = float(rng.uniform(*config.speed_mps))
    dense = sample_drive(world, int(index[-1]) + MAX_JITTER_MS + 1, speed, hz=DENSE_HZ,
                         seed=item_seed(seed, key, _DRIVE, number), margin_m=config.margin_m)
    t0_ns = _start_ns(date, number, rng)
    time_ns = t0_ns + index * (_NS_PER_S // DENSE_HZ)
    gps_e, gps_n, yaw = dense.east_m[index], dense.north_m[index], dense.yaw_rad[index]
    off_e, off_n = camera_from_gps_en_m(yaw)
    cam_e, cam_n = gps_e + off_e, gps_n + off_n
    lat, lon = city.georef().world_to_geodetic(gps_e, gps_n)
    numsats = int(rng.integers(8, 12))
    records = tuple(_clean(OxtsRecord(
        lat=float(lat[k]), lon=float(lon[k]), alt=city.alt_m + KITTI_OXTS_HEIGHT_M,
        roll=0.0, pitch=0.0, yaw=float(wrap_angle_rad(yaw[k])),
        vn=float(dense.v_north_mps[i]), ve=float(dense.v_east_mps[i]),
        vf=float(dense.speed_mps[i]), vl=0.0, vu=0.0,
        ax=float(dense.accel_forward_mps2[i]), ay=float(dense.accel_left_mps2[i]),
        az=GRAVITY_MPS2, af=float(dense.accel_forward_mps2[i]),
        al=float(dense.accel_left_mps2[i]), au=GRAVITY_MPS2, wx=0.0, wy=0.0,
        wz=float(dense.yaw_rate_rps[i]), wf=0.0, wl=0.0, wu=float(dense.yaw_rate_rps[i]),
        pos_accuracy=0.05, vel_accuracy=0.02, navstat=4, numsats=numsats, posmode=5,
        velmode=5, orimode=0)) for k, i in enumerate(index))
    shown = hide_ground_cars_near(world, np.r_[gps_e, cam_e], np.r_[gps_n, cam_n],
                                  config.clear_cars_radius_m)
    drive = drive_folder(date, number)
    drive_dir = root / 'raw_data' / date / drive
    satmap_dir = root / 'satmap' / date / drive
    stamps = ''.join(f'{format_kitti_timestamp(int(t))}\n' for t in time_ns).encode()
    for sensor in ('image_02', 'oxts'):
        write_bytes_atomic(drive_dir / sensor / 'timestamps.txt', stamps)
    marker = config.drive_camera()
    if marker is not None:
        write_bytes_atomic(drive_dir / CAMERA_MARKER, camera_marker_bytes(marker))
    for k in tqdm(range(config.frames), desc=drive, disable=not progress):
        frame = f'{k:010d}'
        write_bytes_atomic(drive_dir / 'oxts' / 'data' / f'{frame}.txt',
                           (format_oxts_line(records[k]) + '\n').encode())
        image_path = drive_dir / 'image_02' / 'data' / f'{frame}.png'
        if not image_path.is_file():
            frame_seed = item_seed(seed, key, _FRAME, number, k)
            if marker is None:
                pose = CameraPose(float(cam_e[k]), float(cam_n[k]), float(yaw[k]),
                                  KITTI_CAMERA_HEIGHT_M)
                rgb = render_pinhole(shown, pose, KITTI_CAMERA, seed=frame_seed).rgb
            else:
                pose = CameraPose(float(cam_e[k]), float(cam_n[k]), float(yaw[k]),
                                  marker.height_m)
                rgb = render_panorama(shown, pose, *marker.image_hw, seed=frame_seed).rgb
            write_image(image_path, rgb)
        sat_path = satmap_dir / f'{frame}.png'
        if not sat_path.is_file():
            crop = NorthUpCrop(config.satmap_px, config.satmap_px, KITTI_SATMAP_METERS_PER_PX,
                               float(gps_e[k]), float(gps_n[k]))
            write_image(sat_path, render_satellite(
                shown, crop, seed=item_seed(seed, key, _SATMAP, number, k)))
    names = tuple(frame_names(date, number, config.frames))
    rows = ['frame,time_ns,gps_east_m,gps_north_m,camera_east_m,camera_north_m,yaw_rad,'
            'lat_deg,lon_deg']
    rows += [f'{k:010d},{time_ns[k]},{gps_e[k]:.6f},{gps_n[k]:.6f},{cam_e[k]:.6f},'
             f'{cam_n[k]:.6f},{yaw[k]:.9f},{lat[k]:.10f},{lon[k]:.10f}'
             for k in range(config.frames)]
    write_bytes_atomic(root / TRUTH_DIR / f'{drive}.csv', ('\n'.join(rows) + '\n').encode())
    logger.info('KITTI %s/%s: %d frames at %.1f m/s', date, drive, config.frames, speed)
    return KittiDriveExport(date, drive, names, time_ns, gps_e, gps_n, cam_e, cam_n, yaw,
                            records)


def protocol_values(n: int, seed: int, split: str) -> np.ndarray:
    """Seeded (n, 3) test-split values dx, dy, dtheta ~ U(-1, 1) for 'test1' or 'test2'."""
    which = {'test1': 1, 'test2': 2}[split]
    return np.random.default_rng(item_seed(seed, 0xC0FFEE, which)).uniform(-1.0, 1.0, (n, 3))


def write_kitti_split_files(root: str | Path, train: list[str], test1: list[str],
                            test2: list[str], seed: int) -> dict[str, Path]:
    """Write train/test1/test2 split files (possibly empty) into ``root``."""
    root, out = Path(root), {}
    lines = {'train': [f'{name}\n' for name in train]}
    for split, names in (('test1', test1), ('test2', test2)):
        values = protocol_values(len(names), seed, split)
        lines[split] = [f'{name} {dx:.6f} {dy:.6f} {dth:.6f}\n'
                        for name, (dx, dy, dth) in zip(names, values, strict=True)]
    for split, content in lines.items():
        out[split] = root / KITTI_SPLIT_FILES[split]
        write_bytes_atomic(out[split], ''.join(content).encode())
    return out
