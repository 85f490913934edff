"""XYZ tile folder source: stitched, metric, north-up; TMS flip; missing tiles; LRU bound."""
import shutil

import cv2
import numpy as np
import pytest

from geodistill_core.geodesy import web_mercator_meters_per_px
from geodistill_ros.satellite import MapCoverageError, MapSourceError, XyzTileSource

ZOOM = 18


@pytest.mark.parametrize('size_px', [301, 300])
def test_marker_at_centre_and_north_marker_above(xyz_world, world, size_px):
    root, _ = xyz_world
    source = XyzTileSource(root, ZOOM)
    assert source.tile_size_px == 256
    crop = source.crop(*world.marker_latlon(0), 120.0, size_px)
    assert crop.image.shape == (size_px, size_px, 3) and crop.image.dtype == np.uint8
    c, mpp = (size_px - 1) / 2.0, crop.meters_per_px
    row, col = world.blob_centroid(crop.image, 0, c, c)
    assert abs(row - c) < 0.1 and abs(col - c) < 0.1
    row, col = world.blob_centroid(crop.image, 1, c - 50.0 / mpp, c)
    assert row == pytest.approx(c - 50.0 / mpp, abs=0.1) and col == pytest.approx(c, abs=0.1)
    row, col = world.blob_centroid(crop.image, 2, c, c + 30.0 / mpp)
    assert col == pytest.approx(c + 30.0 / mpp, abs=0.1) and row == pytest.approx(c, abs=0.1)


def test_metric_scale_not_mercator_scale(xyz_world, world):
    """Counter-example: tiles are 0.39 m/px here, the crop 0.4 m/px; at the 1/cos(lat)
    Mercator scale (0.61 m/px) the 50 m marker would be 82 px up instead of 125."""
    source = XyzTileSource(xyz_world[0], ZOOM)
    assert source.meters_per_px_at(world.centre_lat_deg) == pytest.approx(
        float(web_mercator_meters_per_px(world.centre_lat_deg, ZOOM)))
    crop = source.crop(*world.marker_latlon(0), 120.0, 300)
    row, _ = world.blob_centroid(crop.image, 1, 149.5 - 125.0, 149.5)
    assert row == pytest.approx(149.5 - 125.0, abs=0.1)


def test_decimated_crop_stays_aligned(xyz_world, world):
    source = XyzTileSource(xyz_world[0], ZOOM)
    crop = source.crop(*world.marker_latlon(0), 120.0, 100)  # 1.2 m/px from 0.39 m/px
    row, col = world.blob_centroid(crop.image, 0, 49.5, 49.5, radius=5)
    assert abs(row - 49.5) < 0.1 and abs(col - 49.5) < 0.1


def test_tms_folder_flips_y(tmp_path, xyz_world, world):
    root_tms = tmp_path / 'tms'
    world.write_xyz_world(root_tms, ZOOM, tms=True)
    lat, lon = world.marker_latlon(0)
    expected = XyzTileSource(xyz_world[0], ZOOM).crop(lat, lon, 100.0, 200).image
    got = XyzTileSource(root_tms, ZOOM, tms=True).crop(lat, lon, 100.0, 200).image
    assert np.array_equal(got, expected)
    with pytest.raises(MapCoverageError, match='tms flag'):  # the counter-example
        XyzTileSource(root_tms, ZOOM, tms=False).crop(lat, lon, 100.0, 200)


def test_missing_tile_names_point_and_tile(tmp_path, xyz_world, world):
    root = tmp_path / 'holey'
    shutil.copytree(xyz_world[0], root)
    lat, lon = world.marker_latlon(0)
    source = XyzTileSource(root, ZOOM, cache_tiles=0)
    r, c = source.raster_pixel_of(lat, lon)
    tile_file = source.tile_path(int(c // 256), int(r // 256))
    tile_file.unlink()
    with pytest.raises(MapCoverageError) as err:
        source.crop(lat, lon, 40.0, 100)
    assert str(tile_file) in str(err.value) and f'lat={lat:.7f}' in str(err.value)
    with pytest.raises(MapCoverageError, match='missing tile'):  # beyond the folder's tiles
        source.crop(world.centre_lat_deg + 0.01, world.centre_lon_deg, 40.0, 100)
    with pytest.raises(MapCoverageError, match='not covered'):  # beyond Web Mercator
        source.crop(85.5, 8.43, 40.0, 100)


def test_lru_cache_is_bounded_and_hit(xyz_world, world):
    lat, lon = world.marker_latlon(0)
    small = XyzTileSource(xyz_world[0], ZOOM, cache_tiles=2)
    reference = XyzTileSource(xyz_world[0], ZOOM, cache_tiles=0).crop(lat, lon, 120.0, 300)
    for _ in range(2):
        crop = small.crop(lat, lon, 120.0, 300)  # needs more than 2 tiles
        assert np.array_equal(crop.image, reference.image)
        assert small.cache_info()['size'] <= 2
    big = XyzTileSource(xyz_world[0], ZOOM, cache_tiles=64)
    big.crop(lat, lon, 120.0, 300)
    first = big.cache_info()
    assert first['hits'] == 0 and first['misses'] == first['size'] >= 4
    big.crop(lat, lon, 120.0, 300)
    second = big.cache_info()
    assert second['misses'] == first['misses'] and second['hits'] == first['misses']


def test_jpeg_tiles(tmp_path, world):
    root = tmp_path / 'jpg'
    world.write_xyz_world(root, ZOOM, ext='jpg')
    crop = XyzTileSource(root, ZOOM, ext='jpg').crop(*world.marker_latlon(0), 60.0, 151)
    row, col = world.blob_centroid(crop.image, 0, 75.0, 75.0)
    assert abs(row - 75.0) < 0.3 and abs(col - 75.0) < 0.3


def test_transparent_tile_pixels_are_nodata(tmp_path, xyz_world, world):
    root = tmp_path / 'alpha'
    shutil.copytree(xyz_world[0], root)
    lat, lon = world.marker_latlon(0)
    source = XyzTileSource(root, ZOOM)
    r, c = source.raster_pixel_of(lat, lon)
    path = source.tile_path(int(c // 256), int(r // 256))
    bgra = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2BGRA)
    bgra[int(r % 256), :, 3] = 0  # a transparent row through the marker
    cv2.imwrite(str(path), bgra)
    with pytest.raises(MapCoverageError, match='nodata'):
        source.crop(lat, lon, 40.0, 100)


def test_bad_folders_and_tiles(tmp_path, xyz_world, world):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'none' / '18')):
        XyzTileSource(tmp_path / 'none', ZOOM)
    with pytest.raises(ValueError, match='ext'):
        XyzTileSource(xyz_world[0], ZOOM, ext='tif')
    root = tmp_path / 'corrupt'
    shutil.copytree(xyz_world[0], root)
    source = XyzTileSource(root, ZOOM)
    lat, lon = world.marker_latlon(0)
    r, c = source.raster_pixel_of(lat, lon)
    source.tile_path(int(c // 256), int(r // 256)).write_bytes(b'\x89PNG truncated')
    with pytest.raises(MapSourceError, match='unreadable tile'):
        source.crop(lat, lon, 40.0, 100)
