"""Which camera a KITTI-layout drive's ``image_02`` holds: KITTI's pinhole or a 360 panorama.

KITTI raw drives are pinhole (rectified, ``P_rect_02``) and carry no marker. A drive whose
``image_02`` holds equirectangular panoramas (e.g. a synthetic ``camera='panorama'`` drive,
``data.synthetic.export_kitti``) carries ``<drive_dir>/image_02/camera.json``::

    {"format": "geodistill_drive_camera", "format_version": 1,
     "camera_model": "panorama", "projection": "equirectangular", "image_hw": [H, W],
     "forward_m": 1.08, "right_m": 0.26, "height_m": 2.0, "centre_column": "..."}

forward_m, right_m: the camera's position relative to the OXTS (GPS/IMU) point in the
vehicle frame; height_m: its optical centre above the ground. Panorama convention (method.md
section 6): the centre column looks along the vehicle's forward axis (the OXTS yaw), azimuth
grows clockwise to the right, row 0 looks up. Its ``calib_cam_to_cam.txt`` gives S_rect_02 =
the panorama size and an all-zero P_rect_02 (no pinhole projection).
"""
from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path

CAMERA_MARKER = Path('image_02') / 'camera.json'
"""The marker's path inside a drive folder."""
CAMERA_MODELS = ('pinhole', 'panorama')
MARKER_FORMAT = 'geodistill_drive_camera'
CENTRE_COLUMN = 'vehicle forward (OXTS yaw); azimuth clockwise to the right; row 0 looks up'


@dataclass(frozen=True)
class DriveCamera:
    """A drive's camera: model, image size (H, W), position from the OXTS point (vehicle
    frame, metres) and optical-centre height above the ground (metres)."""

    camera_model: str
    image_hw: tuple[int, int]
    forward_m: float
    right_m: float
    height_m: float

    def __post_init__(self):
        if self.camera_model not in CAMERA_MODELS:
            raise ValueError(f'camera_model must be one of {CAMERA_MODELS}, got '
                             f'{self.camera_model!r}')
        if len(self.image_hw) != 2 or min(self.image_hw) <= 0 or not self.height_m > 0:
            raise ValueError(f'bad camera: image_hw {self.image_hw}, height_m {self.height_m}')

    def to_json(self) -> dict:
        return {'format': MARKER_FORMAT, 'format_version': 1,
                'camera_model': self.camera_model,
                'projection': 'equirectangular' if self.camera_model == 'panorama' else
                'pinhole', 'image_hw': [int(v) for v in self.image_hw],
                'forward_m': self.forward_m, 'right_m': self.right_m, 'height_m': self.height_m,
                'centre_column': CENTRE_COLUMN}


def camera_marker_bytes(camera: DriveCamera) -> bytes:
    """The marker file's content (indented, key-sorted JSON, one trailing newline)."""
    return (json.dumps(camera.to_json(), indent=2, sort_keys=True) + '\n').encode()


def read_drive_camera(drive_dir: str | Path) -> DriveCamera | None:
    """The drive's camera marker, or None when it has none (a KITTI pinhole drive)."""
    path = Path(drive_dir) / CAMERA_MARKER
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get('format') != MARKER_FORMAT:
            raise ValueError(f'format is {record.get("format")!r}, not {MARKER_FORMAT!r}')
        return DriveCamera(str(record['camera_model']),
                           tuple(int(v) for v in record['image_hw']),
                           float(record['forward_m']), float(record['right_m']),
                           float(record['height_m']))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f'{path} is not a valid drive camera marker ({err}); fix or delete '
                         'it (no marker = a KITTI pinhole drive)') from None
