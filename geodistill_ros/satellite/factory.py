"""Build a map source from configuration: ``make_source('geotiff', path=...)``."""
from __future__ import annotations

import inspect

from geodistill_ros.satellite.base import SatelliteSource
from geodistill_ros.satellite.geotiff import GeoTiffSource
from geodistill_ros.satellite.xyz import XyzTileSource

SOURCE_KINDS: dict[str, type[SatelliteSource]] = {
    'geotiff': GeoTiffSource,
    'xyz': XyzTileSource,
}
"""Map source kinds by configuration name."""


def make_source(kind: str, **options) -> SatelliteSource:
    """A map source of ``kind`` ('geotiff' | 'xyz') built from keyword options.

    Options are the constructor arguments of the kind (GeoTiffSource: path, bands,
    max_nodata_fraction; XyzTileSource: root, zoom, ext, tms, cache_tiles, tile_size_px,
    max_nodata_fraction). Unknown kinds or options raise ValueError listing the valid ones.
    """
    try:
        cls = SOURCE_KINDS[kind]
    except KeyError:
        raise ValueError(f'unknown map source kind {kind!r}; use one of '
                         f'{sorted(SOURCE_KINDS)}') from None
    params = inspect.signature(cls.__init__).parameters
    accepted = [name for name in params if name != 'self']
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f'map source {kind!r} got unknown option(s) {unknown}; '
                         f'accepted: {accepted}')
    missing = [name for name, p in params.items() if name != 'self'
               and p.default is inspect.Parameter.empty and name not in options]
    if missing:
        raise ValueError(f'map source {kind!r} needs option(s) {missing}')
    return cls(**options)
