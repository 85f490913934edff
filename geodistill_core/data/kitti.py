"""KITTI reader for the cross-view protocol of Shi & Li (CVPR 2022), with a north-up satellite.

Layout (``root`` = the KITTI folder; split files in ``split_dir``, default ``root``)::

    <root>/raw_data/<date>/calib_cam_to_cam.txt              P_rect_02 (and S_rect_02)
    <root>/raw_data/<date>/<drive>/image_02/data/<frame>.png  rectified left colour image
    <root>/raw_data/<date>/<drive>/image_02/timestamps.txt    optional, one line per frame
    <root>/raw_data/<date>/<drive>/oxts/data/<frame>.txt      one 30-field OXTS line
    <root>/satmap/<date>/<drive>/<frame>.png                  north-up, centred on the GPS
    <split_dir>/{train,test1,test2}_files.txt                 '<date>/<drive>/<frame>.png'

``<drive>`` is the ``<date>_drive_<nnnn>_sync`` folder. A split line is the frame name
followed by ``dx dy dtheta`` in [-1, 1] (test1: same area, test2: cross area), or by nothing
(the training list): then (dx, dy, dtheta) ~ U(-1, 1)^3 are drawn from
``SeedSequence([seed, index])`` (``[seed, index, epoch]`` after ``set_epoch``).
``'val'`` holds out whole drives of the training list (``val_fraction`` of them, chosen with
``SeedSequence([val_seed])``); ``'train'`` is the rest. Never select a model on test1/test2.

Satellite: each satmap is a square north-up Web Mercator crop at zoom 18, scale 2, centred
on the frame's OXTS (GPS/IMU) position, ``KITTI_SATMAP_METERS_PER_PX`` = 0.19583 m/px at the
file's resolution (latitude 49.015 deg); the distributed files are larger than the crop
(1280 x 1280 px, about 250 m). The reader cuts a ``sat_crop_px`` square (default 512 px,
100.3 m) centred on the noisy position, with sub-pixel bilinear resampling, then resizes it
to ``sat_size`` (metres/pixel scaled by sat_crop_px / sat_size). The satellite stays
north-up: unlike the reference code it is never rotated into the vehicle frame.

Conventions (they reproduce the reference loader's geometry; pinned by tests):

- Map frame ENU; yaw = OXTS yaw (rad, 0 = east, counter-clockwise). forward =
  (cos yaw, sin yaw), left = (-sin yaw, cos yaw), right = -left.
- Camera (image_02) = GPS + 1.08 m forward + 0.26 m right (``CameraGPS_shift_left``).
- (dx, dy) is the camera's offset from the satellite crop centre in the vehicle frame,
  scaled by ``shift_range_m``: camera - centre = shift_range_m * (dx forward + dy left).
  dx > 0: the camera lies ahead of the crop centre; dy > 0: to its left.
- dtheta rotates the prior: yaw_prior = yaw - dtheta * rotation_range_deg (in radians), so
  ``yaw_noise_rad = yaw_prior_rad - yaw_rad = -dtheta * rotation_range``. dtheta > 0: the
  true heading lies counter-clockwise of the prior.
  (The reference test loader negates the file's dx, dy, shifts its heading-aligned satellite
  by them and then rotates it counter-clockwise by dtheta * range; worked through, that is
  exactly the geometry above, so the published test1/test2 files keep their meaning.)

Ground image: resized to ``ground_size`` (256 x 1024); K = P_rect_02[:, :3] scaled with
``geometry.scale_intrinsics`` from the image's own size (checked against S_rect_02).
Camera height 1.65 m.

Item fields (a dict):
    ground (3, H, W) float32 RGB in [0, 1]; K (3, 3) float32 at (H, W)
    satellite (3, S, S) float32 RGB in [0, 1], north-up; sat_meters_per_px () float32
    camera_height_m () float32
    yaw_rad () float32: the OXTS yaw; yaw_prior_rad, yaw_noise_rad () float32
    eval_true_offset_en_m (2,) float32: camera (east, north) minus the satellite centre, in
        metres. For evaluation only: weakly supervised training must not read it.
    shift_dx_dy_dtheta (3,) float32: the protocol values used
    timestamp_ns () int64: image_02 time (UTC, ns since epoch), -1 without timestamps.txt
    index () int64; name ('<date>/<drive>/<frame>.png'), date, drive: str
"""
from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from torch.utils.data import Dataset

from geodistill_core.data.oxts import read_kitti_timestamps_ns, read_oxts_file
from geodistill_core.data.samplers import SamplingLayout
from geodistill_core.data.transforms import (
    crop_centred,
    held_out_split,
    item_rng,
    read_rgb_uint8,
    resize_rgb,
    rgb_uint8_to_tensor,
)
from geodistill_core.geodesy import LocalEnu, web_mercator_meters_per_px, wrap_angle_rad
from geodistill_core.geometry import scale_intrinsics

logger = logging.getLogger(__name__)

KITTI_SATMAP_METERS_PER_PX = float(web_mercator_meters_per_px(49.015, 18, 512))
KITTI_CAMERA_HEIGHT_M = 1.65
KITTI_GPS_TO_CAMERA_FORWARD_M = 1.08
KITTI_GPS_TO_CAMERA_RIGHT_M = 0.26
KITTI_SPLIT_FILES = {'train': 'train_files.txt', 'val': 'train_files.txt',
                     'test1': 'test1_files.txt', 'test2': 'test2_files.txt'}
LAYOUT_HELP = (
    'expected the KITTI layout of Shi & Li: <root>/raw_data/<date>/calib_cam_to_cam.txt, '
    '<root>/raw_data/<date>/<drive>/{image_02/data,oxts/data}/<frame>, '
    '<root>/satmap/<date>/<drive>/<frame>.png and split files {train,test1,test2}_files.txt')


@dataclass(frozen=True)
class KittiCalib:
    """The left colour camera's rectified projection and image size from calib_cam_to_cam."""

    P_rect_02: np.ndarray  # (3, 4)
    image_hw: tuple[int, int] | None  # from S_rect_02 (width height in the file)

    @property
    def K(self) -> np.ndarray:
        """Intrinsics (3, 3) of the rectified image, float64."""
        return self.P_rect_02[:, :3].copy()


def read_kitti_calib(path: str | Path) -> KittiCalib:
    """Parse P_rect_02 (12 values) and S_rect_02 (2 values) from calib_cam_to_cam.txt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'KITTI calibration not found: {path}; {LAYOUT_HELP}')
    values = {}
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        key, sep, rest = text.partition(':')
        if sep and key.strip() in ('P_rect_02', 'S_rect_02'):
            try:
                values[key.strip()] = np.array([float(v) for v in rest.split()])
            except ValueError:
                raise ValueError(f'{path}:{number}: {key.strip()} is not numeric') from None
    if 'P_rect_02' not in values or values['P_rect_02'].size != 12:
        raise ValueError(f'{path}: needs P_rect_02 with 12 values')
    image_hw = None
    if 'S_rect_02' in values:
        if values['S_rect_02'].size != 2:
            raise ValueError(f'{path}: S_rect_02 must hold 2 values (width height)')
        width, height = values['S_rect_02']
        image_hw = (round(height), round(width))
    return KittiCalib(values['P_rect_02'].reshape(3, 4), image_hw)


@dataclass(frozen=True)
class KittiEntry:
    """One split line: the frame and its protocol values (None: drawn per item)."""

    date: str
    drive: str
    frame: str  # file stem, e.g. '0000000123'
    dx_dy_dtheta: tuple[float, float, float] | None
    source: str  # '<split file>:<line>'

    @property
    def name(self) -> str:
        return f'{self.date}/{self.drive}/{self.frame}.png'


def read_kitti_split_file(path: Path) -> list[KittiEntry]:
    """Parse ``<date>/<drive>/<frame>.png [dx dy dtheta]`` lines; errors name file:line."""
    if not path.is_file():
        raise FileNotFoundError(f'KITTI split file not found: {path}; {LAYOUT_HELP}')
    entries = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        tokens = text.split()
        if not tokens:
            continue
        where = f'{path}:{number}'
        parts = PurePosixPath(tokens[0]).parts
        if len(parts) != 3 or not parts[2].endswith('.png') or len(tokens) not in (1, 4):
            raise ValueError(f'{where}: expected "<date>/<drive>/<frame>.png [dx dy dtheta]", '
                             f'got {text.strip()[:80]!r}')
        values = None
        if len(tokens) == 4:
            try:
                values = tuple(float(v) for v in tokens[1:])
            except ValueError:
                raise ValueError(f'{where}: dx dy dtheta must be numbers: {tokens[1:]}') from None
            if not all(-1.0 <= v <= 1.0 for v in values):
                raise ValueError(f'{where}: dx dy dtheta must lie in [-1, 1], got {values}')
        entries.append(KittiEntry(parts[0], parts[1], parts[2][:-4], values, where))
    return entries


def camera_from_gps_en_m(yaw_rad):
    """Camera position minus GPS position (east_m, north_m) for a vehicle yaw (rad)."""
    fwd, right = KITTI_GPS_TO_CAMERA_FORWARD_M, KITTI_GPS_TO_CAMERA_RIGHT_M
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return fwd * c + right * s, fwd * s - right * c


def camera_from_centre_en_m(dx, dy, yaw_rad, shift_range_m: float):
    """Protocol (dx, dy) -> camera minus satellite crop centre (east_m, north_m)."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return shift_range_m * (dx * c - dy * s), shift_range_m * (dx * s + dy * c)


@dataclass(frozen=True)
class KittiConfig:
    """Everything that defines a KITTI reader besides its root (save it with results)."""

    split: str = 'train'
    ground_size: tuple[int, int] = (256, 1024)
    sat_crop_px: int = 512
    sat_size: int = 512
    shift_range_m: float = 20.0
    rotation_range_deg: float = 10.0
    seed: int = 0
    val_fraction: float = 0.2
    val_seed: int = 0
    satmap_meters_per_px: float = KITTI_SATMAP_METERS_PER_PX
    camera_height_m: float = KITTI_CAMERA_HEIGHT_M

    def __post_init__(self) -> None:
        if self.split not in KITTI_SPLIT_FILES:
            raise ValueError(f'split must be one of {sorted(KITTI_SPLIT_FILES)}, '
                             f'got {self.split!r}')
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f'val_fraction must lie in [0, 1), got {self.val_fraction}')
        if self.split == 'val' and self.val_fraction == 0.0:
            raise ValueError("split='val' needs val_fraction > 0")
        if len(self.ground_size) != 2 or min(self.ground_size) <= 0:
            raise ValueError(f'bad ground_size {self.ground_size}')
        if self.sat_crop_px <= 0 or self.sat_size <= 0 or self.satmap_meters_per_px <= 0:
            raise ValueError(f'bad satellite settings: crop {self.sat_crop_px} px, size '
                             f'{self.sat_size} px, {self.satmap_meters_per_px} m/px')
        if self.shift_range_m < 0 or self.rotation_range_deg < 0:
            raise ValueError('shift_range_m and rotation_range_deg must be >= 0')
        object.__setattr__(self, 'ground_size', tuple(int(s) for s in self.ground_size))


class KittiDataset(Dataset):
    """KITTI frames with a north-up satellite crop around a noisy position (module doc).

    root: the KITTI folder. split: 'train', 'val', 'test1' or 'test2'.
    split_dir: folder of the split files (default: root). Other keyword arguments are the
    fields of ``KittiConfig``.
    """

    def __init__(self, root: str | Path, split: str = 'train',
                 split_dir: str | Path | None = None, **config) -> None:
        self.root = Path(root)
        self.config = KittiConfig(split=split, **config)
        self.epoch: int | None = None
        self._calib_cache: dict[str, KittiCalib] = {}
        self._stamp_cache: dict[Path, tuple[int, ...] | None] = {}
        if not (self.root / 'raw_data').is_dir() or not (self.root / 'satmap').is_dir():
            raise FileNotFoundError(f'KITTI root {self.root} lacks raw_data/ or satmap/; '
                                    f'{LAYOUT_HELP}')
        split_path = Path(split_dir or self.root) / KITTI_SPLIT_FILES[split]
        entries = read_kitti_split_file(split_path)
        if split in ('train', 'val') and self.config.val_fraction > 0:
            entries = held_out_split(entries, [f'{e.date}/{e.drive}' for e in entries],
                                     self.config.val_fraction, self.config.val_seed,
                                     held_out=split == 'val')
        if not entries:
            raise ValueError(f'no KITTI samples for split {split!r} in {split_path}')
        self.entries: tuple[KittiEntry, ...] = tuple(entries)
        logger.info('KITTI %s: %d items from %s', split, len(self.entries), split_path)

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int | None) -> None:
        """Draw missing (dx, dy, dtheta) from ``[seed, index, epoch]`` (None: fixed).

        Call it before the DataLoader iterator of the epoch is created: persistent workers
        keep the copy of the dataset they started with.
        """
        self.epoch = None if epoch is None else int(epoch)

    def protocol_values(self, index: int) -> tuple[float, float, float]:
        """(dx, dy, dtheta) of item ``index``: from the split line, else seeded U(-1, 1)."""
        values = self.entries[index].dx_dy_dtheta
        if values is None:
            values = tuple(item_rng(self.config.seed, index, self.epoch).uniform(-1, 1, 3))
        return tuple(float(v) for v in values)

    def _drive_dir(self, entry: KittiEntry) -> Path:
        return self.root / 'raw_data' / entry.date / entry.drive

    def _calib(self, date: str) -> KittiCalib:
        if date not in self._calib_cache:
            self._calib_cache[date] = read_kitti_calib(
                self.root / 'raw_data' / date / 'calib_cam_to_cam.txt')
        return self._calib_cache[date]

    def _timestamps_ns(self, entry: KittiEntry) -> tuple[int, ...] | None:
        path = self._drive_dir(entry) / 'image_02' / 'timestamps.txt'
        if path not in self._stamp_cache:
            self._stamp_cache[path] = (tuple(read_kitti_timestamps_ns(path))
                                       if path.is_file() else None)
        return self._stamp_cache[path]

    def _oxts(self, entry: KittiEntry):
        path = self._drive_dir(entry) / 'oxts' / 'data' / f'{entry.frame}.txt'
        if not path.is_file():
            raise FileNotFoundError(f'KITTI OXTS file not found: {path}; {LAYOUT_HELP}')
        return read_oxts_file(path)

    def _timestamp_ns(self, entry: KittiEntry) -> int:
        stamps = self._timestamps_ns(entry)
        if stamps is None:
            return -1
        frame = int(entry.frame)
        if frame >= len(stamps):
            raise ValueError(f'frame {frame} has no line in the {len(stamps)}-line '
                             f'timestamps.txt of {self._drive_dir(entry) / "image_02"}')
        return stamps[frame]

    def _ground(self, entry: KittiEntry) -> tuple[torch.Tensor, torch.Tensor]:
        path = self._drive_dir(entry) / 'image_02' / 'data' / f'{entry.frame}.png'
        image = read_rgb_uint8(path)
        calib = self._calib(entry.date)
        image_hw = tuple(image.shape[:2])
        if calib.image_hw is not None and calib.image_hw != image_hw:
            raise ValueError(f'{path} is {image_hw} (H, W) but S_rect_02 of {entry.date} '
                             f'says {calib.image_hw}')
        K = scale_intrinsics(torch.from_numpy(calib.K), image_hw, self.config.ground_size)
        return rgb_uint8_to_tensor(resize_rgb(image, self.config.ground_size)), K.float()

    def _centre_from_gps_en_m(self, yaw_rad: float, dx: float, dy: float):
        cam_e, cam_n = camera_from_gps_en_m(yaw_rad)
        off_e, off_n = camera_from_centre_en_m(dx, dy, yaw_rad, self.config.shift_range_m)
        return cam_e - off_e, cam_n - off_n

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.entries):
            raise IndexError(f'index {index} out of range for {len(self.entries)} items')
        entry, cfg = self.entries[index], self.config
        dx, dy, dtheta = self.protocol_values(index)
        yaw_rad = float(self._oxts(entry).yaw)
        ground, K = self._ground(entry)
        sat_path = self.root / 'satmap' / entry.date / entry.drive / f'{entry.frame}.png'
        satmap = read_rgb_uint8(sat_path)
        if satmap.shape[0] != satmap.shape[1]:
            raise ValueError(f'KITTI satmap must be square, got {satmap.shape[:2]}: {sat_path}')
        centre_e, centre_n = self._centre_from_gps_en_m(yaw_rad, dx, dy)
        mid_px = (satmap.shape[0] - 1) / 2.0
        crop = crop_centred(satmap, mid_px - centre_n / cfg.satmap_meters_per_px,
                            mid_px + centre_e / cfg.satmap_meters_per_px, cfg.sat_crop_px,
                            what=str(sat_path))
        satellite = rgb_uint8_to_tensor(resize_rgb(crop, (cfg.sat_size, cfg.sat_size)))
        true_e, true_n = camera_from_centre_en_m(dx, dy, yaw_rad, cfg.shift_range_m)
        noise_rad = -dtheta * math.radians(cfg.rotation_range_deg)
        return {
            'ground': ground,
            'K': K,
            'satellite': satellite,
            'sat_meters_per_px': torch.tensor(
                cfg.satmap_meters_per_px * cfg.sat_crop_px / cfg.sat_size),
            'camera_height_m': torch.tensor(cfg.camera_height_m),
            'yaw_rad': torch.tensor(yaw_rad),
            'yaw_prior_rad': torch.tensor(wrap_angle_rad(yaw_rad + noise_rad)),
            'yaw_noise_rad': torch.tensor(noise_rad),
            'eval_true_offset_en_m': torch.tensor([float(true_e), float(true_n)]),
            'shift_dx_dy_dtheta': torch.tensor([dx, dy, dtheta]),
            'timestamp_ns': torch.tensor(self._timestamp_ns(entry), dtype=torch.int64),
            'index': torch.tensor(index, dtype=torch.int64),
            'name': entry.name,
            'date': entry.date,
            'drive': entry.drive,
        }

    def sampling_layout(self) -> SamplingLayout:
        """Noisy positions (the satellite crop centres, local ENU) and one key per frame.

        Reads every OXTS file of the split once; uses the GPS position plus the protocol's
        shift, which is what a weakly supervised pipeline is given.
        """
        records = [self._oxts(e) for e in self.entries]
        enu = LocalEnu(records[0].lat, records[0].lon, records[0].alt)
        east, north, up = enu.to_enu([r.lat for r in records], [r.lon for r in records],
                                     [r.alt for r in records])
        positions = np.stack([east, north, up], axis=-1)
        for i, record in enumerate(records):
            dx, dy, _ = self.protocol_values(i)
            centre_e, centre_n = self._centre_from_gps_en_m(record.yaw, dx, dy)
            positions[i, :2] += (centre_e, centre_n)
        return SamplingLayout(positions, tuple(frozenset({e.name}) for e in self.entries))
