"""Satellite map sources -> north-up metric crops (no ROS import: usable offline).

``make_source('geotiff', path=...)`` or ``make_source('xyz', root=..., zoom=19)``, then
``source.crop(lat_deg, lon_deg, size_m, size_px, datum=LocalEnu(...))``.
"""
from geodistill_ros.satellite.base import (
    MapCoverageError,
    MapSourceError,
    SatelliteCrop,
    SatelliteSource,
)
from geodistill_ros.satellite.factory import SOURCE_KINDS, make_source
from geodistill_ros.satellite.geotiff import GeoTiffSource
from geodistill_ros.satellite.projected import ProjectedRasterSource
from geodistill_ros.satellite.xyz import XyzTileSource

__all__ = [
    'SOURCE_KINDS', 'GeoTiffSource', 'MapCoverageError', 'MapSourceError',
    'ProjectedRasterSource', 'SatelliteCrop', 'SatelliteSource', 'XyzTileSource',
    'make_source',
]
