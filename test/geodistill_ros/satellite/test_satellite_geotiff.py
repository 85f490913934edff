"""GeoTIFF map source: markers land where geodesy says, crops are TRUE-north-up."""
import math

from affine import Affine
import numpy as np
import pytest
import rasterio

from geodistill_core.geodesy import (
    LocalEnu,
    geodetic_to_utm,
    meridian_convergence_rad,
    utm_to_geodetic,
)
from geodistill_ros.satellite import GeoTiffSource, MapCoverageError, MapSourceError
from geodistill_ros.satellite.projected import CONTROL_STEP_PX


@pytest.fixture
def source(utm_world_tif):
    with GeoTiffSource(utm_world_tif) as src:
        yield src


@pytest.mark.parametrize('size_px', [601, 600])
def test_marker_at_crop_centre_and_north_east_markers_in_place(source, world, size_px):
    lat, lon = world.marker_latlon(0)
    crop = source.crop(lat, lon, 120.0, size_px)
    assert crop.image.shape == (size_px, size_px, 3) and crop.image.dtype == np.uint8
    mpp = crop.meters_per_px
    assert mpp == pytest.approx(120.0 / size_px)
    c = (size_px - 1) / 2.0
    row, col = world.blob_centroid(crop.image, 0, c, c)
    assert abs(row - c) < 0.1 and abs(col - c) < 0.1
    # green: 50 m due TRUE north -> 50 / mpp rows above the centre, same column
    row, col = world.blob_centroid(crop.image, 1, c - 50.0 / mpp, c, radius=20)
    assert row == pytest.approx(c - 50.0 / mpp, abs=0.1)
    assert col == pytest.approx(c, abs=0.1)
    # blue: 30 m due east -> 30 / mpp columns right of the centre (column grows east)
    row, col = world.blob_centroid(crop.image, 2, c, c + 30.0 / mpp, radius=20)
    assert col == pytest.approx(c + 30.0 / mpp, abs=0.1)
    assert row == pytest.approx(c, abs=0.1)


def test_north_marker_is_off_grid_north_so_the_test_can_fail(world):
    """Counter-example: in UTM the true-north marker is 0.38 m EAST of the centre's easting.

    West of the zone's central meridian (gamma < 0) grid north points west of true north,
    so a source that copied grid-north-up pixels would put it 1.9 px right of the centre.
    """
    east_c, _, _ = geodetic_to_utm(*world.marker_latlon(0), 32632)
    east_n, _, _ = geodetic_to_utm(*world.marker_latlon(1), 32632)
    gamma = float(meridian_convergence_rad(world.centre_lat_deg, world.centre_lon_deg, 32632))
    assert float(east_n - east_c) == pytest.approx(-50.0 * math.sin(gamma), rel=1e-3)
    assert (east_n - east_c) / 0.2 > 1.8


def test_grid_north_line_is_tilted_by_the_meridian_convergence(tmp_path, world):
    """A line of constant UTM easting runs along GRID north: tilted by gamma in the crop."""
    west, north, epsg = world.utm_origin()
    res, n_px = world.utm_res_m, 800
    east_c, _, _ = geodetic_to_utm(world.centre_lat_deg, world.centre_lon_deg, epsg)
    east_px = west + (np.arange(n_px) + 0.5) * res
    line = 30.0 + 200.0 * np.exp(-(east_px - float(east_c)) ** 2 / (2.0 * 0.5**2))
    band = np.broadcast_to(np.rint(line).astype(np.uint8), (n_px, n_px))
    path = tmp_path / 'grid_north_line.tif'
    with rasterio.open(path, 'w', driver='GTiff', width=n_px, height=n_px, count=1,
                       dtype='uint8', crs=f'EPSG:{epsg}',
                       transform=Affine(res, 0.0, west, 0.0, -res, north)) as dst:
        dst.write(band[None])
    size_px = 750
    with GeoTiffSource(path) as src:
        crop = src.crop(world.centre_lat_deg, world.centre_lon_deg, 150.0, size_px)
    assert np.array_equal(crop.image[..., 0], crop.image[..., 2])  # grey band -> RGB
    cols = np.arange(size_px)
    centroid_col = []
    for row in range(20, size_px - 20):
        weight = np.clip(crop.image[row, :, 0].astype(float) - 32.0, 0.0, None)
        centroid_col.append((cols * weight).sum() / weight.sum())
    slope_col_per_row = np.polyfit(np.arange(20, size_px - 20), centroid_col, 1)[0]
    gamma = float(meridian_convergence_rad(world.centre_lat_deg, world.centre_lon_deg, epsg))
    assert math.degrees(gamma) == pytest.approx(-0.43, abs=0.01)
    # going north (rows up) the grid-north line drifts by tan(gamma): west for gamma < 0
    assert slope_col_per_row > 0.0
    assert slope_col_per_row == pytest.approx(-math.tan(gamma), rel=0.03)
    assert (centroid_col[0] - centroid_col[-1]) == pytest.approx(-710 * math.tan(-gamma),
                                                                 abs=0.15)


def test_control_grid_matches_exact_per_pixel_projection(source, world):
    size_px, size_m = 3 * CONTROL_STEP_PX + 5, 60.0
    lat, lon = world.marker_latlon(2)
    rows, cols = source.sample_positions(lat, lon, size_m, size_px)
    offsets = (np.arange(size_px) - (size_px - 1) / 2.0) * size_m / size_px
    east, north = np.meshgrid(offsets, -offsets)
    lat_px, lon_px, _ = LocalEnu(lat, lon).to_geodetic(east, north, 0.0)
    rows_exact, cols_exact = source.raster_pixel_of(lat_px, lon_px)
    assert np.abs(rows - rows_exact).max() < 1e-3
    assert np.abs(cols - cols_exact).max() < 1e-3


def test_decimated_read_keeps_the_marker_at_the_centre(source, world):
    """0.6 m/px crop from a 0.25 m/px raster: the averaged (factor 2) read stays aligned."""
    size_px = 200
    crop = source.crop(*world.marker_latlon(0), 120.0, size_px)
    c = (size_px - 1) / 2.0
    row, col = world.blob_centroid(crop.image, 0, c, c, radius=6)
    assert abs(row - c) < 0.1 and abs(col - c) < 0.1


def test_epsg4326_geotiff(tmp_path, world):
    lat0, lon0 = world.centre_lat_deg, world.centre_lon_deg
    res_deg = 2.5e-6
    n_px = 600
    west, north = lon0 - n_px / 2 * res_deg + 3.1e-7, lat0 + n_px / 2 * res_deg - 1.3e-7
    cols, rows = np.meshgrid(np.arange(n_px), np.arange(n_px))
    rgb = world.rgb(north - (rows + 0.5) * res_deg, west + (cols + 0.5) * res_deg)
    path = tmp_path / 'world_4326.tif'
    with rasterio.open(path, 'w', driver='GTiff', width=n_px, height=n_px, count=3,
                       dtype='uint8', crs='EPSG:4326',
                       transform=Affine(res_deg, 0.0, west, 0.0, -res_deg, north)) as dst:
        dst.write(np.moveaxis(rgb, -1, 0))
    with GeoTiffSource(path) as src:
        crop = src.crop(lat0, lon0, 80.0, 401)
    c = 200.0
    row, col = world.blob_centroid(crop.image, 0, c, c)
    assert abs(row - c) < 0.1 and abs(col - c) < 0.1
    row, col = world.blob_centroid(crop.image, 2, c, c + 30.0 / crop.meters_per_px)
    assert col == pytest.approx(c + 30.0 / crop.meters_per_px, abs=0.1)


def test_outside_coverage_names_point_file_and_fix(source, world, utm_world_tif):
    west, north, epsg = world.utm_origin()
    lat, lon = utm_to_geodetic(west + 30.0, north - 100.0, epsg)  # 30 m from the west edge
    source.crop(float(lat), float(lon), 50.0, 64)  # fits
    with pytest.raises(MapCoverageError) as err:
        source.crop(float(lat), float(lon), 80.0, 64)
    message = str(err.value)
    assert f'lat={float(lat):.7f}' in message and str(utm_world_tif) in message
    assert 'use a map that covers' in message
    with pytest.raises(MapCoverageError):
        source.crop(48.0, 8.43, 50.0, 64)


def test_nodata_is_an_error_not_a_black_image(tmp_path, world):
    path = tmp_path / 'holes.tif'
    world.write_utm_world(path, nodata_box_px=(300, 340, 300, 340))  # 10 m hole at centre
    lat, lon = world.marker_latlon(1)  # 50 m north: no hole in a 40 m crop
    with GeoTiffSource(path) as src:
        assert src.crop(lat, lon, 40.0, 100).image.min() >= 35
        with pytest.raises(MapCoverageError, match='nodata'):
            src.crop(world.centre_lat_deg, world.centre_lon_deg, 40.0, 100)
    with GeoTiffSource(path, max_nodata_fraction=0.2) as src:
        crop = src.crop(world.centre_lat_deg, world.centre_lon_deg, 40.0, 100)
    assert (crop.image.max(axis=-1) == 0).any()


@pytest.mark.filterwarnings('ignore::rasterio.errors.NotGeoreferencedWarning')
def test_bad_files_fail_loudly(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        GeoTiffSource(tmp_path / 'missing.tif')
    junk = tmp_path / 'junk.tif'
    junk.write_bytes(b'not a tiff at all')
    with pytest.raises(MapSourceError, match='junk.tif'):
        GeoTiffSource(junk)
    no_crs = tmp_path / 'no_crs.tif'
    with rasterio.open(no_crs, 'w', driver='GTiff', width=8, height=8, count=3,
                       dtype='uint8') as dst:
        dst.write(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(MapSourceError, match='no CRS'):
        GeoTiffSource(no_crs)
    float_tif = tmp_path / 'float.tif'
    with rasterio.open(float_tif, 'w', driver='GTiff', width=8, height=8, count=1,
                       dtype='float32', crs='EPSG:32632',
                       transform=Affine(1, 0.0, 0, 0.0, -1, 0)) as dst:
        dst.write(np.zeros((1, 8, 8), np.float32))
    with pytest.raises(MapSourceError, match='uint8'):
        GeoTiffSource(float_tif)


def test_crop_arguments_are_validated(source):
    for args in [(91.0, 8.0, 50.0, 64), (float('nan'), 8.0, 50.0, 64),
                 (49.0, 8.43, -1.0, 64), (49.0, 8.43, 50.0, 0)]:
        with pytest.raises(ValueError):
            source.crop(*args)
