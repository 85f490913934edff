"""GeoTIFF (or any GDAL raster) map source: orthophotos in a projected CRS or EPSG:4326.

National orthophotos come in UTM / Gauss-Krueger grids, i.e. grid-north-up: the crop is
resampled through PROJ (projected.py), so it comes out true-north-up at the crop centre.
Only the window under the crop is read (windowed reads; GDAL overviews when the raster is
much finer than the crop). Bands: 1 (grey), 3 (RGB) or 4 (RGB + alpha or a fourth band,
ignored); nodata values, alpha bands and internal masks mark pixels the crop must avoid.
"""
from __future__ import annotations

import logging
from pathlib import Path
import threading

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from geodistill_ros.satellite.base import MapSourceError
from geodistill_ros.satellite.projected import ProjectedRasterSource

LOG = logging.getLogger(__name__)


class GeoTiffSource(ProjectedRasterSource):
    """North-up metric crops from one georeferenced raster file.

    path: the GeoTIFF (anything rasterio opens). bands: 1-based band indices to use as
    RGB (or one band as grey); default (1,) for 1-band and (1, 2, 3) for 3/4-band rasters.
    max_nodata_fraction: share of crop pixels allowed to touch nodata (default 0.0).
    The file stays open until ``close()``; reads are serialised with a lock.
    """

    def __init__(self, path, bands: tuple[int, ...] | None = None,
                 max_nodata_fraction: float = 0.0):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f'satellite GeoTIFF not found: {self.path}; set the map '
                                    'source path parameter to an existing file')
        try:
            self._dataset = rasterio.open(self.path)
        except RasterioIOError as err:
            raise MapSourceError(f'cannot read satellite GeoTIFF {self.path}: {err}; check '
                                 'the file with gdalinfo') from err
        ds = self._dataset
        try:
            if ds.crs is None:
                raise MapSourceError(f'{self.path} has no CRS; georeference it (gdal_edit.py '
                                     '-a_srs or gdalwarp -t_srs) before use')
            self.bands = self._pick_bands(ds, bands)
            dtypes = {ds.dtypes[b - 1] for b in self.bands}
            if dtypes != {'uint8'}:
                raise MapSourceError(f'{self.path}: bands {self.bands} are {sorted(dtypes)}, '
                                     'expected uint8; convert with gdal_translate -ot Byte '
                                     '-scale')
            flags = [ds.mask_flag_enums[b - 1] for b in self.bands]
            self._has_mask = any(f != [MaskFlags.all_valid] for f in flags)
            super().__init__(ds.crs.to_wkt(), ds.transform, ds.height, ds.width,
                             max_nodata_fraction)
        except Exception:
            ds.close()
            raise
        self._lock = threading.Lock()
        LOG.debug('opened %s', self.describe())

    @staticmethod
    def _pick_bands(ds, bands):
        if bands is None:
            if ds.count == 1:
                bands = (1,)
            elif ds.count in (3, 4):
                bands = (1, 2, 3)
                if ds.count == 4 and ds.colorinterp[3] != ColorInterp.alpha:
                    LOG.warning('%s: 4 bands without alpha; using bands 1-3 as RGB', ds.name)
            else:
                raise MapSourceError(f'{ds.name} has {ds.count} bands; pass bands=(r, g, b) '
                                     '(1-based) to choose the RGB bands')
        bands = tuple(int(b) for b in bands)
        if len(bands) not in (1, 3) or not all(1 <= b <= ds.count for b in bands):
            raise MapSourceError(f'bands={bands} invalid for {ds.name} with {ds.count} bands; '
                                 'give one grey band or three RGB bands, 1-based')
        return bands

    def _where(self) -> str:
        return str(self.path)

    def _read_window(self, row0, col0, rows, cols, out_rows, out_cols):
        window = Window(col0, row0, cols, rows)
        decimated = (out_rows, out_cols) != (rows, cols)
        resampling = Resampling.average if decimated else Resampling.nearest
        with self._lock:
            if self._dataset.closed:
                raise MapSourceError(f'{self.path} was closed')
            try:
                data = self._dataset.read(indexes=list(self.bands), window=window,
                                          out_shape=(len(self.bands), out_rows, out_cols),
                                          resampling=resampling)
                valid = None
                if self._has_mask:
                    valid = self._dataset.dataset_mask(window=window,
                                                       out_shape=(out_rows, out_cols)) > 0
            except RasterioIOError as err:
                raise MapSourceError(f'reading {self.path} window {window} failed: {err}; '
                                     'the file may be truncated (check with gdalinfo -checksum)'
                                     ) from err
        rgb = np.moveaxis(data, 0, -1)
        if rgb.shape[-1] == 1:
            rgb = np.repeat(rgb, 3, axis=-1)
        return np.ascontiguousarray(rgb), valid

    def close(self) -> None:
        self._dataset.close()
