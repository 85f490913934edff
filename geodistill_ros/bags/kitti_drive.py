"""One KITTI raw drive in the official layout, and the vehicle frames used for its bag.

Layout (``drive_dir`` = ``raw_data/<date>/<date>_drive_<nnnn>_sync``)::

    <drive_dir>/image_02/data/<frame>.png     rectified left colour image
    <drive_dir>/image_02/timestamps.txt       one UTC line per frame (nanoseconds)
    <drive_dir>/oxts/data/<frame>.txt         one 30-field OXTS line
    <drive_dir>/oxts/timestamps.txt           one UTC line per frame
    <drive_dir>/../calib_cam_to_cam.txt       P_rect_02, S_rect_02

Frame ``<frame>`` (e.g. ``0000000042``) takes line 42 of each timestamps file. Stamps are
parsed as UTC with ``geodistill_core.data.oxts.parse_kitti_timestamp`` (integer
nanoseconds, never the local time zone).

Vehicle frames (REP-103: x forward, y left, z up):

- ``base_link`` is the OXTS GPS/IMU point: the point whose latitude/longitude/altitude the
  OXTS lines give, with the OXTS attitude (roll, pitch, yaw; yaw 0 = east, CCW). So the
  ground-truth fix and the ground-truth pose describe the same point.
- ``gps`` coincides with ``base_link`` (the frame_id of the NavSatFix messages).
- ``camera_color_left`` (image_02, optical frame: z forward, x right, y down) sits at
  ``KITTI_GPS_TO_CAMERA_FORWARD_M`` forward and ``KITTI_GPS_TO_CAMERA_RIGHT_M`` right of
  base_link (``geodistill_core.data.kitti``, the Shi & Li convention used for training), and
  ``KITTI_CAMERA_HEIGHT_M - KITTI_OXTS_HEIGHT_M`` above it (KITTI sensor setup, Geiger et al.
  IJRR 2013: cameras 1.65 m, GPS/IMU 0.93 m above the ground). The node's
  ``camera_offset`` for these bags is therefore x = 1.08, y = -0.26, z = 0.72, yaw = 0.
"""
from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from pathlib import Path

import numpy as np

from geodistill_core.data.kitti import (
    KITTI_CAMERA_HEIGHT_M,
    KITTI_GPS_TO_CAMERA_FORWARD_M,
    KITTI_GPS_TO_CAMERA_RIGHT_M,
    KittiCalib,
    read_kitti_calib,
)
from geodistill_core.data.oxts import OxtsRecord, read_kitti_timestamps_ns, read_oxts_file

logger = logging.getLogger(__name__)

KITTI_OXTS_HEIGHT_M = 0.93
"""Height of the OXTS GPS/IMU unit above the ground (KITTI sensor setup), metres."""

MAP_FRAME = 'map'
BASE_FRAME = 'base_link'
GPS_FRAME = 'gps'
CAMERA_FRAME = 'camera_color_left'

DRIVE_LAYOUT_HELP = (
    'expected a KITTI raw drive: <date>/<date>_drive_<nnnn>_sync/{image_02/data/*.png, '
    'image_02/timestamps.txt, oxts/data/*.txt, oxts/timestamps.txt} and '
    '<date>/calib_cam_to_cam.txt')


@dataclass(frozen=True)
class CameraMount:
    """The camera in base_link: position (metres) and the optical frame's orientation."""

    x_m: float = KITTI_GPS_TO_CAMERA_FORWARD_M
    y_m: float = -KITTI_GPS_TO_CAMERA_RIGHT_M
    z_m: float = round(KITTI_CAMERA_HEIGHT_M - KITTI_OXTS_HEIGHT_M, 9)  # 0.72
    # base_link -> optical frame (z forward, x right, y down), quaternion x, y, z, w
    quaternion_xyzw: tuple[float, float, float, float] = (-0.5, 0.5, -0.5, 0.5)

    def node_camera_offset(self) -> dict:
        """The node's camera_offset.* parameters for this mount (yaw of the optical axis)."""
        return {'x_m': self.x_m, 'y_m': self.y_m, 'z_m': self.z_m, 'yaw_deg': 0.0}


@dataclass(frozen=True)
class DriveFrame:
    """One synchronized frame: the image and the OXTS record with their UTC stamps."""

    name: str  # file stem, e.g. '0000000042'
    image_path: Path
    image_stamp_ns: int
    oxts: OxtsRecord
    oxts_stamp_ns: int


@dataclass(frozen=True)
class KittiDrive:
    drive_dir: Path
    calib: KittiCalib
    frames: tuple[DriveFrame, ...]

    @property
    def date(self) -> str:
        return self.drive_dir.parent.name

    @property
    def drive(self) -> str:
        return self.drive_dir.name


def read_timestamps_ns(path: Path) -> list[int]:
    """A KITTI timestamps.txt -> integer UTC nanoseconds per line; errors name file:line."""
    if not path.is_file():
        raise FileNotFoundError(f'KITTI timestamps not found: {path}; {DRIVE_LAYOUT_HELP}')
    return read_kitti_timestamps_ns(path)


def _stamp(stamps: list[int], name: str, path: Path) -> int:
    index = int(name)
    if index >= len(stamps):
        raise ValueError(f'frame {name} has no line in the {len(stamps)}-line {path}')
    return stamps[index]


def read_kitti_drive(drive_dir: str | Path, max_frames: int | None = None) -> KittiDrive:
    """Read the frame list, stamps, OXTS records and calibration of one drive (not images)."""
    drive_dir = Path(drive_dir)
    image_dir, oxts_dir = drive_dir / 'image_02', drive_dir / 'oxts'
    if not (image_dir / 'data').is_dir() or not (oxts_dir / 'data').is_dir():
        raise FileNotFoundError(f'{drive_dir} lacks image_02/data or oxts/data; '
                                f'{DRIVE_LAYOUT_HELP}')
    if max_frames is not None and max_frames <= 0:
        raise ValueError(f'max_frames must be positive or None, got {max_frames}')
    images = sorted((image_dir / 'data').glob('*.png'))
    if not images:
        raise FileNotFoundError(f'no PNG images in {image_dir / "data"}; {DRIVE_LAYOUT_HELP}')
    bad = [p.name for p in images if not p.stem.isdigit()]
    if bad:
        raise ValueError(f'KITTI frame names must be numbers, got {bad[:3]} in {image_dir}')
    images = images[:max_frames]
    calib = read_kitti_calib(drive_dir.parent / 'calib_cam_to_cam.txt')
    image_stamps = read_timestamps_ns(image_dir / 'timestamps.txt')
    oxts_stamps = read_timestamps_ns(oxts_dir / 'timestamps.txt')
    frames = []
    for path in images:
        oxts_path = oxts_dir / 'data' / f'{path.stem}.txt'
        if not oxts_path.is_file():
            raise FileNotFoundError(f'no OXTS record for image {path}: {oxts_path} is '
                                    'missing (use the *_sync drive, whose folders match)')
        oxts = read_oxts_file(oxts_path)
        if not all(math.isfinite(v) for v in (oxts.lat, oxts.lon, oxts.alt, oxts.yaw)):
            raise ValueError(f'{oxts_path}: non-finite position or yaw')
        frames.append(DriveFrame(
            name=path.stem, image_path=path,
            image_stamp_ns=_stamp(image_stamps, path.stem, image_dir / 'timestamps.txt'),
            oxts=oxts,
            oxts_stamp_ns=_stamp(oxts_stamps, path.stem, oxts_dir / 'timestamps.txt')))
    logger.info('KITTI drive %s: %d frames', drive_dir, len(frames))
    return KittiDrive(drive_dir, calib, tuple(frames))


def quaternion_xyzw_from_rpy(roll_rad: float, pitch_rad: float,
                             yaw_rad: float) -> tuple[float, float, float, float]:
    """R = Rz(yaw) Ry(pitch) Rx(roll) (ZYX, as OXTS and REP-103) as (x, y, z, w)."""
    cr, sr = math.cos(roll_rad / 2), math.sin(roll_rad / 2)
    cp, sp = math.cos(pitch_rad / 2), math.sin(pitch_rad / 2)
    cy, sy = math.cos(yaw_rad / 2), math.sin(yaw_rad / 2)
    return (sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy)


def fix_covariance_enu_m2(oxts: OxtsRecord) -> np.ndarray:
    """(3, 3) covariance of a ground-truth fix: pos_accuracy^2 on east, north and up.

    OXTS gives one horizontal accuracy (north/east, metres); it stands in for up too.
    """
    return np.eye(3) * float(oxts.pos_accuracy) ** 2
