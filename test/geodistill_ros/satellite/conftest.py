"""A synthetic world with markers at known WGS 84 positions, rendered as maps in tmp dirs.

Colour = f(lat, lon): background 40 in every channel plus Gaussian blobs (sigma 1 m):
red at CENTRE, green 50 m due (true) north of it, blue 30 m due east. Renderers evaluate
f at each map pixel's exact centre, so any half-pixel, axis or convergence error in a
map source moves the blobs in its crops.
"""
import math
from types import SimpleNamespace

from affine import Affine
import cv2
import mercantile
import numpy as np
import pytest
import rasterio

from geodistill_core.geodesy import LocalEnu, geodetic_to_utm, utm_to_geodetic

CENTRE_LAT_DEG, CENTRE_LON_DEG = 49.0151234, 8.4298765  # Karlsruhe (KITTI), UTM 32N
BACKGROUND = 40.0
BLOB_SIGMA_M = 1.0
MARKERS_EN_M = {0: (0.0, 0.0), 1: (0.0, 50.0), 2: (30.0, 0.0)}  # channel: (east, north)
UTM_RES_M = 0.25
HALF_EXTENT_M = 100.0


def world_rgb(lat_deg, lon_deg) -> np.ndarray:
    """(..., 3) uint8 colour of the synthetic world at WGS 84 points."""
    east, north, _ = LocalEnu(CENTRE_LAT_DEG, CENTRE_LON_DEG).to_enu(lat_deg, lon_deg, 0.0)
    rgb = np.full(np.shape(east) + (3,), BACKGROUND)
    for channel, (e0, n0) in MARKERS_EN_M.items():
        d2 = (east - e0) ** 2 + (north - n0) ** 2
        rgb[..., channel] += 200.0 * np.exp(-d2 / (2.0 * BLOB_SIGMA_M**2))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def marker_latlon(channel: int):
    east, north = MARKERS_EN_M[channel]
    lat, lon, _ = LocalEnu(CENTRE_LAT_DEG, CENTRE_LON_DEG).to_geodetic(east, north, 0.0)
    return float(lat), float(lon)


def blob_centroid(image: np.ndarray, channel: int, row: float, col: float, radius: int = 12):
    """Sub-pixel (row, col) centroid of the blob in ``channel`` near (row, col)."""
    r, c = int(round(row)), int(round(col))
    r0, c0 = max(r - radius, 0), max(c - radius, 0)
    patch = image[r0:r + radius + 1, c0:c + radius + 1, channel].astype(np.float64)
    weight = np.clip(patch - BACKGROUND - 2.0, 0.0, None)
    assert weight.sum() > 0, f'no blob in channel {channel} near ({row:.1f}, {col:.1f})'
    rr, cc = np.mgrid[0:patch.shape[0], 0:patch.shape[1]]
    return (rr * weight).sum() / weight.sum() + r0, (cc * weight).sum() / weight.sum() + c0


def utm_origin():
    """Upper-left corner of the UTM test raster, deliberately off the 0.25 m grid."""
    e, n, epsg = geodetic_to_utm(CENTRE_LAT_DEG, CENTRE_LON_DEG, 32632)
    return float(e) - HALF_EXTENT_M + 0.0731, float(n) + HALF_EXTENT_M - 0.1317, epsg


def write_utm_world(path, nodata_box_px=None) -> None:
    """3-band uint8 GeoTIFF of the world in EPSG:32632 (grid north up), 0.25 m pixels."""
    west, north, epsg = utm_origin()
    n_px = int(2 * HALF_EXTENT_M / UTM_RES_M)
    cols, rows = np.meshgrid(np.arange(n_px), np.arange(n_px))
    east_m = west + (cols + 0.5) * UTM_RES_M
    north_m = north - (rows + 0.5) * UTM_RES_M
    lat, lon = utm_to_geodetic(east_m, north_m, epsg)
    rgb = world_rgb(lat, lon)
    transform = Affine(UTM_RES_M, 0.0, west, 0.0, -UTM_RES_M, north)
    profile = dict(driver='GTiff', width=n_px, height=n_px, count=3, dtype='uint8',
                   crs=f'EPSG:{epsg}', transform=transform,
                   tiled=True, blockxsize=256, blockysize=256, compress='deflate')
    if nodata_box_px is not None:
        r0, r1, c0, c1 = nodata_box_px
        rgb[r0:r1, c0:c1] = 0
        profile['nodata'] = 0
    with rasterio.open(path, 'w', **profile) as dst:
        dst.write(np.moveaxis(rgb, -1, 0))


def web_mercator_to_geodetic(x_m, y_m):
    """EPSG:3857 -> WGS 84 (lat_deg, lon_deg), the spherical formulas (independent of PROJ)."""
    radius = 6378137.0
    lon = np.degrees(x_m / radius)
    lat = np.degrees(2.0 * np.arctan(np.exp(y_m / radius)) - math.pi / 2.0)
    return lat, lon


def write_xyz_world(root, zoom: int, ext: str = 'png', tms: bool = False, tile_px: int = 256):
    """Slippy tiles of the world around CENTRE (+-80 m); returns the written tile list."""
    d_lat = 80.0 / 111_000.0
    d_lon = d_lat / math.cos(math.radians(CENTRE_LAT_DEG))
    tiles = list(mercantile.tiles(CENTRE_LON_DEG - d_lon, CENTRE_LAT_DEG - d_lat,
                                  CENTRE_LON_DEG + d_lon, CENTRE_LAT_DEG + d_lat, zoom))
    for tile in tiles:
        bounds = mercantile.xy_bounds(tile)
        res = (bounds.right - bounds.left) / tile_px
        cols, rows = np.meshgrid(np.arange(tile_px), np.arange(tile_px))
        x = bounds.left + (cols + 0.5) * res
        y = bounds.top - (rows + 0.5) * res
        lat, lon = web_mercator_to_geodetic(x, y)
        rgb = world_rgb(lat, lon)
        y_name = (2**zoom - 1 - tile.y) if tms else tile.y
        path = root / str(zoom) / str(tile.x) / f'{y_name}.{ext}'
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return tiles


@pytest.fixture(scope='session')
def world():
    """The world's helpers for test modules (conftest cannot be imported by name)."""
    return SimpleNamespace(
        centre_lat_deg=CENTRE_LAT_DEG, centre_lon_deg=CENTRE_LON_DEG, rgb=world_rgb,
        marker_latlon=marker_latlon, blob_centroid=blob_centroid, utm_origin=utm_origin,
        utm_res_m=UTM_RES_M, write_utm_world=write_utm_world, write_xyz_world=write_xyz_world)


@pytest.fixture(scope='session')
def utm_world_tif(tmp_path_factory):
    path = tmp_path_factory.mktemp('maps') / 'world_32632.tif'
    write_utm_world(path)
    return path


@pytest.fixture(scope='session')
def xyz_world(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiles_xyz')
    tiles = write_xyz_world(root, zoom=18)
    return root, tiles
