"""Export a synthetic city in the official VIGOR layout (read by ``data.vigor.VigorDataset``).

    <root>/<City>/panorama/<panoid>,<lat>,<lon>,.jpg          north-aligned, camera 2 m
    <root>/<City>/satellite/satellite_<lat>_<lon>.png         640 x 640, north-up
    <root>/splits__corrected/<City>/{same_area_balanced_train,same_area_balanced_test,
        pano_label_balanced}__corrected.txt
    <root>/synthetic_vigor.json                               cities, m/px, protocols
    <root>/synthetic_truth/<City>.csv                         camera positions (world frame)

Tiles: 640 px at the city's ``meters_per_px_640`` (tile width T = 640 * mpp), centred on a
grid of step T / 2 anchored at the world's centre, so tiles overlap by half as in VIGOR.
A camera lies in exactly four tiles: the *positive* one has it in its central quarter
(|offset| <= T / 4 on both axes), the three *semi-positives* (ordered by distance) hold it
elsewhere. Cameras are sampled at least 0.75 T + 1 m inside the world, so positive tiles
lie entirely in the world; semi-positives may reach up to T / 2 beyond it (shown as the
renderer's plain outside colour).

Labels follow vigor_labels: (dr, dc) = east_north_m_to_vigor_offset(camera - tile centre),
true pixel (320 + dr, 320 - dc) in VIGOR's convention, i.e. index (319.5 + dr, 319.5 - dc).
File-name coordinates come from the city's Georeference with 8 decimals (about 1 mm).
Same-area split: a seeded share of each city's panoramas is the test set, the rest train.

File writes are atomic (temporary file + rename) and existing files are kept, so an
interrupted export resumes where it stopped; each item's randomness depends only on
(seed, city, item), never on what was already written.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
import io
import json
import logging
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from geodistill_core.data.synthetic.export_io import (
    item_seed,
    write_bytes_atomic,
    write_image,
    write_json_atomic,
)
from geodistill_core.data.synthetic.georef import CITY_INDEX, SyntheticCity, format_degrees
from geodistill_core.data.synthetic.panorama import render_panorama
from geodistill_core.data.synthetic.poses import VIGOR_CAMERA_HEIGHT_M, CameraPose
from geodistill_core.data.synthetic.satellite import render_satellite
from geodistill_core.data.synthetic.street_poses import SURFACES, sample_street_poses
from geodistill_core.data.synthetic.world import World
from geodistill_core.data.vigor import SPLITS_DIR
from geodistill_core.data.vigor_labels import VIGOR_TILE_SIZE_PX, east_north_m_to_vigor_offset
from geodistill_core.geometry.raster import NorthUpCrop

logger = logging.getLogger(__name__)

VIGOR_META_FILE = 'synthetic_vigor.json'
TRUTH_DIR = 'synthetic_truth'
NORTH_YAW_RAD = math.pi / 2.0
_POSES, _PANORAMA, _TILE, _SPLIT = 1, 2, 3, 4  # seed purposes


@dataclass(frozen=True)
class VigorExportConfig:
    """What one city's VIGOR export contains.

    panoramas: number of panoramas; pano_hw: their size (H, W) = (320, 640) or (512, 1024).
    same_area_test_fraction: share of the panoramas in same_area_balanced_test.
    jpeg_quality: of the written panoramas. surfaces: where cameras stand ('road',
    'sidewalk').
    """

    panoramas: int = 100
    pano_hw: tuple[int, int] = (320, 640)
    same_area_test_fraction: float = 0.5
    jpeg_quality: int = 95
    surfaces: tuple[str, ...] = SURFACES

    def __post_init__(self):
        if self.panoramas < 1 or len(self.pano_hw) != 2 or self.pano_hw[1] != 2 * self.pano_hw[0]:
            raise ValueError(f'need >= 1 panorama of size (H, 2H); got {self.panoramas}, '
                             f'{self.pano_hw}')
        if not 0.0 <= self.same_area_test_fraction <= 1.0:
            raise ValueError('same_area_test_fraction must lie in [0, 1]')


def tile_width_m(meters_per_px_640: float) -> float:
    """Ground width T (metres) of a 640-px tile."""
    return VIGOR_TILE_SIZE_PX * meters_per_px_640


def tile_grid_origin_en_m(world: World) -> tuple[float, float]:
    """World position of tile (0, 0): the world's centre."""
    return 0.5 * world.size_m, 0.5 * world.size_m


def tiles_holding(east_m: float, north_m: float, origin_en_m: tuple[float, float],
                  step_m: float) -> list[tuple[int, int]]:
    """The four grid tiles (i east, j north) holding a point: positive first, then the three
    semi-positives by increasing distance of their centres."""
    u = (east_m - origin_en_m[0]) / step_m
    v = (north_m - origin_en_m[1]) / step_m
    block = [(i, j) for i in (math.floor(u), math.floor(u) + 1)
             for j in (math.floor(v), math.floor(v) + 1)]
    return sorted(block, key=lambda ij: ((ij[0] - u) ** 2 + (ij[1] - v) ** 2, ij))


@dataclass(frozen=True)
class VigorPanoTruth:
    """One exported panorama: its camera in the world frame and its four labelled tiles."""

    pano_name: str
    east_m: float
    north_m: float
    lat_deg: float
    lon_deg: float
    sat_names: tuple[str, str, str, str]
    tile_centres_en_m: tuple[tuple[float, float], ...]
    offsets_dr_dc_px: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class VigorCityExport:
    city: str
    panoramas: tuple[VigorPanoTruth, ...]
    tiles: int
    same_area_test: tuple[str, ...]


def split_line(truth: VigorPanoTruth) -> str:
    """The VIGOR label line ``<pano> <sat1> <dr1> <dc1> ... <sat4> <dr4> <dc4>``."""
    parts = [truth.pano_name]
    for name, (dr, dc) in zip(truth.sat_names, truth.offsets_dr_dc_px, strict=True):
        parts += [name, f'{dr:.4f}', f'{dc:.4f}']
    return ' '.join(parts)


def export_vigor_city(world: World, city: SyntheticCity, root: str | Path,
                      config: VigorExportConfig, seed: int, progress: bool = True,
                      ) -> VigorCityExport:
    """Write one city (panoramas, tiles, split files, truth CSV) under ``root``.

    world: the city's world (style city.style). Returns the ground truth of every item.
    """
    root, key = Path(root), CITY_INDEX[city.name]
    if world.style.name != city.style:
        raise ValueError(f'{city.name} has style {city.style!r}, the world {world.style.name!r}')
    mpp = city.meters_per_px_640
    tile_m = tile_width_m(mpp)
    margin_m = 0.75 * tile_m + 1.0
    if world.size_m < 2 * margin_m + 10.0:
        raise ValueError(f'{city.name}: a {world.size_m:g} m world is too small for '
                         f'{tile_m:.1f} m tiles; use at least {2 * margin_m + 10.0:.0f} m')
    poses = sample_street_poses(world, config.panoramas, seed=item_seed(seed, key, _POSES),
                                surfaces=config.surfaces, margin_m=margin_m)
    geo = city.georef()
    lat, lon = geo.world_to_geodetic(poses.east_m, poses.north_m)
    origin, step = tile_grid_origin_en_m(world), 0.5 * tile_m
    tile_names: dict[tuple[int, int], str] = {}

    def tile(ij):
        if ij not in tile_names:
            centre = (origin[0] + ij[0] * step, origin[1] + ij[1] * step)
            t_lat, t_lon = geo.world_to_geodetic(*centre)
            tile_names[ij] = f'satellite_{format_degrees(t_lat)}_{format_degrees(t_lon)}.png'
        return tile_names[ij], (origin[0] + ij[0] * step, origin[1] + ij[1] * step)

    truths, tile_cells = [], []
    for i in range(len(poses)):
        east, north = float(poses.east_m[i]), float(poses.north_m[i])
        cells = tiles_holding(east, north, origin, step)
        names, centres, offsets = [], [], []
        for ij in cells:
            name, centre = tile(ij)
            dr, dc = east_north_m_to_vigor_offset(east - centre[0], north - centre[1], mpp)
            names.append(name)
            centres.append(centre)
            offsets.append((float(dr), float(dc)))
        pano = f'{city.name}_{i:05d},{format_degrees(lat[i])},{format_degrees(lon[i])},.jpg'
        truths.append(VigorPanoTruth(pano, east, north, float(lat[i]), float(lon[i]),
                                     tuple(names), tuple(centres), tuple(offsets)))
        tile_cells.append(cells)

    city_dir = root / city.name
    h, w = config.pano_hw
    for i, truth in enumerate(tqdm(truths, desc=f'{city.name} panoramas', disable=not progress)):
        path = city_dir / 'panorama' / truth.pano_name
        if not path.is_file():
            pose = CameraPose(truth.east_m, truth.north_m, NORTH_YAW_RAD, VIGOR_CAMERA_HEIGHT_M)
            rgb = render_panorama(world, pose, h, w, seed=item_seed(seed, key, _PANORAMA, i)).rgb
            write_image(path, rgb, config.jpeg_quality)
    used = sorted({ij for cells in tile_cells for ij in cells})
    for ij in tqdm(used, desc=f'{city.name} tiles', disable=not progress):
        name, centre = tile(ij)
        path = city_dir / 'satellite' / name
        if not path.is_file():
            crop = NorthUpCrop(VIGOR_TILE_SIZE_PX, VIGOR_TILE_SIZE_PX, mpp, *centre)
            # tile seeds depend on the grid cell only (tile ij is shared by panoramas)
            rgb = render_satellite(world, crop, seed=item_seed(seed, key, _TILE,
                                                               ij[0] + 10_000, ij[1] + 10_000))
            write_image(path, rgb)
    order = np.random.default_rng(item_seed(seed, key, _SPLIT)).permutation(len(truths))
    n_test = int(round(config.same_area_test_fraction * len(truths)))
    is_test = np.zeros(len(truths), dtype=bool)
    is_test[order[:n_test]] = True
    lines = [split_line(t) for t in truths]
    split_dir = root / SPLITS_DIR / city.name
    files = {'pano_label_balanced__corrected.txt': lines,
             'same_area_balanced_train__corrected.txt': [
                 s for s, t in zip(lines, is_test, strict=True) if not t],
             'same_area_balanced_test__corrected.txt': [
                 s for s, t in zip(lines, is_test, strict=True) if t]}
    for name, content in files.items():
        write_bytes_atomic(split_dir / name, ''.join(f'{s}\n' for s in content).encode())
    write_truth_csv(root / TRUTH_DIR / f'{city.name}.csv', truths)
    logger.info('VIGOR %s: %d panoramas, %d tiles under %s', city.name, len(truths), len(used),
                city_dir)
    return VigorCityExport(city.name, tuple(truths), len(used),
                           tuple(t.pano_name for t, k in zip(truths, is_test, strict=True) if k))


def write_truth_csv(path: Path, truths) -> None:
    """Per panorama: camera world position, lat/lon, positive tile and its centre (the
    panorama names hold commas, so they are quoted: read with the csv module)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator='\n')
    writer.writerow(['pano_name', 'east_m', 'north_m', 'lat_deg', 'lon_deg', 'positive_sat',
                     'tile_east_m', 'tile_north_m'])
    for t in truths:
        writer.writerow([t.pano_name, f'{t.east_m:.6f}', f'{t.north_m:.6f}',
                         f'{t.lat_deg:.10f}', f'{t.lon_deg:.10f}', t.sat_names[0],
                         f'{t.tile_centres_en_m[0][0]:.6f}', f'{t.tile_centres_en_m[0][1]:.6f}'])
    write_bytes_atomic(path, text.getvalue().encode())


def write_vigor_meta(root: str | Path, cities: list[SyntheticCity], train_cities, test_cities,
                     extra: dict | None = None) -> Path:
    """``<root>/synthetic_vigor.json``: per-city m/px, styles, datums and the protocols.

    Pass ``meters_per_px_640`` and the city lists to VigorDataset (read_vigor_meta).
    """
    meta = {'meters_per_px_640': {c.name: c.meters_per_px_640 for c in cities},
            'cities': {c.name: c.to_json() for c in cities},
            'cross_area': {'train': list(train_cities), 'test': list(test_cities)},
            'same_area': [c.name for c in cities], **(extra or {})}
    path = Path(root) / VIGOR_META_FILE
    write_json_atomic(path, meta)
    return path


def read_vigor_meta(root: str | Path) -> dict:
    """The export's metadata: use ``meters_per_px_640`` and ``cross_area`` with VigorDataset,
    e.g. ``VigorDataset(root, cities=m['cross_area']['test'], split='test', area='cross',
    meters_per_px_640=m['meters_per_px_640'])``."""
    path = Path(root) / VIGOR_META_FILE
    if not path.is_file():
        raise FileNotFoundError(f'{path} not found: not a synthetic VIGOR export (run '
                                'train/make_synthetic.py --layout vigor)')
    return json.loads(path.read_text())
