"""Geometry core: camera models, yaw rotation, ground-plane projections, raster frames.

Conventions are documented in each module and pinned by test/geodistill_core/geometry.
"""
from geodistill_core.geometry.bev import (
    DOWNWARD_VIEW_FOV_DEG,
    BevGrid,
    downward_view_grid,
    panorama_bev_grid,
    pinhole_bev_grid,
)
from geodistill_core.geometry.cameras import (
    panorama_azimuth_from_column,
    panorama_column_from_azimuth,
    panorama_elevation_from_row,
    panorama_row_from_elevation,
    project_pinhole,
    scale_intrinsics,
)
from geodistill_core.geometry.raster import (
    NorthUpCrop,
    offset_en_m_to_pixel,
    pixel_to_offset_en_m,
)
from geodistill_core.geometry.rotation import roll_panorama, rotate_bev
from geodistill_core.geometry.sampling import ImageSamplingGrid, sample_image

__all__ = [
    'DOWNWARD_VIEW_FOV_DEG', 'BevGrid', 'ImageSamplingGrid', 'NorthUpCrop',
    'downward_view_grid', 'offset_en_m_to_pixel', 'panorama_azimuth_from_column',
    'panorama_bev_grid', 'panorama_column_from_azimuth', 'panorama_elevation_from_row',
    'panorama_row_from_elevation', 'pinhole_bev_grid', 'pixel_to_offset_en_m',
    'project_pinhole', 'roll_panorama', 'rotate_bev', 'sample_image', 'scale_intrinsics',
]
