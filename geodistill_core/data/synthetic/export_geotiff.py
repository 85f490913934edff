"""Export a whole world as a georeferenced satellite GeoTIFF in its UTM zone.

The raster is north-up in the *UTM grid* of the world's datum (WGS 84 / UTM, EPSG 326zz),
``meters_per_px`` grid metres per pixel, covering the UTM bounding box of the world (pixels
outside the world show the renderer's plain outside colour). The world frame (local ENU at
the datum) and the UTM grid differ by the meridian convergence (a rotation of up to a few
degrees) and the UTM scale factor (about 1e-4), so the world is not pasted in by a
translation: every raster pixel centre goes UTM -> WGS 84 -> world (Georeference) exactly
on a control grid (every ``control_step_px`` pixels, bilinear in between: below 1e-5 px
here), and the world's satellite render is resampled there (bilinear).

The render is made once in world axes at ``meters_per_px`` (in overlapping tiles, to bound
memory; the overlap covers blur and car shadows so tiles join seamlessly), passed through
the satellite look once (colour, blur, noise, JPEG, seeded), then resampled to the UTM grid.
A JSON sidecar (``<name>.json``) records the datum, CRS, transform and world.
``geodistill_ros.satellite.GeoTiffSource`` reads the file (tested).
"""
from __future__ import annotations

from dataclasses import dataclass
import math
import os
from pathlib import Path

from affine import Affine
import cv2
import numpy as np
import rasterio
from rasterio.crs import CRS

from geodistill_core.data.synthetic.appearance import apply_look
from geodistill_core.data.synthetic.config import ViewLook
from geodistill_core.data.synthetic.export_io import write_json_atomic
from geodistill_core.data.synthetic.georef import Georeference
from geodistill_core.data.synthetic.satellite import render_satellite_linear
from geodistill_core.data.synthetic.world import World
from geodistill_core.geometry.raster import NorthUpCrop


@dataclass(frozen=True)
class GeoTiffConfig:
    """meters_per_px: UTM grid metres per pixel. tile_px / overlap_m: render tiling.
    control_step_px: spacing of the exact UTM -> world evaluations."""

    meters_per_px: float = 0.2
    tile_px: int = 1024
    overlap_m: float = 12.0
    control_step_px: int = 32

    def __post_init__(self):
        if not 0.02 <= self.meters_per_px <= 10.0 or self.tile_px < 64:
            raise ValueError(f'bad GeoTIFF config: {self}')


@dataclass(frozen=True)
class GeoTiffExport:
    path: Path
    epsg: int
    transform: Affine
    height_px: int
    width_px: int
    convergence_rad: float


def _control(n: int, step: int) -> np.ndarray:
    return np.unique(np.r_[np.arange(0, n, step), n - 1]).astype(np.float64)


def _bilinear(values: np.ndarray, ctrl_r: np.ndarray, ctrl_c: np.ndarray, rows: int,
              cols: int) -> np.ndarray:
    """(len(ctrl_r), len(ctrl_c)) samples -> (rows, cols) float32, bilinear in between."""
    def weights(n, ctrl):
        px = np.arange(n, dtype=np.float64)
        j = np.clip(np.searchsorted(ctrl, px, side='right') - 1, 0, max(len(ctrl) - 2, 0))
        if len(ctrl) == 1:
            return j, np.zeros(n)
        return j, (px - ctrl[j]) / (ctrl[j + 1] - ctrl[j])

    jr, tr = weights(rows, ctrl_r)
    jc, tc = weights(cols, ctrl_c)
    jr1 = np.minimum(jr + 1, len(ctrl_r) - 1)
    jc1 = np.minimum(jc + 1, len(ctrl_c) - 1)
    along_r = values[jr] * (1 - tr)[:, None] + values[jr1] * tr[:, None]
    return (along_r[:, jc] * (1 - tc) + along_r[:, jc1] * tc).astype(np.float32)


def utm_grid(world: World, georef: Georeference, meters_per_px: float):
    """UTM raster covering the world: (epsg, transform, height_px, width_px), snapped to
    multiples of meters_per_px."""
    epsg = georef.utm_epsg()
    s = np.linspace(0.0, world.size_m, 33)
    edge_e = np.r_[s, s, np.zeros_like(s), np.full_like(s, world.size_m)]
    edge_n = np.r_[np.zeros_like(s), np.full_like(s, world.size_m), s, s]
    x, y = georef.world_to_utm(edge_e, edge_n, epsg)
    x0 = round(math.floor(x.min() / meters_per_px) * meters_per_px, 6)
    y1 = round(math.ceil(y.max() / meters_per_px) * meters_per_px, 6)
    width = int(math.ceil((x.max() - x0) / meters_per_px - 1e-9))
    height = int(math.ceil((y1 - y.min()) / meters_per_px - 1e-9))
    return epsg, Affine(meters_per_px, 0.0, x0, 0.0, -meters_per_px, y1), height, width


def render_world_linear(world: World, crop: NorthUpCrop, tile_px: int, overlap_m: float,
                        cars: str = 'satellite') -> np.ndarray:
    """render_satellite_linear of a large crop, tile by tile: (rows, cols, 3) float32."""
    out = np.empty((crop.rows, crop.cols, 3), np.float32)
    ov = int(math.ceil(overlap_m / crop.meters_per_px))
    for r0 in range(0, crop.rows, tile_px):
        for c0 in range(0, crop.cols, tile_px):
            r1, c1 = min(r0 + tile_px, crop.rows), min(c0 + tile_px, crop.cols)
            centre = crop.pixel_to_map(0.5 * (r0 + r1 - 1), 0.5 * (c0 + c1 - 1))
            tile = NorthUpCrop(r1 - r0 + 2 * ov, c1 - c0 + 2 * ov, crop.meters_per_px, *centre)
            lin = render_satellite_linear(world, tile, cars)
            out[r0:r1, c0:c1] = lin[ov:ov + r1 - r0, ov:ov + c1 - c0]
    return out


def export_geotiff(world: World, georef: Georeference, path: str | Path,
                   config: GeoTiffConfig = GeoTiffConfig(), seed: int = 0,
                   look: ViewLook | None = None, cars: str = 'satellite') -> GeoTiffExport:
    """Write the world's satellite map as a UTM GeoTIFF (+ JSON sidecar) at ``path``.

    look: photometric model (default: the world's satellite look); seed: its noise/jitter.
    """
    path = Path(path)
    mpp = config.meters_per_px
    epsg, transform, height, width = utm_grid(world, georef, mpp)
    step = config.control_step_px
    ctrl_r, ctrl_c = _control(height, step), _control(width, step)
    cx, cy = transform @ (ctrl_c[None, :] + 0.5, ctrl_r[:, None] + 0.5)
    east_c, north_c = georef.utm_to_world(*np.broadcast_arrays(cx, cy), epsg)
    east = _bilinear(np.asarray(east_c), ctrl_r, ctrl_c, height, width)
    north = _bilinear(np.asarray(north_c), ctrl_r, ctrl_c, height, width)
    pad = 3.0 * mpp
    e0, e1 = float(east.min()) - pad, float(east.max()) + pad
    n0, n1 = float(north.min()) - pad, float(north.max()) + pad
    cols, rows = int(math.ceil((e1 - e0) / mpp)), int(math.ceil((n1 - n0) / mpp))
    canvas = NorthUpCrop(rows, cols, mpp, 0.5 * (e0 + e1), 0.5 * (n0 + n1))
    linear = render_world_linear(world, canvas, config.tile_px, config.overlap_m, cars)
    look = world.config.domain_gap.satellite_look if look is None else look
    rgb = apply_look(linear, look, np.random.default_rng(seed))
    del linear
    map_r, map_c = canvas.map_to_pixel(east, north)
    del east, north
    image = cv2.remap(rgb, map_c.astype(np.float32), map_r.astype(np.float32), cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp')
    profile = dict(driver='GTiff', height=height, width=width, count=3, dtype='uint8',
                   crs=CRS.from_epsg(epsg), transform=transform, tiled=True, blockxsize=256,
                   blockysize=256, compress='deflate', predictor=2, photometric='RGB')
    convergence = georef.utm_convergence_rad(epsg)
    with rasterio.open(tmp, 'w', **profile) as dst:
        dst.write(np.moveaxis(image, -1, 0))
        dst.update_tags(DATUM_LAT_DEG=repr(georef.lat_deg), DATUM_LON_DEG=repr(georef.lon_deg),
                        DATUM_ALT_M=repr(georef.alt_m), WORLD_SIZE_M=repr(world.size_m),
                        STYLE=world.style.name)
    os.replace(tmp, path)
    sidecar = {'file': path.name, 'epsg': epsg, 'transform': list(transform)[:6],
               'height_px': height, 'width_px': width, 'meters_per_px': mpp,
               'datum': georef.to_json(), 'world_size_m': world.size_m,
               'world_seed': world.seed, 'style': world.style.name, 'look_seed': seed,
               'convergence_deg': math.degrees(convergence),
               'world_frame': 'local ENU at the datum (the world south-west corner), metres'}
    write_json_atomic(path.with_suffix('.json'), sidecar)
    return GeoTiffExport(path, epsg, transform, height, width, convergence)
