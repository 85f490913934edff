"""VIGOR reader (official layout, corrected labels), positive-only protocol, seeded yaw noise.

Layout (``root`` = the VIGOR folder)::

    <root>/<City>/panorama/<panoid>,<lat>,<lon>,.jpg
    <root>/<City>/satellite/satellite_<lat>_<lon>.png             640 x 640, north-up
    <root>/splits__corrected/<City>/same_area_balanced_train__corrected.txt
    <root>/splits__corrected/<City>/same_area_balanced_test__corrected.txt
    <root>/splits__corrected/<City>/pano_label_balanced__corrected.txt

Protocols (label file per city, as in the VIGOR / G2SWeakly / CCVPE reference code):

- ``area='same'``: cities NewYork, Seattle, SanFrancisco, Chicago; ``split='train'`` and
  ``'val'`` read ``same_area_balanced_train__corrected.txt``, ``split='test'`` reads
  ``same_area_balanced_test__corrected.txt``.
- ``area='cross'``: every split reads ``pano_label_balanced__corrected.txt`` (all
  panoramas of a city); ``'train'``/``'val'`` use NewYork + Seattle, ``'test'`` uses
  SanFrancisco + Chicago.
- ``'val'`` is carved out of the training lines (never out of a test split): whole
  positive satellite tiles, a fraction ``val_fraction`` of them, chosen with
  ``SeedSequence([val_seed])`` (``transforms.held_out_mask``); ``'train'`` is the rest.
  ``val_fraction=0`` gives the full official training set (and no ``'val'``).
- Passing ``cities`` overrides the protocol's list (e.g. a synthetic export); cities
  outside ``VIGOR_METERS_PER_PX_640`` need ``meters_per_px_640``.

Labels (``vigor_labels``): the camera's 640-px pixel is (320 + dr, 320 - dc), so its offset
from the tile centre is east = -dc * mpp_640, north = -dr * mpp_640 metres. A tile is assumed
to cover 640 * mpp_640 metres whatever its file size; resampled to S px its resolution is
mpp_640 * 640 / S. ``positive_only=True``: one item per line, the positive tile (camera in its
central quarter); ``False``: one item per (line, tile) for the positive and every
semi-positive whose offset keeps the camera inside the tile (|dr|, |dc| < 320).

Yaw: VIGOR panoramas are north-aligned, so the centre column looks north (map yaw +pi/2,
0 = east, counter-clockwise). With ``yaw_noise_deg = r > 0`` each item draws
n ~ U(-r, r) from ``SeedSequence([seed, index])`` (``[seed, index, epoch]`` after
``set_epoch(epoch)``) and the panorama is rolled (``geometry.roll_panorama`` by -n) so that
its centre column looks along yaw = pi/2 - n while the prior stays pi/2. In every reader
``yaw_noise_rad = yaw_prior_rad - yaw_rad`` (the error of the prior).

Item fields (a dict; ``DataLoader``'s default collate stacks it):
    ground (3, H, W) float32 RGB in [0, 1] (no backbone normalisation), H, W = pano_size
    satellite (3, S, S) float32 RGB in [0, 1], north-up, S = sat_size
    sat_meters_per_px () float32: metres per pixel at S
    camera_height_m () float32 (2 m for VIGOR)
    yaw_rad, yaw_prior_rad, yaw_noise_rad () float32 (see above)
    eval_true_offset_en_m (2,) float32: camera (east, north) minus the satellite centre, in
        metres. For evaluation only: weakly supervised training must not read it.
    index () int64; city, pano_id, pano_name, sat_name: str
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from geodistill_core.data.samplers import SamplingLayout
from geodistill_core.data.transforms import (
    held_out_split,
    item_rng,
    read_rgb_uint8,
    resize_rgb,
    rgb_uint8_to_tensor,
)
from geodistill_core.data.vigor_labels import (
    VIGOR_METERS_PER_PX_640,
    VIGOR_TILE_SIZE_PX,
    parse_vigor_pano_name,
    parse_vigor_sat_name,
    parse_vigor_split_line,
    vigor_offset_to_east_north_m,
)
from geodistill_core.geodesy import LocalEnu, wrap_angle_rad
from geodistill_core.geometry import roll_panorama

logger = logging.getLogger(__name__)

VIGOR_CITIES = ('NewYork', 'Seattle', 'SanFrancisco', 'Chicago')
CROSS_AREA_TRAIN_CITIES = ('NewYork', 'Seattle')
CROSS_AREA_TEST_CITIES = ('SanFrancisco', 'Chicago')
VIGOR_CAMERA_HEIGHT_M = 2.0
VIGOR_PANO_YAW_RAD = math.pi / 2.0
SPLITS_DIR = 'splits__corrected'
LAYOUT_HELP = (
    'expected the official VIGOR layout: <root>/<City>/panorama/<panoid>,<lat>,<lon>,.jpg, '
    '<root>/<City>/satellite/satellite_<lat>_<lon>.png and <root>/splits__corrected/<City>/'
    '{same_area_balanced_train,same_area_balanced_test,pano_label_balanced}__corrected.txt')


@dataclass(frozen=True)
class VigorConfig:
    """Everything that defines a VIGOR reader besides its root (save it with results)."""

    split: str = 'train'
    area: str = 'same'
    cities: tuple[str, ...] | None = None
    positive_only: bool = True
    pano_size: tuple[int, int] = (320, 640)
    sat_size: int = 512
    yaw_noise_deg: float = 0.0
    seed: int = 0
    val_fraction: float = 0.2
    val_seed: int = 0
    camera_height_m: float = VIGOR_CAMERA_HEIGHT_M
    meters_per_px_640: Mapping[str, float] = field(
        default_factory=lambda: dict(VIGOR_METERS_PER_PX_640))

    def __post_init__(self) -> None:
        if self.split not in ('train', 'val', 'test'):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {self.split!r}")
        if self.area not in ('same', 'cross'):
            raise ValueError(f"area must be 'same' or 'cross', got {self.area!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f'val_fraction must lie in [0, 1), got {self.val_fraction}')
        if self.split == 'val' and self.val_fraction == 0.0:
            raise ValueError("split='val' needs val_fraction > 0")
        if len(self.pano_size) != 2 or min(self.pano_size) <= 0 or self.sat_size <= 0:
            raise ValueError(f'bad sizes: pano_size={self.pano_size}, sat_size={self.sat_size}')
        if not 0.0 <= self.yaw_noise_deg <= 180.0:
            raise ValueError(f'yaw_noise_deg must lie in [0, 180], got {self.yaw_noise_deg}')
        cities = self.cities
        if cities is None:
            cities = (VIGOR_CITIES if self.area == 'same' else CROSS_AREA_TEST_CITIES
                      if self.split == 'test' else CROSS_AREA_TRAIN_CITIES)
        object.__setattr__(self, 'cities', tuple(cities))
        object.__setattr__(self, 'pano_size', tuple(int(s) for s in self.pano_size))
        object.__setattr__(self, 'meters_per_px_640', dict(self.meters_per_px_640))
        for city in self.cities:
            if city not in self.meters_per_px_640:
                raise ValueError(f'no metres/pixel for city {city!r}; pass meters_per_px_640 '
                                 f'(known: {sorted(self.meters_per_px_640)})')

    def label_file_name(self) -> str:
        """Name of the per-city label file this protocol reads."""
        if self.area == 'cross':
            return 'pano_label_balanced__corrected.txt'
        part = 'test' if self.split == 'test' else 'train'
        return f'same_area_balanced_{part}__corrected.txt'


@dataclass(frozen=True)
class VigorEntry:
    """One item: a panorama and one satellite tile with the camera's (dr, dc) in it.

    tile_names: all four tiles of the panorama's label line (positive first).
    source: ``'<label file>:<line>'`` for error messages.
    """

    city: str
    pano_name: str
    sat_name: str
    dr_px: float
    dc_px: float
    tile_names: tuple[str, ...]
    source: str


def read_vigor_label_file(path: Path, city: str, positive_only: bool = True) -> list[VigorEntry]:
    """Parse one city's label file; malformed lines raise ValueError naming file:line."""
    if not path.is_file():
        raise FileNotFoundError(f'VIGOR label file not found: {path}; {LAYOUT_HELP}')
    entries = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            line = parse_vigor_split_line(text)
        except ValueError as err:
            raise ValueError(f'{path}:{number}: {err}') from None
        tiles = (line.positive, *line.semi_positives)
        names = tuple(t.sat_name for t in tiles)
        for k, tile in enumerate(tiles[:1] if positive_only else tiles):
            if k and max(abs(tile.dr_px), abs(tile.dc_px)) >= VIGOR_TILE_SIZE_PX / 2:
                continue  # semi-positive that does not contain the camera
            entries.append(VigorEntry(city, line.pano_name, tile.sat_name, tile.dr_px,
                                      tile.dc_px, names, f'{path}:{number}'))
    return entries


class VigorDataset(Dataset):
    """VIGOR panoramas with their satellite tile; see the module docstring for the protocol.

    root: the VIGOR folder. cities: override the protocol's cities (None = protocol).
    Other keyword arguments are the fields of ``VigorConfig``.
    """

    def __init__(self, root: str | Path, cities: Sequence[str] | None = None,
                 split: str = 'train', area: str = 'same', **config) -> None:
        self.root = Path(root)
        self.config = VigorConfig(split=split, area=area,
                                  cities=None if cities is None else tuple(cities), **config)
        self.epoch: int | None = None
        if not self.root.is_dir():
            raise FileNotFoundError(f'VIGOR root not found: {self.root}; {LAYOUT_HELP}')
        entries: list[VigorEntry] = []
        for city in self.config.cities:
            for sub in ('panorama', 'satellite'):
                if not (self.root / city / sub).is_dir():
                    raise FileNotFoundError(
                        f'VIGOR city folder not found: {self.root / city / sub}; {LAYOUT_HELP}')
            label_path = self.root / SPLITS_DIR / city / self.config.label_file_name()
            entries += read_vigor_label_file(label_path, city, self.config.positive_only)
        if self.config.split != 'test' and self.config.val_fraction > 0:
            entries = held_out_split(entries, [f'{e.city}/{e.tile_names[0]}' for e in entries],
                                     self.config.val_fraction, self.config.val_seed,
                                     held_out=self.config.split == 'val')
        if not entries:
            raise ValueError(f'no VIGOR samples for {self.config} under {self.root}')
        self.entries: tuple[VigorEntry, ...] = tuple(entries)
        logger.info('VIGOR %s/%s (%s): %d items', self.config.area, self.config.split,
                    ', '.join(self.config.cities), len(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int | None) -> None:
        """Draw yaw noise from ``[seed, index, epoch]`` (None: the fixed ``[seed, index]``).

        Call it before the DataLoader iterator of the epoch is created: persistent workers
        keep the copy of the dataset they started with.
        """
        self.epoch = None if epoch is None else int(epoch)

    def meters_per_px(self, city: str) -> float:
        """Satellite resolution (m/px) of ``city`` at the output size ``sat_size``."""
        return self.config.meters_per_px_640[city] * VIGOR_TILE_SIZE_PX / self.config.sat_size

    def yaw_noise_rad(self, index: int) -> float:
        """Yaw noise n of item ``index`` (rad): prior minus true yaw; 0 without noise."""
        if self.config.yaw_noise_deg == 0.0:
            return 0.0
        u = item_rng(self.config.seed, index, self.epoch).uniform(-1.0, 1.0)
        return float(u * math.radians(self.config.yaw_noise_deg))

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.entries):
            raise IndexError(f'index {index} out of range for {len(self.entries)} items')
        entry = self.entries[index]
        city_dir = self.root / entry.city
        ground = rgb_uint8_to_tensor(resize_rgb(
            read_rgb_uint8(city_dir / 'panorama' / entry.pano_name), self.config.pano_size))
        noise_rad = self.yaw_noise_rad(index)
        if noise_rad != 0.0:
            ground = roll_panorama(ground[None], ground.new_tensor([-noise_rad]))[0]
        sat_rgb = read_rgb_uint8(city_dir / 'satellite' / entry.sat_name)
        if sat_rgb.shape[0] != sat_rgb.shape[1]:
            raise ValueError(f'VIGOR satellite tile must be square, got {sat_rgb.shape[:2]}: '
                             f'{city_dir / "satellite" / entry.sat_name}')
        size = self.config.sat_size
        satellite = rgb_uint8_to_tensor(resize_rgb(sat_rgb, (size, size)))
        east_m, north_m = vigor_offset_to_east_north_m(
            entry.dr_px, entry.dc_px, self.config.meters_per_px_640[entry.city])
        return {
            'ground': ground,
            'satellite': satellite,
            'sat_meters_per_px': torch.tensor(self.meters_per_px(entry.city)),
            'camera_height_m': torch.tensor(self.config.camera_height_m),
            'yaw_rad': torch.tensor(wrap_angle_rad(VIGOR_PANO_YAW_RAD - noise_rad)),
            'yaw_prior_rad': torch.tensor(VIGOR_PANO_YAW_RAD),
            'yaw_noise_rad': torch.tensor(noise_rad),
            'eval_true_offset_en_m': torch.tensor([east_m, north_m]),
            'index': torch.tensor(index, dtype=torch.int64),
            'city': entry.city,
            'pano_id': parse_vigor_pano_name(entry.pano_name).pano_id,
            'pano_name': entry.pano_name,
            'sat_name': entry.sat_name,
        }

    def sampling_layout(self) -> SamplingLayout:
        """Tile centres (local ENU, from the tile file names) and the line's four tiles.

        Uses what a weakly supervised pipeline knows (the tile it was given), never the
        panorama's true position.
        """
        lat_lon = np.array([(s.lat_deg, s.lon_deg) for s in
                            (parse_vigor_sat_name(e.sat_name) for e in self.entries)])
        enu = LocalEnu(float(lat_lon[0, 0]), float(lat_lon[0, 1]))
        east, north, up = enu.to_enu(lat_lon[:, 0], lat_lon[:, 1])
        keys = tuple(frozenset(f'{e.city}/{t}' for t in e.tile_names) for e in self.entries)
        return SamplingLayout(np.stack([east, north, up], axis=-1), keys)
