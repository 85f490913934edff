"""Synthetic cross-view world: a procedural 2.5D city and its satellite and street views.

Everything is a pure function of (config, seed): numpy (+ OpenCV for resampling and
JPEG), no files, no network, no ROS.

    world = generate_world(WorldConfig(style='grid_downtown', size_m=320.0), seed=0)
    poses = sample_street_poses(world, 100, seed=1, yaw_mode='uniform')
    pano = render_panorama(world, poses.pose(0), 320, 640, seed=7).rgb  # (320, 640, 3)
    crop = NorthUpCrop(640, 640, 0.11, poses.east_m[0], poses.north_m[0])
    sat = render_satellite(world, crop, seed=7)  # (640, 640, 3), north-up
    drive = sample_drive(world, n_frames=300, speed_mps=8.0, hz=10.0, seed=2)
    image = render_pinhole(world, drive.pose(0), KITTI_CAMERA).rgb  # (375, 1242, 3)

Conventions (docs/method.md section 6): map frame ENU metres with the origin at the
world's south-west corner; yaw in radians, 0 = east, counter-clockwise; satellite crops
are geometry.raster.NorthUpCrop rasters (row grows south, pixel centres at integers);
panoramas have the camera's forward axis at column (W - 1) / 2 and azimuth growing
clockwise to the right; pinhole images use the OpenCV camera frame. The ground is flat
at height 0; CameraPose.height_m is the optical centre's height above it.

Domain gap (DomainGapConfig, in WorldConfig): a different sun per view, transient cars
(in one view only), and per-view camera looks (colour, blur, noise, JPEG);
DomainGapConfig.disabled() makes both views agree exactly.

Exports in the official layouts (docs/method.md section 6), read by data.vigor and
data.kitti: export_vigor_city, export_kitti_drive, export_geotiff (a UTM GeoTIFF of a world),
georef (the synthetic cities and their world <-> WGS 84 georeference) and
make_synthetic(preset, out_dir, seed) with the presets tiny, bench and demo
(train/make_synthetic.py is its command line).
"""
from geodistill_core.data.synthetic.cars import CarPresence, CarTable
from geodistill_core.data.synthetic.config import (
    GROUND_LOOK,
    IDENTITY_LOOK,
    SATELLITE_LOOK,
    DomainGapConfig,
    SunConfig,
    ViewLook,
    WorldConfig,
)
from geodistill_core.data.synthetic.drive import Drive, hide_ground_cars_near, sample_drive
from geodistill_core.data.synthetic.export_geotiff import (
    GeoTiffConfig,
    GeoTiffExport,
    export_geotiff,
)
from geodistill_core.data.synthetic.export_kitti import (
    KittiDriveConfig,
    KittiDriveExport,
    export_kitti_drive,
    min_satmap_px,
)
from geodistill_core.data.synthetic.export_vigor import (
    VigorCityExport,
    VigorExportConfig,
    export_vigor_city,
    read_vigor_meta,
)
from geodistill_core.data.synthetic.georef import (
    SYNTHETIC_CITIES,
    Georeference,
    SyntheticCity,
    get_city,
)
from geodistill_core.data.synthetic.ground_view import GroundRenderConfig, GroundView
from geodistill_core.data.synthetic.materials import (
    ROAD_MATERIALS,
    SIDEWALK_MATERIALS,
    Material,
    RenderLabel,
)
from geodistill_core.data.synthetic.panorama import panorama_rays, render_panorama
from geodistill_core.data.synthetic.pinhole import (
    KITTI_CAMERA,
    PinholeCamera,
    pinhole_rays,
    render_pinhole,
)
from geodistill_core.data.synthetic.poses import (
    KITTI_CAMERA_HEIGHT_M,
    VIGOR_CAMERA_HEIGHT_M,
    CameraPose,
)
from geodistill_core.data.synthetic.presets import (
    PRESET_NAMES,
    SYNTHETIC_PRESETS,
    SyntheticPreset,
    make_synthetic,
)
from geodistill_core.data.synthetic.raymarch import RayBundle, RayMarchConfig
from geodistill_core.data.synthetic.roads import RoadEdge, RoadNetwork
from geodistill_core.data.synthetic.satellite import render_satellite, render_satellite_linear
from geodistill_core.data.synthetic.scenes import SceneBox, SceneCar, SceneTree, build_scene
from geodistill_core.data.synthetic.street_poses import PoseSamples, sample_street_poses
from geodistill_core.data.synthetic.styles import CITY_STYLES, CityStyle, get_city_style
from geodistill_core.data.synthetic.world import BuildingTable, TreeTable, World, generate_world

__all__ = [
    'CITY_STYLES', 'GROUND_LOOK', 'IDENTITY_LOOK', 'KITTI_CAMERA', 'KITTI_CAMERA_HEIGHT_M',
    'ROAD_MATERIALS', 'SATELLITE_LOOK', 'SIDEWALK_MATERIALS', 'VIGOR_CAMERA_HEIGHT_M',
    'BuildingTable', 'CameraPose', 'CarPresence', 'CarTable', 'CityStyle',
    'DomainGapConfig', 'Drive', 'GroundRenderConfig', 'GroundView', 'Material',
    'PinholeCamera', 'PoseSamples', 'RayBundle', 'RayMarchConfig', 'RenderLabel',
    'RoadEdge', 'RoadNetwork', 'SceneBox', 'SceneCar', 'SceneTree', 'SunConfig',
    'TreeTable', 'ViewLook', 'World', 'WorldConfig', 'build_scene', 'generate_world',
    'get_city_style', 'hide_ground_cars_near', 'panorama_rays', 'pinhole_rays',
    'render_panorama', 'render_pinhole', 'render_satellite', 'render_satellite_linear',
    'sample_drive', 'sample_street_poses',
    # exports in the official layouts (export_vigor, export_kitti, export_geotiff, presets)
    'PRESET_NAMES', 'SYNTHETIC_CITIES', 'SYNTHETIC_PRESETS', 'GeoTiffConfig', 'GeoTiffExport',
    'Georeference', 'KittiDriveConfig', 'KittiDriveExport', 'SyntheticCity', 'SyntheticPreset',
    'VigorCityExport', 'VigorExportConfig', 'export_geotiff', 'export_kitti_drive',
    'export_vigor_city', 'get_city', 'make_synthetic', 'min_satmap_px', 'read_vigor_meta',
]
