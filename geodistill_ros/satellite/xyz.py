"""Local XYZ tile folders (``{root}/{z}/{x}/{y}.{ext}``, Web Mercator) as a map source.

The folder layout is what ``gdal2tiles.py --xyz`` and most tile downloaders write; TMS
folders (gdal2tiles' default) count rows from the south: ``tms=True`` flips y. At one zoom
level the tiles form a virtual EPSG:3857 raster of (2^z * tile) pixels a side, cropped
through the shared PROJ resampling (projected.py), so Web Mercator's latitude-dependent
scale is handled exactly. Tiles are decoded with OpenCV (grey, RGB, RGBA: alpha = 0 is
nodata) and kept in an LRU cache bounded by tile count. No network access, by design:
commercial tile terms often forbid bulk caching, so the user supplies the folder.
"""
from __future__ import annotations

from collections import OrderedDict
import logging
from pathlib import Path
import threading

from affine import Affine
import cv2
import numpy as np

from geodistill_core.geodesy import web_mercator_meters_per_px
from geodistill_ros.satellite.base import MapCoverageError, MapSourceError
from geodistill_ros.satellite.projected import ProjectedRasterSource

LOG = logging.getLogger(__name__)

WEB_MERCATOR_HALF_WORLD_M = 20037508.342789244
"""Half the side of the EPSG:3857 square world, metres (pi * 6378137)."""

TILE_EXTENSIONS = ('png', 'jpg', 'jpeg', 'webp')


def read_tile_rgb(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode one tile -> (RGB (T, T, 3) uint8, valid (T, T) bool or None without alpha)."""
    tile = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if tile is None:
        raise MapSourceError(f'unreadable tile {path}; delete it and re-create the tile folder')
    if tile.dtype != np.uint8:
        raise MapSourceError(f'tile {path} is {tile.dtype}, expected 8-bit; re-export tiles')
    if tile.ndim == 2:
        return cv2.cvtColor(tile, cv2.COLOR_GRAY2RGB), None
    if tile.shape[2] == 3:
        return cv2.cvtColor(tile, cv2.COLOR_BGR2RGB), None
    if tile.shape[2] == 4:
        return cv2.cvtColor(tile, cv2.COLOR_BGRA2RGB), tile[..., 3] > 0
    raise MapSourceError(f'tile {path} has {tile.shape[2]} channels, expected 1, 3 or 4')


class XyzTileSource(ProjectedRasterSource):
    """North-up metric crops stitched from a local slippy-map tile folder at one zoom.

    root: folder holding ``{zoom}/{x}/{y}.{ext}``. zoom: tile zoom level. ext: png | jpg |
    jpeg | webp. tms: rows counted from the south (gdal2tiles without --xyz).
    cache_tiles: LRU bound on decoded tiles kept in memory (0 disables the cache).
    tile_size_px: None = read it from the first tile found (256, or 512 for 'scale 2').
    max_nodata_fraction: share of crop pixels allowed on transparent (alpha 0) tile pixels.
    """

    def __init__(self, root, zoom: int, ext: str = 'png', tms: bool = False,
                 cache_tiles: int = 256, tile_size_px: int | None = None,
                 max_nodata_fraction: float = 0.0):
        self.root = Path(root)
        self.zoom = int(zoom)
        self.ext = ext.lower().lstrip('.')
        self.tms = bool(tms)
        if self.ext not in TILE_EXTENSIONS:
            raise ValueError(f'tile ext {ext!r} unsupported; use one of {TILE_EXTENSIONS}')
        if not 0 <= self.zoom <= 24:
            raise ValueError(f'zoom must be in 0..24, got {zoom}')
        if int(cache_tiles) < 0:
            raise ValueError(f'cache_tiles must be >= 0, got {cache_tiles}')
        self.cache_tiles = int(cache_tiles)
        zoom_dir = self.root / str(self.zoom)
        if not zoom_dir.is_dir():
            raise FileNotFoundError(f'tile folder {zoom_dir} not found; the map source needs '
                                    f'{{root}}/{{z}}/{{x}}/{{y}}.{self.ext} with z={self.zoom}')
        self.tile_size_px = int(tile_size_px or self._detect_tile_size(zoom_dir))
        self.tiles_per_axis = 2 ** self.zoom
        world_px = self.tiles_per_axis * self.tile_size_px
        res_m = 2.0 * WEB_MERCATOR_HALF_WORLD_M / world_px
        transform = Affine(res_m, 0.0, -WEB_MERCATOR_HALF_WORLD_M,
                           0.0, -res_m, WEB_MERCATOR_HALF_WORLD_M)
        super().__init__('EPSG:3857', transform, world_px, world_px, max_nodata_fraction)
        self._cache: OrderedDict[tuple[int, int], tuple] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0

    def _detect_tile_size(self, zoom_dir: Path) -> int:
        for x_dir in sorted(zoom_dir.iterdir()):
            for tile in sorted(x_dir.glob(f'*.{self.ext}')) if x_dir.is_dir() else ():
                rgb, _ = read_tile_rgb(tile)
                if rgb.shape[0] != rgb.shape[1]:
                    raise MapSourceError(f'tile {tile} is {rgb.shape[1]}x{rgb.shape[0]}, '
                                         'expected square tiles')
                return rgb.shape[0]
        raise MapCoverageError(f'no *.{self.ext} tiles under {zoom_dir}; check root, zoom '
                               'and ext')

    def _where(self) -> str:
        return f'{self.root}/{self.zoom}/{{x}}/{{y}}.{self.ext}' + (' (TMS)' if self.tms else '')

    def tile_path(self, x: int, y: int) -> Path:
        """File of XYZ tile (x, y) (y counted from the north) in this folder."""
        y_file = self.tiles_per_axis - 1 - y if self.tms else y
        return self.root / str(self.zoom) / str(x) / f'{y_file}.{self.ext}'

    def cache_info(self) -> dict:
        return {'hits': self.cache_hits, 'misses': self.cache_misses,
                'size': len(self._cache), 'max_size': self.cache_tiles}

    def _tile(self, x: int, y: int):
        key = (x, y)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return self._cache[key]
        path = self.tile_path(x, y)
        if not path.is_file():
            raise MapCoverageError(f'missing tile z={self.zoom} x={x} y={y}: {path} does not '
                                   'exist; add the tiles covering this area (e.g. gdal2tiles.py '
                                   '--xyz, or check the tms flag)')
        tile = read_tile_rgb(path)
        if tile[0].shape[:2] != (self.tile_size_px, self.tile_size_px):
            raise MapSourceError(f'tile {path} is {tile[0].shape[1]}x{tile[0].shape[0]}, '
                                 f'expected {self.tile_size_px} px; set tile_size_px')
        with self._lock:
            self.cache_misses += 1
            if self.cache_tiles > 0:
                self._cache[key] = tile
                while len(self._cache) > self.cache_tiles:
                    self._cache.popitem(last=False)
        return tile

    def _read_window(self, row0, col0, rows, cols, out_rows, out_cols):
        size = self.tile_size_px
        ty0, ty1 = row0 // size, (row0 + rows - 1) // size
        tx0, tx1 = col0 // size, (col0 + cols - 1) // size
        mosaic = np.empty(((ty1 - ty0 + 1) * size, (tx1 - tx0 + 1) * size, 3), np.uint8)
        valid = None
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                rgb, tile_valid = self._tile(tx, ty)
                rs, cs = (ty - ty0) * size, (tx - tx0) * size
                mosaic[rs:rs + size, cs:cs + size] = rgb
                if tile_valid is not None:
                    if valid is None:
                        valid = np.ones(mosaic.shape[:2], bool)
                    valid[rs:rs + size, cs:cs + size] = tile_valid
        r, c = row0 - ty0 * size, col0 - tx0 * size
        rgb = mosaic[r:r + rows, c:c + cols]
        valid = None if valid is None else valid[r:r + rows, c:c + cols]
        if (out_rows, out_cols) != (rows, cols):
            rgb = cv2.resize(rgb, (out_cols, out_rows), interpolation=cv2.INTER_AREA)
            if valid is not None:
                valid = cv2.resize(valid.astype(np.float32), (out_cols, out_rows),
                                   interpolation=cv2.INTER_AREA) >= 1.0 - 1e-6
        return np.ascontiguousarray(rgb), valid

    def meters_per_px_at(self, lat_deg: float) -> float:
        """Native ground resolution of the tiles at a latitude (m/px)."""
        return float(web_mercator_meters_per_px(lat_deg, self.zoom, self.tile_size_px))
