"""Named synthetic-data presets and ``make_synthetic``: write them in the official layouts.

    make_synthetic('tiny', Path('data/synthetic_tiny'), seed=0, layout='both') -> Path

Output (``out``)::

    out/vigor/    VIGOR layout (export_vigor) + synthetic_vigor.json (cities, m/px, protocols)
    out/kitti/    KITTI layout (export_kitti) + synthetic_kitti.json (cities, dates, drives)
    out/maps/     <City>.tif UTM GeoTIFF of each KITTI city's world (+ <City>.json sidecar)

| preset | worlds (size, cell) | VIGOR | KITTI drives x frames (10 Hz) | maps |
|---|---|---|---|---|
| tiny | 160 m, 0.25 m | 6 panoramas x 2 cities | (2 train + 1 test1) x 3, 1 test2 x 3 | 2 |
| bench | 400 m, 0.125 m | 150 panoramas x 4 cities | 3 x (2 train + 1 test1) x 50, 2 x 50 | 4 |
| bench_vigor | 400 m, 0.125 m | 800 panoramas x 4 cities | - | - |
| demo | 480 m, 0.125 m | - | one test2 drive x 300 (SynthOldTown) | 1 |
| demo_panorama | 480 m, 0.125 m | - | the same drive with a 360 camera (panorama) | 1 |
| calibration | 480 m, 0.125 m | - | one drive x 300 per city (4 styles): validation | 4 |
| calibration_panorama | 480 m, 0.125 m | - | the same with a 360 camera (panorama) | 4 |

tiny uses SynthDowntown (train) and SynthOldTown (test); bench and bench_vigor all four
cities (bench_vigor is the GeoDistill benchmark's data: bench/bench_geodistill.py). Panoramas
320 x 640 JPEG; tiles 640 x 640 PNG; KITTI images 1242 x 375 PNG, satmaps 832 x 832 PNG;
maps 0.2 m/px. demo_panorama's image_02 holds 320 x 640 equirectangular PNG panoramas
(export_kitti ``camera='panorama'``: centre column = heading, camera 2 m up).

Cross-area protocol (both layouts): the training cities have styles grid_downtown,
suburb_organic and industrial; old_town is never used for training (VIGOR cross-area test
city, KITTI test2, and the demo drive). Each city is one world (one style, one datum, a
seed derived from the run's seed) shared by its VIGOR and KITTI exports.

Reruns skip finished work: each layout root holds ``synthetic_config.json`` (the preset and
seed; a rerun with another config is refused) and, when complete, ``synthetic_done.json``;
each unit (a city's VIGOR part, a drive, a map) leaves a marker in
``synthetic_done/``, and files are written atomically, so an interrupted run resumes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import logging
from pathlib import Path
import time

from geodistill_core.data.synthetic.config import WorldConfig
from geodistill_core.data.synthetic.export_geotiff import GeoTiffConfig, export_geotiff
from geodistill_core.data.synthetic.export_io import item_seed, write_json_atomic
from geodistill_core.data.synthetic.export_kitti import (
    KittiDriveConfig,
    drive_folder,
    export_kitti_drive,
    frame_names,
    min_satmap_px,
    write_kitti_calib,
    write_kitti_split_files,
)
from geodistill_core.data.synthetic.export_vigor import (
    VigorExportConfig,
    export_vigor_city,
    write_vigor_meta,
)
from geodistill_core.data.synthetic.georef import CITY_INDEX, get_city
from geodistill_core.data.synthetic.world import World, generate_world

logger = logging.getLogger(__name__)

LAYOUTS = ('vigor', 'kitti', 'both')
CONFIG_FILE = 'synthetic_config.json'
DONE_FILE = 'synthetic_done.json'
UNIT_DIR = 'synthetic_done'
KITTI_META_FILE = 'synthetic_kitti.json'
TRAIN_CITIES = ('SynthDowntown', 'SynthSuburb', 'SynthIndustrial')
TEST_CITIES = ('SynthOldTown',)
_WORLD_SEED, _MAP_SEED = 99, 7


@dataclass(frozen=True)
class SyntheticPreset:
    """A synthetic dataset: worlds, VIGOR and KITTI contents, maps.

    world_size_m, cell_m: every city's world. vigor: per-city VIGOR export (None: none);
    vigor_train_cities / vigor_test_cities: cross-area protocol (all of them are exported).
    kitti_drive: every drive's settings (None: no KITTI); kitti_train_cities get
    kitti_train_drives training and kitti_test1_drives test1 drives each, kitti_test2_cities
    get kitti_test2_drives test2 drives each. geotiff: a map of each KITTI city (None: none).
    """

    name: str
    world_size_m: float
    cell_m: float
    vigor: VigorExportConfig | None = None
    vigor_train_cities: tuple[str, ...] = TRAIN_CITIES
    vigor_test_cities: tuple[str, ...] = TEST_CITIES
    kitti_drive: KittiDriveConfig | None = None
    kitti_train_cities: tuple[str, ...] = TRAIN_CITIES
    kitti_test2_cities: tuple[str, ...] = TEST_CITIES
    kitti_train_drives: int = 2
    kitti_test1_drives: int = 1
    kitti_test2_drives: int = 2
    geotiff: GeoTiffConfig | None = field(default_factory=GeoTiffConfig)

    def __post_init__(self):
        for name in (*self.vigor_train_cities, *self.vigor_test_cities,
                     *self.kitti_train_cities, *self.kitti_test2_cities):
            get_city(name)
        for a, b in ((self.vigor_train_cities, self.vigor_test_cities),
                     (self.kitti_train_cities, self.kitti_test2_cities)):
            styles = {get_city(n).style for n in a} & {get_city(n).style for n in b}
            if styles:
                raise ValueError(f'cross-area: styles {sorted(styles)} in train and test')

    def vigor_cities(self) -> tuple[str, ...]:
        return (*self.vigor_train_cities, *self.vigor_test_cities) if self.vigor else ()

    def kitti_drives(self) -> list[tuple[str, int, str]]:
        """(city, drive number, split) of every KITTI drive."""
        if self.kitti_drive is None:
            return []
        out = []
        for city in self.kitti_train_cities:
            roles = (['train'] * self.kitti_train_drives + ['test1'] * self.kitti_test1_drives)
            out += [(city, k + 1, role) for k, role in enumerate(roles)]
        for city in self.kitti_test2_cities:
            out += [(city, k + 1, 'test2') for k in range(self.kitti_test2_drives)]
        return out

    def to_json(self) -> dict:
        out = json.loads(json.dumps(asdict(self)))
        drive = out.get('kitti_drive')
        if drive and drive['camera'] == 'pinhole':  # as before the panorama option: the
            del drive['camera'], drive['pano_hw']    # recorded configs of old runs stay valid
        return out


SYNTHETIC_PRESETS: dict[str, SyntheticPreset] = {p.name: p for p in (
    SyntheticPreset(
        'tiny', world_size_m=160.0, cell_m=0.25,
        vigor=VigorExportConfig(panoramas=6), vigor_train_cities=('SynthDowntown',),
        kitti_drive=KittiDriveConfig(frames=3, margin_m=15.0),
        kitti_train_cities=('SynthDowntown',), kitti_test2_drives=1),
    SyntheticPreset(
        'bench', world_size_m=400.0, cell_m=0.125, vigor=VigorExportConfig(panoramas=150),
        kitti_drive=KittiDriveConfig(frames=50)),
    SyntheticPreset(
        'bench_vigor', world_size_m=400.0, cell_m=0.125,
        vigor=VigorExportConfig(panoramas=800), kitti_drive=None, geotiff=None),
    SyntheticPreset(
        'demo', world_size_m=480.0, cell_m=0.125,
        kitti_drive=KittiDriveConfig(frames=300, margin_m=60.0), kitti_train_cities=(),
        kitti_test2_drives=1),
    SyntheticPreset(
        'demo_panorama', world_size_m=480.0, cell_m=0.125,
        kitti_drive=KittiDriveConfig(frames=300, margin_m=60.0, camera='panorama'),
        kitti_train_cities=(), kitti_test2_drives=1),
    # validation drives for calibrating the embedded models' heatmap likelihood
    # (train/calibrate.py): one 300-frame drive through each of the four city styles in
    # worlds of their own (run them with a seed that no demo or test run uses)
    SyntheticPreset(
        'calibration', world_size_m=480.0, cell_m=0.125,
        kitti_drive=KittiDriveConfig(frames=300, margin_m=60.0), kitti_train_drives=1,
        kitti_test1_drives=0, kitti_test2_drives=1),
    SyntheticPreset(
        'calibration_panorama', world_size_m=480.0, cell_m=0.125,
        kitti_drive=KittiDriveConfig(frames=300, margin_m=60.0, camera='panorama'),
        kitti_train_drives=1, kitti_test1_drives=0, kitti_test2_drives=1),
)}
PRESET_NAMES = tuple(SYNTHETIC_PRESETS)


def get_preset(name: str) -> SyntheticPreset:
    if name not in SYNTHETIC_PRESETS:
        raise ValueError(f'unknown synthetic preset {name!r}; choose one of {PRESET_NAMES}')
    return SYNTHETIC_PRESETS[name]


class _Worlds:
    """Generates each city's world on first use and keeps only the latest one."""

    def __init__(self, preset: SyntheticPreset, seed: int):
        self.preset, self.seed, self.city, self.world = preset, seed, None, None

    def __call__(self, city: str) -> World:
        if city != self.city:
            self.world = None  # free the previous world first
            config = WorldConfig(style=get_city(city).style, size_m=self.preset.world_size_m,
                                 cell_m=self.preset.cell_m)
            start = time.perf_counter()
            self.world = generate_world(config, world_seed(self.seed, city))
            self.city = city
            logger.info('generated %s (%s, %g m) in %.1f s', city, config.style, config.size_m,
                        time.perf_counter() - start)
        return self.world


def world_seed(seed: int, city: str) -> int:
    """The seed of a city's world in a run with ``seed``."""
    return item_seed(seed, CITY_INDEX[city], _WORLD_SEED)


def _check_config(path: Path, config: dict) -> None:
    """Write ``config`` to ``path``, or check that the one there is identical."""
    if path.is_file():
        found = json.loads(path.read_text())
        if found != config:
            raise FileExistsError(f'{path} records another configuration (preset '
                                  f'{found.get("preset", {}).get("name")!r}, seed '
                                  f'{found.get("seed")}); write to a new --out folder or '
                                  'delete this one')
    else:
        write_json_atomic(path, config)


def _unit(root: Path, name: str, config: dict, work) -> None:
    """Run ``work()`` unless the unit's marker says it is done (with this config)."""
    marker = root / UNIT_DIR / f'{name}.json'
    if marker.is_file() and json.loads(marker.read_text()) == config:
        logger.info('skip %s (done)', name)
        return
    work()
    write_json_atomic(marker, config)


def _kitti_city_job(preset: SyntheticPreset, out: Path, city: str, seed: int,
                    config: dict) -> str:
    """One city's KITTI units in a worker process (its own world; markers as usual)."""
    drives = [d for d in preset.kitti_drives() if d[0] == city]
    _kitti_city(preset, out, get_city(city), drives, seed, config, _Worlds(preset, seed),
                False, {'train': [], 'test1': [], 'test2': []})
    return city


def _render_kitti_cities_in_parallel(preset: SyntheticPreset, out: Path, seed: int,
                                     config: dict, jobs: int) -> None:
    """Render the KITTI cities in `jobs` processes; the serial pass then finds every unit
    done and writes the split files (a city's output does not depend on who renders it)."""
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing
    cities = list(dict.fromkeys(d[0] for d in preset.kitti_drives()))
    with ProcessPoolExecutor(min(jobs, len(cities)),
                             mp_context=multiprocessing.get_context('spawn')) as pool:
        for city in pool.map(_kitti_city_job, [preset] * len(cities), [out] * len(cities),
                             cities, [seed] * len(cities), [config] * len(cities)):
            logger.info('KITTI %s rendered', city)


def make_synthetic(preset: str | SyntheticPreset, out_dir: str | Path, seed: int = 0,
                   layout: str = 'both', progress: bool = True, jobs: int = 1) -> Path:
    """Write preset ``preset`` with ``seed`` under ``out_dir`` (see the module docstring).

    layout: 'vigor', 'kitti' or 'both'. jobs: processes rendering the KITTI cities at once
    (one world each in memory, about 1-2 GB per 480 m world; the output is the same for
    any value). Returns ``out_dir``. Finished work is skipped.
    """
    preset = get_preset(preset) if isinstance(preset, str) else preset
    if layout not in LAYOUTS:
        raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f'jobs must be an int >= 1, got {jobs!r}')
    layouts = ('vigor', 'kitti') if layout == 'both' else (layout,)
    if 'vigor' in layouts and preset.vigor is None:
        if layout == 'vigor':
            raise ValueError(f'preset {preset.name!r} has no VIGOR export; use --layout kitti')
        layouts = ('kitti',)
    if 'kitti' in layouts and preset.kitti_drive is None:
        if layout == 'kitti':
            raise ValueError(f'preset {preset.name!r} has no KITTI export; use --layout vigor')
        layouts = tuple(x for x in layouts if x != 'kitti')
    out = Path(out_dir)
    config = {'preset': preset.to_json(), 'seed': int(seed)}
    todo = []
    for name in layouts:
        root = out / name
        root.mkdir(parents=True, exist_ok=True)
        _check_config(root / CONFIG_FILE, config)
        done = root / DONE_FILE
        if done.is_file() and json.loads(done.read_text())['config'] == config:
            logger.info('%s: already complete (%s)', root, done)
        else:
            todo.append(name)
    worlds = _Worlds(preset, seed)
    start = time.perf_counter()
    if jobs > 1 and 'kitti' in todo:
        _render_kitti_cities_in_parallel(preset, out, seed, config, jobs)
    vigor = preset.vigor_cities() if 'vigor' in todo else ()
    drives = preset.kitti_drives() if 'kitti' in todo else []
    splits: dict[str, list[str]] = {'train': [], 'test1': [], 'test2': []}
    for city in dict.fromkeys((*vigor, *(d[0] for d in drives))):  # one world per city
        if city in vigor:
            _unit(out / 'vigor', f'vigor_{city}', {**config, 'unit': city},
                  lambda city=city: export_vigor_city(worlds(city), get_city(city),
                                                      out / 'vigor', preset.vigor, seed,
                                                      progress))
        city_drives = [d for d in drives if d[0] == city]
        if city_drives:
            _kitti_city(preset, out, get_city(city), city_drives, seed, config, worlds,
                        progress, splits)
    if vigor:
        _finish_vigor(preset, out / 'vigor', seed, config)
    if drives:
        _finish_kitti(preset, out / 'kitti', seed, config, splits)
    if todo:
        logger.info('%s: %s written in %.1f s', out, '+'.join(todo), time.perf_counter() - start)
    return out


def _kitti_city(preset, out: Path, city, drives, seed: int, config: dict, worlds,
                progress: bool, splits: dict) -> None:
    """A city's KITTI drives (calibration, frames, satmaps) and its GeoTIFF map."""
    root, date = out / 'kitti', city.kitti_date
    camera = preset.kitti_drive.drive_camera()
    write_kitti_calib(root, date, panorama_hw=None if camera is None else camera.image_hw)
    for _, number, split in drives:
        _unit(root, drive_folder(date, number), {**config, 'unit': [city.name, number]},
              lambda number=number: export_kitti_drive(
                  worlds(city.name), city, root, number, preset.kitti_drive, seed, progress))
        splits[split] += frame_names(date, number, preset.kitti_drive.frames)
    if preset.geotiff is not None:
        _unit(out / 'maps', city.name, {**config, 'unit': city.name},
              lambda: export_geotiff(worlds(city.name), city.georef(),
                                     out / 'maps' / f'{city.name}.tif', preset.geotiff,
                                     seed=item_seed(seed, CITY_INDEX[city.name], _MAP_SEED)))


def _finish_vigor(preset, root: Path, seed: int, config: dict) -> None:
    cities = [get_city(c) for c in preset.vigor_cities()]
    write_vigor_meta(root, cities, preset.vigor_train_cities, preset.vigor_test_cities,
                     {'preset': preset.name, 'seed': seed,
                      'world_seeds': {c.name: world_seed(seed, c.name) for c in cities}})
    write_json_atomic(root / DONE_FILE, {'config': config, 'cities': [c.name for c in cities]})


def _finish_kitti(preset, root: Path, seed: int, config: dict, splits: dict) -> None:
    write_kitti_split_files(root, splits['train'], splits['test1'], splits['test2'], seed)
    drives = preset.kitti_drives()
    cities = list(dict.fromkeys(city for city, _, _ in drives))
    meta = {
        'preset': preset.name, 'seed': seed,
        'cities': {c: {**get_city(c).to_json(), 'world_seed': world_seed(seed, c),
                       'map': f'../maps/{c}.tif' if preset.geotiff else None}
                   for c in cities},
        'drives': [{'city': c, 'date': get_city(c).kitti_date, 'split': s,
                    'drive': drive_folder(get_city(c).kitti_date, n)} for c, n, s in drives],
        'cross_area': {'train': list(preset.kitti_train_cities),
                       'test2': list(preset.kitti_test2_cities)},
        'satmap_px': preset.kitti_drive.satmap_px,
        'min_satmap_px_for_reader_defaults': min_satmap_px(),
    }
    write_json_atomic(root / KITTI_META_FILE, meta)
    write_json_atomic(root / DONE_FILE, {'config': config,
                                         'frames': {k: len(v) for k, v in splits.items()}})
