"""SatelliteCrop in the map frame, GeoTIFF vs XYZ agreement, make_source."""
import math
import subprocess
import sys

import numpy as np
import pytest

from geodistill_core.geodesy import LocalEnu
from geodistill_ros.satellite import (
    GeoTiffSource,
    MapCoverageError,
    SatelliteCrop,
    XyzTileSource,
    make_source,
)


def test_map_frame_placement_is_exact_far_from_the_datum(utm_world_tif, world):
    lat, lon = world.marker_latlon(0)
    datum_local = LocalEnu(lat, lon)
    datum_lat, datum_lon, _ = datum_local.to_geodetic(-2000.0, -1500.0, 0.0)  # 2.5 km away
    datum = LocalEnu(float(datum_lat), float(datum_lon), 110.0)
    with GeoTiffSource(utm_world_tif) as source:
        crop = source.crop(lat, lon, 100.0, 250, datum=datum)
    # 2.5 km away, 110 m below the datum; the frames differ by a small rotation, so the
    # centre is not exactly at (2000, 1500) but at that distance
    x_c, y_c, _ = datum.to_enu(lat, lon, 0.0)
    assert crop.centre_x_map_m == pytest.approx(float(x_c), abs=1e-6)
    assert crop.centre_y_map_m == pytest.approx(float(y_c), abs=1e-6)
    assert math.hypot(crop.centre_x_map_m, crop.centre_y_map_m) == pytest.approx(2500.0,
                                                                                  abs=0.05)
    assert crop.centre_z_map_m == pytest.approx(-110.0, abs=1.0)
    # tangent planes 2 km east of the datum turn CCW by about d_lon * sin(lat)
    d_lon = math.radians(lon - float(datum_lon))
    assert crop.map_from_crop_yaw_rad == pytest.approx(d_lon * math.sin(math.radians(lat)),
                                                       rel=0.02)
    assert crop.map_from_crop_yaw_rad > 1e-4
    east, north = np.array([40.0, -35.0, 0.0]), np.array([-20.0, 45.0, 49.0])
    x, y = crop.offset_en_m_to_map_xy(east, north)
    x_ref, y_ref, _ = datum.to_enu(*crop.offset_en_m_to_geodetic(east, north), 0.0)
    assert np.abs(x - x_ref).max() < 2e-3 and np.abs(y - y_ref).max() < 2e-3
    back_e, back_n = crop.map_xy_to_offset_en_m(x, y)
    np.testing.assert_allclose(back_e, east, atol=1e-9)
    np.testing.assert_allclose(back_n, north, atol=1e-9)
    frame = crop.north_up_crop()
    assert (frame.rows, frame.cols, frame.meters_per_px) == (250, 250, 0.4)
    row, col = 10.0, 200.0
    e, n = crop.pixel_to_offset_en_m(row, col)
    assert (e, n) == pytest.approx(((200 - 124.5) * 0.4, -(10 - 124.5) * 0.4))


def test_crop_without_datum_has_no_map_frame(utm_world_tif, world):
    with GeoTiffSource(utm_world_tif) as source:
        crop = source.crop(*world.marker_latlon(0), 40.0, 64)
    assert not crop.has_map_frame and crop.map_from_crop_yaw_rad == 0.0
    with pytest.raises(ValueError, match='datum'):
        crop.offset_en_m_to_map_xy(0.0, 0.0)
    lat, lon = crop.offset_en_m_to_geodetic(0.0, 10.0)
    assert float(lat) > crop.centre_lat_deg and float(lon) == pytest.approx(crop.centre_lon_deg)


def test_geotiff_and_xyz_crops_of_the_same_place_agree(utm_world_tif, xyz_world, world):
    """Same world, UTM grid-north raster vs Web Mercator tiles: markers within 0.2 px."""
    lat, lon = world.marker_latlon(0)
    lat_q, lon_q = LocalEnu(lat, lon).to_geodetic(3.3, -7.1, 0.0)[:2]
    with GeoTiffSource(utm_world_tif) as tif:
        a = tif.crop(float(lat_q), float(lon_q), 120.0, 300)
    b = XyzTileSource(xyz_world[0], 18).crop(float(lat_q), float(lon_q), 120.0, 300)
    for channel, (e, n) in {0: (-3.3, 7.1), 1: (-3.3, 57.1), 2: (26.7, 7.1)}.items():
        row, col = 149.5 - n / 0.4, 149.5 + e / 0.4
        ra, ca = world.blob_centroid(a.image, channel, row, col)
        rb, cb = world.blob_centroid(b.image, channel, row, col)
        assert math.hypot(ra - rb, ca - cb) < 0.2
        assert math.hypot(ra - row, ca - col) < 0.2
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 1.0


def test_make_source(utm_world_tif, xyz_world, world):
    source = make_source('geotiff', path=str(utm_world_tif))
    assert isinstance(source, GeoTiffSource) and 'EPSG:32632' in source.describe()
    source.close()
    tiles = make_source('xyz', root=str(xyz_world[0]), zoom=18, ext='png', cache_tiles=8)
    assert isinstance(tiles, XyzTileSource) and tiles.cache_tiles == 8
    assert isinstance(tiles.crop(*world.marker_latlon(0), 30.0, 32), SatelliteCrop)
    with pytest.raises(ValueError, match="'mbtiles'.*geotiff"):
        make_source('mbtiles', path='x')
    with pytest.raises(ValueError, match='zooom'):
        make_source('xyz', root=str(xyz_world[0]), zooom=18)
    with pytest.raises(ValueError, match='zoom'):
        make_source('xyz', root=str(xyz_world[0]))


def test_coverage_error_is_a_runtime_error_with_context(xyz_world):
    source = XyzTileSource(xyz_world[0], 18)
    with pytest.raises(RuntimeError):
        source.crop(0.0, 0.0, 30.0, 32)
    with pytest.raises(MapCoverageError, match=r'lat=0\.0000000, lon=0\.0000000'):
        source.crop(0.0, 0.0, 30.0, 32)


def test_satellite_and_fix_buffer_import_without_ros():
    """Reusable offline: importing them must not pull in rclpy or any message package."""
    code = ('import sys\n'
            'for name in ("rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "std_msgs"):\n'
            '    sys.modules[name] = None\n'
            'import geodistill_ros.satellite, geodistill_ros.node.fix_buffer\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    # counter-example: the blocking works, messages.py (which needs ROS) fails to import
    result = subprocess.run([sys.executable, '-c', code + 'import geodistill_ros.node.messages\n'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and 'ModuleNotFoundError' in result.stderr
