"""The UTM GeoTIFF of a world, read back through the node's GeoTiffSource."""
import dataclasses
import json
import math

import numpy as np
import pytest
import rasterio

from geodistill_core.data.synthetic import (
    IDENTITY_LOOK,
    DomainGapConfig,
    GeoTiffConfig,
    WorldConfig,
    export_geotiff,
    generate_world,
    get_city,
    render_satellite,
)
from geodistill_core.geometry.raster import NorthUpCrop
from geodistill_ros.satellite import GeoTiffSource, MapCoverageError

MPP = 0.2
MARKER_EN = (176.0, 24.0)  # far from the world's centre: convergence matters there


@pytest.fixture(scope='module')
def marked(tmp_path_factory):
    """A 200 m old-town world (no domain gap, buildings, trees and cars removed) with a
    magenta 2 m square on the ground at MARKER_EN, placed at SynthOldTown (UTM 32N,
    convergence -2.1 deg), and its GeoTIFF rendered in 300 px tiles."""
    world = generate_world(WorldConfig(style='old_town', size_m=200.0, cell_m=0.25,
                                       domain_gap=DomainGapConfig.disabled()), 4)
    r, c = (int(round(v)) for v in world.grid.map_to_pixel(*MARKER_EN))
    surface = world.surface_rgb.copy()
    surface[r - 4:r + 4, c - 4:c + 4] = (255, 0, 255)
    flat, no_car = np.zeros_like(world.height_m), np.full_like(world.car_id, -1)
    sunny = np.full_like(world.lit_satellite, 255)  # nothing stands on or shades the marker
    world = dataclasses.replace(world, surface_rgb=surface, height_m=flat, canopy_top_m=flat,
                                car_id=no_car, lit_satellite=sunny)
    centre_en = world.grid.pixel_to_map(r - 0.5, c - 0.5)  # centre of the 8 x 8 cells
    georef = get_city('SynthOldTown').georef()
    path = tmp_path_factory.mktemp('geotiff') / 'old_town.tif'
    info = export_geotiff(world, georef, path, GeoTiffConfig(meters_per_px=MPP, tile_px=300),
                          look=IDENTITY_LOOK)
    return world, georef, info, centre_en


def marker_centroid(image):
    mask = (image[..., 0] > 100) & (image[..., 1] < 110) & (image[..., 2] > 100)
    rows, cols = np.nonzero(mask)
    assert mask.sum() > 50
    return rows.mean(), cols.mean()


def test_geotiff_is_north_up_utm_with_sidecar(marked):
    world, georef, info, _ = marked
    assert info.epsg == 32632 == georef.utm_epsg()
    assert math.degrees(info.convergence_rad) < -2.0
    with rasterio.open(info.path) as ds:
        assert ds.crs.to_epsg() == 32632 and ds.count == 3 and ds.dtypes[0] == 'uint8'
        assert ds.transform.b == ds.transform.d == 0.0 and ds.transform.a == -ds.transform.e
        assert ds.transform.a == MPP
        # the raster covers all four world corners
        x, y = georef.world_to_utm([0, 200, 0, 200], [0, 0, 200, 200])
        left, bottom, right, top = ds.bounds
        assert np.all((x > left) & (x < right) & (y > bottom) & (y < top))
    side = json.loads(info.path.with_suffix('.json').read_text())
    assert side['epsg'] == 32632 and side['datum'] == georef.to_json()


def test_geotiff_source_crop_matches_the_render_at_a_world_point(marked):
    world, georef, info, centre_en = marked
    lat, lon = georef.world_to_geodetic(*centre_en)
    size_px = 200
    with GeoTiffSource(info.path) as source:
        crop = source.crop(float(lat), float(lon), size_px * MPP, size_px)
    ref = render_satellite(world, NorthUpCrop(size_px, size_px, MPP, *centre_en),
                           look=IDENTITY_LOOK)
    mid = (size_px - 1) / 2
    np.testing.assert_allclose(marker_centroid(ref), (mid, mid), atol=0.1)
    np.testing.assert_allclose(marker_centroid(crop.image), (mid, mid), atol=1.0)
    diff = np.abs(crop.image.astype(float) - ref.astype(float))
    assert np.corrcoef(crop.image.ravel(), ref.ravel())[0, 1] > 0.98 and diff.mean() < 4.0
    # a translation-only georeference (no convergence) would miss the marker by pixels
    dist_m = math.hypot(centre_en[0] - 100.0, centre_en[1] - 100.0)
    assert dist_m * abs(info.convergence_rad) / MPP > 5.0


def test_geotiff_source_refuses_points_off_the_map(marked):
    _, georef, info, _ = marked
    lat, lon = georef.world_to_geodetic(-100.0, 100.0)
    with GeoTiffSource(info.path) as source, pytest.raises(MapCoverageError):
        source.crop(float(lat), float(lon), 40.0, 200)
