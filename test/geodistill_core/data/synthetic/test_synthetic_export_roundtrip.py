"""The `tiny` preset written by the CLI and read back through the VIGOR and KITTI readers.

Truth comes from the generator (truth CSVs written next to the data, worlds regenerated
from their seeds); the readers' offsets are checked against it, against the coordinates in
the file names (an independent path through the georeference), and against the pixels
(re-rendered satellite images line up with the files only at zero shift).
"""
import csv
import importlib.util
import json
import math
import os
from pathlib import Path
import time

import numpy as np
import pytest

from geodistill_core.data.kitti import (
    KITTI_SATMAP_METERS_PER_PX,
    KittiDataset,
    camera_from_gps_en_m,
    read_kitti_calib,
)
from geodistill_core.data.oxts import parse_kitti_timestamp, read_oxts_file
from geodistill_core.data.synthetic import (
    KITTI_CAMERA,
    WorldConfig,
    generate_world,
    get_city,
    read_vigor_meta,
    render_satellite,
)
from geodistill_core.data.synthetic.export_kitti import min_satmap_px, protocol_values
from geodistill_core.data.synthetic.presets import get_preset, make_synthetic, world_seed
from geodistill_core.data.transforms import read_rgb_uint8
from geodistill_core.data.vigor import VigorDataset
from geodistill_core.data.vigor_labels import parse_vigor_pano_name, parse_vigor_sat_name
from geodistill_core.geometry.raster import NorthUpCrop
from geodistill_ros.satellite import GeoTiffSource

REPO = Path(__file__).resolve().parents[4]
SEED = 3
PRESET = get_preset('tiny')


def _cli():
    spec = importlib.util.spec_from_file_location('make_synthetic_cli',
                                                  REPO / 'train' / 'make_synthetic.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic') / 'tiny'
    start = time.perf_counter()
    result = _cli().main(['--preset', 'tiny', '--out', str(out), '--seed', str(SEED),
                          '--no-progress'])
    assert result == out
    return out, time.perf_counter() - start


@pytest.fixture(scope='module')
def worlds():
    cache = {}

    def world(city):
        if city not in cache:
            config = WorldConfig(style=get_city(city).style, size_m=PRESET.world_size_m,
                                 cell_m=PRESET.cell_m)
            cache[city] = generate_world(config, world_seed(SEED, city))
        return cache[city]

    return world


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def ncc(a, b):
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def assert_aligned(image, render_at, centre_en, meters_per_px, shift_px=2):
    """The image matches a render at centre_en better than at centres shifted by shift_px."""
    at = ncc(image, render_at(*centre_en))
    assert at > 0.9
    for de, dn in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        moved = (centre_en[0] + de * shift_px * meters_per_px,
                 centre_en[1] + dn * shift_px * meters_per_px)
        assert ncc(image, render_at(*moved)) < at - 0.01


def test_cli_writes_tiny_in_seconds_with_meta(tiny):
    out, seconds = tiny
    assert seconds < 60
    meta = read_vigor_meta(out / 'vigor')
    assert meta['cross_area'] == {'train': ['SynthDowntown'], 'test': ['SynthOldTown']}
    assert meta['meters_per_px_640'] == {'SynthDowntown': 0.110, 'SynthOldTown': 0.108}
    styles = {c: meta['cities'][c]['style'] for c in meta['cities']}
    assert styles['SynthOldTown'] not in {styles[c] for c in meta['cross_area']['train']}
    kitti = json.loads((out / 'kitti' / 'synthetic_kitti.json').read_text())
    assert {d['split'] for d in kitti['drives']} == {'train', 'test1', 'test2'}
    assert kitti['satmap_px'] >= kitti['min_satmap_px_for_reader_defaults']


def test_vigor_read_back_equals_truth(tiny, worlds):
    out, _ = tiny
    root = out / 'vigor'
    meta = read_vigor_meta(root)
    for city in meta['cities']:
        geo = get_city(city).georef()
        truth = {r['pano_name']: r for r in read_csv(root / 'synthetic_truth' / f'{city}.csv')}
        ds = VigorDataset(root, cities=[city], split='train', area='cross', val_fraction=0.0,
                          positive_only=False, meters_per_px_640=meta['meters_per_px_640'])
        assert len({e.pano_name for e in ds.entries}) == PRESET.vigor.panoramas
        for i, entry in enumerate(ds.entries):
            item = ds[i]
            row = truth[entry.pano_name]
            cam = float(row['east_m']), float(row['north_m'])
            # file-name lat/lon = georeference of the true position (< 1 cm)
            name = parse_vigor_pano_name(entry.pano_name)
            np.testing.assert_allclose(geo.geodetic_to_world(name.lat_deg, name.lon_deg), cam,
                                       atol=0.01)
            # reader offset = camera - tile centre, the tile centre from its file name
            sat = parse_vigor_sat_name(entry.sat_name)
            centre = geo.geodetic_to_world(sat.lat_deg, sat.lon_deg)
            offset = item['eval_true_offset_en_m'].double().numpy()
            np.testing.assert_allclose(offset, np.subtract(cam, centre), atol=0.01)
            if entry.sat_name == entry.tile_names[0]:  # positive: central quarter
                assert max(abs(entry.dr_px), abs(entry.dc_px)) <= 160.0
            assert item['yaw_rad'].item() == pytest.approx(math.pi / 2)
        # pixels: a tile file lines up with a fresh render at its labelled centre
        entry = ds.entries[0]
        tile = read_rgb_uint8(root / city / 'satellite' / entry.sat_name)
        assert tile.shape == (640, 640, 3)
        sat = parse_vigor_sat_name(entry.sat_name)
        mpp = meta['meters_per_px_640'][city]
        assert_aligned(tile, lambda e, n, city=city, mpp=mpp: render_satellite(
            worlds(city), NorthUpCrop(640, 640, mpp, e, n), seed=99),
            geo.geodetic_to_world(sat.lat_deg, sat.lon_deg), mpp)


def test_vigor_protocol_files(tiny):
    out, _ = tiny
    root = out / 'vigor'
    meta = read_vigor_meta(root)
    for city in meta['cities']:
        split = root / 'splits__corrected' / city
        every = (split / 'pano_label_balanced__corrected.txt').read_text().splitlines()
        train = (split / 'same_area_balanced_train__corrected.txt').read_text().splitlines()
        test = (split / 'same_area_balanced_test__corrected.txt').read_text().splitlines()
        assert sorted(train + test) == sorted(every) and not set(train) & set(test)
        assert len(test) == round(PRESET.vigor.same_area_test_fraction * len(every))
        for line in every:
            tokens = line.split()
            assert len(set(tokens[1::3])) == 4  # four distinct tiles
            offsets = np.array(tokens[1:], dtype=object).reshape(4, 3)[:, 1:].astype(float)
            assert np.all(np.abs(offsets) < 320)  # the camera lies in every tile
            pano = read_rgb_uint8(root / city / 'panorama' / tokens[0])
            assert pano.shape == (320, 640, 3)
    ds = VigorDataset(root, cities=meta['cross_area']['test'], split='test', area='same',
                      meters_per_px_640=meta['meters_per_px_640'])
    assert len(ds) == len(test)


def test_kitti_layout_calib_and_timestamps(tiny):
    root = tiny[0] / 'kitti'
    dates = sorted(p.name for p in (root / 'raw_data').iterdir())
    assert dates == ['2024_06_03', '2024_06_06']
    for date in dates:
        calib = read_kitti_calib(root / 'raw_data' / date / 'calib_cam_to_cam.txt')
        np.testing.assert_allclose(calib.K, KITTI_CAMERA.K)
        assert calib.image_hw == (375, 1242)
        for drive in sorted((root / 'raw_data' / date).glob('*_drive_*_sync')):
            lines = (drive / 'image_02' / 'timestamps.txt').read_text().splitlines()
            assert lines == (drive / 'oxts' / 'timestamps.txt').read_text().splitlines()
            stamps = np.array([parse_kitti_timestamp(s) for s in lines])
            step_ms = np.diff(stamps) / 1e6
            assert np.all(step_ms > 0) and np.all(np.abs(step_ms - 100) <= 8)
            frames = sorted((drive / 'image_02' / 'data').glob('*.png'))
            assert [f.stem for f in frames] == [f'{k:010d}' for k in range(len(lines))]
            assert read_rgb_uint8(frames[0]).shape == (375, 1242, 3)
            satmap = root / 'satmap' / date / drive.name / frames[0].name
            assert read_rgb_uint8(satmap).shape == (832, 832, 3)


def test_kitti_oxts_match_the_drive(tiny):
    root = tiny[0] / 'kitti'
    for truth_csv in sorted((root / 'synthetic_truth').glob('*.csv')):
        rows = read_csv(truth_csv)
        date = truth_csv.stem[:10]
        city = next(c for c in ('SynthDowntown', 'SynthOldTown')
                    if get_city(c).kitti_date == date)
        geo = get_city(city).georef()
        drive = root / 'raw_data' / date / truth_csv.stem
        rec = [read_oxts_file(drive / 'oxts' / 'data' / f'{r["frame"]}.txt') for r in rows]
        gps = np.array([[float(r['gps_east_m']), float(r['gps_north_m'])] for r in rows])
        cam = np.array([[float(r['camera_east_m']), float(r['camera_north_m'])] for r in rows])
        yaw = np.array([float(r['yaw_rad']) for r in rows])
        east, north = geo.geodetic_to_world([o.lat for o in rec], [o.lon for o in rec])
        np.testing.assert_allclose(np.stack([east, north], 1), gps, atol=0.01)
        np.testing.assert_allclose([o.yaw for o in rec], yaw, atol=1e-9)
        np.testing.assert_allclose(cam - gps, np.stack(camera_from_gps_en_m(yaw), 1),
                                   atol=1e-6)
        assert all(o.alt == pytest.approx(get_city(city).alt_m + 0.93) for o in rec)
        # velocities and yaw rate agree with the position and yaw differences
        t = np.array([int(r['time_ns']) for r in rows]) / 1e9
        v = np.array([[o.ve, o.vn] for o in rec])
        np.testing.assert_allclose(np.diff(gps, axis=0) / np.diff(t)[:, None],
                                   0.5 * (v[1:] + v[:-1]), atol=0.05)
        np.testing.assert_allclose([o.vf for o in rec], np.hypot(v[:, 0], v[:, 1]), rtol=1e-9)
        np.testing.assert_allclose(np.diff(np.unwrap(yaw)) / np.diff(t),
                                   0.5 * np.add([o.wz for o in rec][1:], [o.wz for o in rec][:-1]),
                                   atol=0.02)
        assert [o.wz for o in rec] == [o.wu for o in rec]


def test_kitti_read_back_equals_truth(tiny, worlds):
    root = tiny[0] / 'kitti'
    truth = {}
    for path in (root / 'synthetic_truth').glob('*.csv'):
        for r in read_csv(path):
            truth[f'{path.stem[:10]}/{path.stem}/{r["frame"]}.png'] = r
    train = KittiDataset(root, 'train', val_fraction=0.0)
    test1, test2 = KittiDataset(root, 'test1'), KittiDataset(root, 'test2')
    assert {e.date for e in train.entries} == {e.date for e in test1.entries} == {'2024_06_03'}
    assert {e.drive for e in train.entries}.isdisjoint({e.drive for e in test1.entries})
    assert {e.date for e in test2.entries} == {'2024_06_06'}
    np.testing.assert_allclose([e.dx_dy_dtheta for e in test2.entries],
                               protocol_values(len(test2), SEED, 'test2'), atol=1e-6)
    mpp = KITTI_SATMAP_METERS_PER_PX
    for ds in (test1, test2):
        for i, entry in enumerate(ds.entries):
            item, row = ds[i], truth[entry.name]
            assert item['yaw_rad'].item() == pytest.approx(float(row['yaw_rad']), abs=1e-6)
            # the crop centre in the world: GPS from the OXTS lat/lon + the protocol shift
            dx, dy, _ = entry.dx_dy_dtheta
            yaw = float(row['yaw_rad'])
            shift = 20.0 * np.array([dx * math.cos(yaw) - dy * math.sin(yaw),
                                     dx * math.sin(yaw) + dy * math.cos(yaw)])
            cam = np.array([float(row['camera_east_m']), float(row['camera_north_m'])])
            np.testing.assert_allclose(item['eval_true_offset_en_m'].double().numpy(), shift,
                                       atol=0.01)
            if i == 0:  # pixels: the reader's crop lines up with a render at cam - offset
                city = 'SynthDowntown' if ds is test1 else 'SynthOldTown'
                image = (item['satellite'].permute(1, 2, 0).numpy() * 255).round()
                assert_aligned(image, lambda e, n, city=city: render_satellite(
                    worlds(city), NorthUpCrop(512, 512, mpp, e, n), seed=5),
                    cam - shift, mpp)


def test_kitti_city_map_reads_through_geotiff_source(tiny, worlds):
    out = tiny[0]
    rows = read_csv(next((out / 'kitti' / 'synthetic_truth').glob('2024_06_06_*.csv')))
    gps = float(rows[0]['gps_east_m']), float(rows[0]['gps_north_m'])
    geo = get_city('SynthOldTown').georef()
    lat, lon = geo.world_to_geodetic(*gps)
    with GeoTiffSource(out / 'maps' / 'SynthOldTown.tif') as source:
        assert source.crs.to_epsg() == 32632
        crop = source.crop(float(lat), float(lon), 40.0, 200).image
    assert_aligned(crop, lambda e, n: render_satellite(
        worlds('SynthOldTown'), NorthUpCrop(200, 200, 0.2, e, n), seed=1), gps, 0.2)


def file_times(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob('*') if p.is_file()}


def test_rerun_skips_finished_work_and_refuses_another_config(tiny):
    out = tiny[0]
    before = file_times(out)
    start = time.perf_counter()
    make_synthetic('tiny', out, seed=SEED, progress=False)
    assert time.perf_counter() - start < 1.0
    assert file_times(out) == before
    # an interrupted unit is redone, and only its missing files are rendered again
    pano = next((out / 'vigor' / 'SynthOldTown' / 'panorama').glob('*.jpg'))
    data = pano.read_bytes()
    pano.unlink()
    os.remove(out / 'vigor' / 'synthetic_done' / 'vigor_SynthOldTown.json')
    os.remove(out / 'vigor' / 'synthetic_done.json')
    make_synthetic('tiny', out, seed=SEED, progress=False)
    assert pano.read_bytes() == data
    after = file_times(out)
    tiles = [p for p in before if p.suffix == '.png' and 'satellite' in p.parts]
    assert tiles and all(after[p] == before[p] for p in tiles)
    with pytest.raises(FileExistsError, match='another configuration'):
        make_synthetic('tiny', out, seed=SEED + 1, progress=False)
    with pytest.raises(ValueError, match='no VIGOR export'):
        make_synthetic('demo', out / 'demo', layout='vigor')


def test_satmaps_hold_the_default_crop_at_extreme_protocol_shifts(tiny, tmp_path):
    root = tiny[0] / 'kitti'
    names = [line.split()[0] for split in ('train', 'test1', 'test2')
             for line in (root / f'{split}_files.txt').read_text().splitlines()
             if line.split()[0].endswith('0000000000.png')]  # one frame per drive
    corners = [(dx, dy) for dx in (-1, 1) for dy in (-1, 1)]
    (tmp_path / 'test1_files.txt').write_text(''.join(
        f'{name} {dx} {dy} 1\n' for name in names for dx, dy in corners))
    ds = KittiDataset(root, 'test1', split_dir=tmp_path)  # default 512 px crop, +-20 m
    assert min_satmap_px() == 813 <= PRESET.kitti_drive.satmap_px
    for i in range(len(ds)):
        assert ds[i]['satellite'].shape == (3, 512, 512)


@pytest.mark.slow
def test_parallel_kitti_cities_write_the_same_files_as_the_serial_run(tiny, tmp_path):
    serial = tiny[0] / 'kitti'
    out = tmp_path / 'parallel'
    make_synthetic('tiny', out, seed=SEED, layout='kitti', progress=False, jobs=2)
    parallel = out / 'kitti'
    files = sorted(p.relative_to(serial) for p in serial.rglob('*') if p.is_file()
                   and p.suffix in ('.png', '.txt', '.csv'))
    assert len(files) > 20
    for rel in files:
        assert (parallel / rel).read_bytes() == (serial / rel).read_bytes(), rel
    with pytest.raises(ValueError, match='jobs'):
        make_synthetic('tiny', tmp_path / 'bad', seed=SEED, jobs=0)
