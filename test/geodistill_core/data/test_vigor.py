"""Tests for the VIGOR reader on a tiny dataset written in the official layout."""
import math

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from geodistill_core.data.samplers import DistanceAwareBatchSampler, batch_conflicts
from geodistill_core.data.vigor import VigorDataset
from geodistill_core.data.vigor_labels import VIGOR_METERS_PER_PX_640
from geodistill_core.geodesy import LocalEnu
from geodistill_core.geometry import offset_en_m_to_pixel, panorama_column_from_azimuth

CITIES = ('NewYork', 'Seattle', 'SanFrancisco', 'Chicago')
CITY_ORIGIN = {'NewYork': (40.70, -74.00), 'Seattle': (47.60, -122.30),
               'SanFrancisco': (37.77, -122.42), 'Chicago': (41.88, -87.63)}
PANO_HW = (8, 64)
TILE_PX = 64  # written tiles are 64 px; offsets stay in VIGOR's 640-px units
N_PANOS = 4
# (dr, dc) of the positive tile: integer pixels in the 64-px tile, (31.5 + dr/10, 31.5 - dc/10).
OFFSETS = ((105.0, -205.0), (-95.0, 45.0), (5.0, 125.0), (-155.0, -15.0))
SEMI = ((15.0, 330.0), (-310.0, 20.0), (340.0, -300.0))  # the first and last leave the tile


def pano_image():
    """Grey panorama with a smooth bright bump centred on the centre column (north)."""
    cols = np.arange(PANO_HW[1], dtype=float)
    bump = 20 + 200 * np.exp(-0.5 * ((cols - (PANO_HW[1] - 1) / 2) / 2.0) ** 2)
    return np.repeat(np.tile(bump, (PANO_HW[0], 1))[..., None], 3, axis=2).astype(np.uint8)


def tile_image(marker_rc=None):
    img = np.full((TILE_PX, TILE_PX, 3), 40, np.uint8)
    if marker_rc is not None:
        img[marker_rc] = (255, 0, 0)  # RGB red (written as BGR below)
    return img


def write_rgb(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 100] if path.suffix == '.jpg' else []
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)


def tile_name(lat, lon):
    return f'satellite_{lat:.6f}_{lon:.6f}.png'


def build_vigor(root):
    """4 cities x 4 panoramas. Train label file: panos 0, 1; test: 2, 3; pano_label: all.

    Pano k of a city sits 'far' (0.2 deg) from its tiles so a reader that used the
    panorama position instead of the tile centre would be caught. Returns the lines.
    """
    lines = {}
    for city in CITIES:
        lat0, lon0 = CITY_ORIGIN[city]
        city_lines = []
        for k in range(N_PANOS):
            pano = f'{city}{k}pano,{lat0 + 0.2:.6f},{lon0 + 0.01 * k:.6f},.jpg'
            write_rgb(root / city / 'panorama' / pano, pano_image())
            dr, dc = OFFSETS[k]
            tiles = [(tile_name(lat0 + 0.001 * k, lon0), dr, dc)]
            marker = (int(31.5 + dr / 10), int(31.5 - dc / 10))
            write_rgb(root / city / 'satellite' / tiles[0][0], tile_image(marker))
            for j, (sdr, sdc) in enumerate(SEMI):
                name = tile_name(lat0 + 0.001 * k + 0.0002 * (j + 1), lon0 + 0.0003)
                write_rgb(root / city / 'satellite' / name, tile_image())
                tiles.append((name, sdr, sdc))
            city_lines.append(pano + ' ' + ' '.join(f'{n} {a} {b}' for n, a, b in tiles))
        split_dir = root / 'splits__corrected' / city
        split_dir.mkdir(parents=True)
        (split_dir / 'same_area_balanced_train__corrected.txt').write_text(
            '\n'.join(city_lines[:2]) + '\n')
        (split_dir / 'same_area_balanced_test__corrected.txt').write_text(
            '\n'.join(city_lines[2:]) + '\n\n')
        (split_dir / 'pano_label_balanced__corrected.txt').write_text('\n'.join(city_lines))
        lines[city] = city_lines
    return lines


@pytest.fixture(scope='module')
def vigor_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('VIGOR')
    build_vigor(root)
    return root


def pano_ids(ds):
    return sorted(e.pano_name.split(',')[0] for e in ds.entries)


def test_protocols_pick_the_documented_files_and_cities(vigor_root):
    def ids(cities, ks):
        return sorted(f'{c}{k}pano' for c in cities for k in ks)

    kw = dict(val_fraction=0.0)
    assert pano_ids(VigorDataset(vigor_root, split='train', area='same', **kw)) == ids(
        CITIES, (0, 1))
    assert pano_ids(VigorDataset(vigor_root, split='test', area='same', **kw)) == ids(
        CITIES, (2, 3))
    assert pano_ids(VigorDataset(vigor_root, split='train', area='cross', **kw)) == ids(
        ('NewYork', 'Seattle'), range(4))
    assert pano_ids(VigorDataset(vigor_root, split='test', area='cross', **kw)) == ids(
        ('SanFrancisco', 'Chicago'), range(4))
    assert pano_ids(VigorDataset(vigor_root, ['Chicago'], split='test', area='same')) == ids(
        ('Chicago',), (2, 3))


def test_val_is_carved_from_training_tiles(vigor_root):
    full = set(pano_ids(VigorDataset(vigor_root, split='train', area='cross',
                                     val_fraction=0.0)))
    train = set(pano_ids(VigorDataset(vigor_root, split='train', area='cross',
                                      val_fraction=0.25)))
    val = VigorDataset(vigor_root, split='val', area='cross', val_fraction=0.25)
    assert len(val) == 2 and train.isdisjoint(pano_ids(val))
    assert train | set(pano_ids(val)) == full
    again = VigorDataset(vigor_root, split='val', area='cross', val_fraction=0.25)
    assert pano_ids(again) == pano_ids(val)
    other = VigorDataset(vigor_root, split='val', area='cross', val_fraction=0.25, val_seed=1)
    assert pano_ids(other) != pano_ids(val)  # the seed matters (for these 8 tiles)
    with pytest.raises(ValueError, match='val_fraction > 0'):
        VigorDataset(vigor_root, split='val', val_fraction=0.0)


def test_item_fields_offsets_and_satellite_marker(vigor_root):
    ds = VigorDataset(vigor_root, ['NewYork'], split='train', area='cross', val_fraction=0.0,
                      pano_size=PANO_HW, sat_size=TILE_PX)
    mpp640 = VIGOR_METERS_PER_PX_640['NewYork']
    for index in range(len(ds)):
        item = ds[index]
        k = int(item['pano_id'][len('NewYork')])
        dr, dc = OFFSETS[k]
        assert item['ground'].shape == (3, *PANO_HW) and item['ground'].dtype == torch.float32
        assert 0.0 <= item['ground'].min() and item['ground'].max() <= 1.0
        assert item['satellite'].shape == (3, TILE_PX, TILE_PX)
        assert item['city'] == 'NewYork' and item['sat_name'].startswith('satellite_')
        assert item['sat_meters_per_px'].item() == pytest.approx(mpp640 * 10.0)
        assert item['camera_height_m'].item() == pytest.approx(2.0)
        # dr > 0 is south, dc > 0 is west: east = -dc * mpp, north = -dr * mpp.
        east, north = item['eval_true_offset_en_m'].tolist()
        assert east == pytest.approx(-dc * mpp640, abs=1e-5)
        assert north == pytest.approx(-dr * mpp640, abs=1e-5)
        # The offset points at the marker drawn at the camera's pixel of the tile.
        row, col = offset_en_m_to_pixel(east, north, TILE_PX, TILE_PX,
                                        item['sat_meters_per_px'].item())
        red = item['satellite'][0] - item['satellite'][1]
        assert red[round(row), round(col)] > 0.8
        assert red.sum().item() == pytest.approx(red[round(row), round(col)].item(), abs=0.05)
        # Counter-example: the sign-flipped reading (320 + dr, 320 + dc) misses it.
        assert red[round(row), round(31.5 + dc / 10)] < 0.1
        assert item['yaw_rad'].item() == pytest.approx(math.pi / 2)
        assert item['yaw_noise_rad'].item() == 0.0


def test_resized_satellite_scales_meters_per_px(vigor_root):
    ds = VigorDataset(vigor_root, ['Seattle'], split='test', area='cross', sat_size=32)
    item = ds[0]
    assert item['satellite'].shape == (3, 32, 32)
    assert item['sat_meters_per_px'].item() == pytest.approx(
        VIGOR_METERS_PER_PX_640['Seattle'] * 640 / 32)
    assert ds.meters_per_px('Seattle') == pytest.approx(0.100817 * 20)


def bump_column(ground):
    """Sub-pixel column of the bright bump (centroid above the background)."""
    profile = (ground.mean(dim=(0, 1)) - 30.0 / 255.0).clamp(min=0).numpy()
    cols = np.arange(profile.size)
    return float((profile * cols).sum() / profile.sum())


def test_yaw_noise_rolls_panorama_consistently_and_is_seeded(vigor_root):
    kw = dict(split='test', area='cross', pano_size=PANO_HW, sat_size=TILE_PX)
    clean = VigorDataset(vigor_root, **kw)
    assert bump_column(clean[0]['ground']) == pytest.approx((PANO_HW[1] - 1) / 2, abs=0.1)
    ds = VigorDataset(vigor_root, yaw_noise_deg=45.0, seed=11, **kw)
    for index in range(len(ds)):
        item = ds[index]
        noise = item['yaw_noise_rad'].item()
        u = np.random.default_rng(np.random.SeedSequence([11, index])).uniform(-1, 1)
        assert noise == pytest.approx(u * math.radians(45.0), abs=1e-6)
        # prior - true = noise, prior = north-aligned pi/2.
        assert item['yaw_prior_rad'].item() == pytest.approx(math.pi / 2)
        assert item['yaw_rad'].item() == pytest.approx(math.pi / 2 - noise, abs=1e-6)
        # North (map bearing pi/2) is seen at azimuth phi = yaw - pi/2 (clockwise positive).
        expected = panorama_column_from_azimuth(
            torch.tensor(item['yaw_rad'].item() - math.pi / 2), PANO_HW[1]).item()
        assert bump_column(item['ground']) == pytest.approx(expected, abs=0.15)
        if abs(noise) > 0.1:  # counter-example: the opposite roll direction
            wrong = (PANO_HW[1] - 1) / 2 + noise * PANO_HW[1] / (2 * math.pi)
            assert abs(bump_column(item['ground']) - wrong) > 0.5
    # Reproducible, seed-dependent, and epoch-dependent after set_epoch.
    again = VigorDataset(vigor_root, yaw_noise_deg=45.0, seed=11, **kw)
    noises = [ds.yaw_noise_rad(i) for i in range(len(ds))]
    assert noises == [again.yaw_noise_rad(i) for i in range(len(ds))]
    other = VigorDataset(vigor_root, yaw_noise_deg=45.0, seed=12, **kw)
    assert noises != [other.yaw_noise_rad(i) for i in range(len(ds))]
    ds.set_epoch(3)
    assert noises != [ds.yaw_noise_rad(i) for i in range(len(ds))]
    ds.set_epoch(None)
    assert noises == [ds.yaw_noise_rad(i) for i in range(len(ds))]


def test_positive_only_false_adds_semi_positives_inside_the_tile(vigor_root):
    pos = VigorDataset(vigor_root, ['Chicago'], split='test', area='same')
    both = VigorDataset(vigor_root, ['Chicago'], split='test', area='same',
                        positive_only=False, sat_size=TILE_PX)
    assert len(pos) == 2 and len(both) == 4  # only SEMI[1] keeps the camera in its tile
    semi = [e for e in both.entries if (e.dr_px, e.dc_px) == SEMI[1]]
    assert len(semi) == 2
    item = both[both.entries.index(semi[0])]
    mpp640 = VIGOR_METERS_PER_PX_640['Chicago']
    assert item['eval_true_offset_en_m'].tolist() == pytest.approx(
        [-SEMI[1][1] * mpp640, -SEMI[1][0] * mpp640], abs=1e-5)


def test_sampling_layout_uses_tile_centres_and_all_tiles(vigor_root):
    ds = VigorDataset(vigor_root, ['NewYork', 'Seattle'], split='train', area='cross',
                      val_fraction=0.0, positive_only=False)
    layout = ds.sampling_layout()
    assert layout.positions_m.shape == (len(ds), 3)
    lat0, lon0 = CITY_ORIGIN['NewYork']
    ref = LocalEnu(lat0, lon0)
    positives = {e.pano_name.split(',')[0]: i for i, e in enumerate(ds.entries)
                 if e.sat_name == e.tile_names[0]}
    i0, i1 = positives['NewYork0pano'], positives['NewYork1pano']
    # Tile k lies 0.001 deg (111 m) north of tile 0; the panoramas differ by 0.01 deg east.
    e1, n1, _ = ref.to_enu(lat0 + 0.001, lon0)
    np.testing.assert_allclose(layout.positions_m[i1, :2] - layout.positions_m[i0, :2],
                               [float(e1), float(n1)], atol=1e-3)
    assert float(n1) == pytest.approx(111.0, abs=1.0)
    assert all(len(keys) == 4 for keys in layout.tile_keys)
    assert layout.tile_keys[i0] == frozenset(f'NewYork/{t}' for t in ds.entries[i0].tile_names)
    sampler = DistanceAwareBatchSampler(layout, 4, min_distance_m=60.0)
    for batch in sampler:
        assert batch_conflicts(batch, layout, 60.0) == []
        assert len({ds.entries[i].pano_name for i in batch}) == len(batch)


def test_dataloader_collates_named_fields(vigor_root):
    ds = VigorDataset(vigor_root, split='test', area='cross', pano_size=PANO_HW, sat_size=16)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch['ground'].shape == (3, 3, *PANO_HW)
    assert batch['eval_true_offset_en_m'].shape == (3, 2)
    assert batch['yaw_rad'].shape == (3,) and len(batch['city']) == 3


def test_errors_name_the_path(vigor_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='VIGOR root not found.*panorama'):
        VigorDataset(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='Lyon/panorama'):
        VigorDataset(vigor_root, ['Lyon'], meters_per_px_640={'Lyon': 0.1})
    with pytest.raises(ValueError, match="no metres/pixel for city 'Lyon'"):
        VigorDataset(vigor_root, ['Lyon'])
    broken = tmp_path / 'V'
    build_vigor(broken)
    label = broken / 'splits__corrected' / 'Seattle' / 'pano_label_balanced__corrected.txt'
    label.unlink()
    with pytest.raises(FileNotFoundError, match='Seattle/pano_label_balanced__corrected.txt'):
        VigorDataset(broken, split='train', area='cross')
    label.write_text('\n'.join(['', 'only three tokens']) + '\n')
    with pytest.raises(ValueError, match=r'pano_label_balanced__corrected.txt:2: .*13 tokens'):
        VigorDataset(broken, split='train', area='cross')
    ds = VigorDataset(broken, ['Chicago'], split='test')
    (broken / 'Chicago' / 'panorama' / ds.entries[0].pano_name).unlink()
    with pytest.raises(FileNotFoundError, match='Chicago/panorama/Chicago2pano'):
        ds[0]
    with pytest.raises(ValueError, match="split must be 'train', 'val' or 'test'"):
        VigorDataset(vigor_root, split='validation')
