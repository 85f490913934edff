"""Typed, validated configuration of the localizer node, built from parameter values.

``config_from_values({name: value})`` (pure: no node needed) checks every value against the
parameter table and the cross-parameter rules, and returns a frozen ``NodeConfig``; the node
rebuilds it on every accepted parameter change and swaps it in atomically.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any

from geodistill_core.filtering import FusionConfig, YawTrackerConfig
from geodistill_core.geodesy import LocalEnu
from geodistill_ros.node.params import PARAMETERS, ParameterError


@dataclass(frozen=True)
class CameraOffset:
    """The camera in base_frame: position (metres) and heading (rad, CCW from base x)."""

    x_m: float = 0.0
    y_m: float = 0.0
    z_m: float = 0.0
    yaw_rad: float = 0.0


@dataclass(frozen=True)
class NodeConfig:
    """Everything the node reads from its parameters, in named, typed fields.

    datum: the map frame (ENU at the datum); None when datum_from_first_fix and no fix
    has been seen yet. map_source_options: keyword arguments of ``make_source``.
    Angles are radians, distances metres, times seconds.
    """

    camera_model: str
    image_transport: str
    camera_info_rectified: bool
    map_frame: str
    base_frame: str
    camera_offset: CameraOffset
    datum: LocalEnu | None
    datum_from_first_fix: bool
    map_source_kind: str
    map_source_options: dict = field(hash=False)
    crop_size_m: float = 70.0
    crop_size_px: int = 128
    max_image_pixels: int = 40_000_000
    location_checkpoint: str = ''
    orientation_checkpoint: str = ''
    device: str = 'auto'
    precision: str = 'float32'
    backend: str = 'torch'
    yaw_search: str = 'auto'
    heading_source: str = 'auto'
    yaw_prior_range_deg: float = 20.0
    yaw_search_auto_max_range_deg: float = 45.0
    heading_prior_sigma_deg: float = 0.0
    yaw_search_auto_min_sigma_deg: float = 1.5
    default_yaw_rad: float = 0.0
    default_yaw_range_deg: float = 180.0
    heading_max_age_s: float = 0.5
    track_min_speed_mps: float = 1.0
    gnss_velocity_input: str = 'twist_with_covariance'
    gnss_velocity_min_speed_mps: float = 2.0
    gnss_velocity_sigma_mps: float = 0.1
    track_window_s: float = 1.0
    max_fix_age_s: float = 0.5
    min_confidence: float = 0.0
    busy_policy: str = 'latest'
    low_confidence_policy: str = 'drop'
    low_confidence_inflation: float = 100.0
    publish_tf: bool = False
    publish_heatmap: bool = True
    publish_fix_corrected: bool = True
    diagnostics_period_s: float = 1.0
    warning_throttle_s: float = 5.0
    fusion_mode: str = 'filter'
    fusion: FusionConfig = FusionConfig()
    yaw_tracker: YawTrackerConfig = YawTrackerConfig()
    camera_max_search_yaw_std_deg: float = 180.0
    camera_max_prior_disagreement_deg: float = 180.0
    single_covariance_adapt: bool = True
    single_covariance_target_nis: float = 1.2
    single_covariance_gate: bool = False
    single_covariance_gate_nis: float = 9.21
    single_covariance_gate_inlier_scale: float = 0.5
    odometry_input: str = 'twist'
    odometry_sigma_mps: float = 0.1
    odometry_yaw_rate_sigma_rps: float = 0.01


def _datum(values: dict[str, Any]) -> LocalEnu | None:
    lat, lon = values['datum.latitude_deg'], values['datum.longitude_deg']
    if lat is None or lon is None:
        if values['datum.from_first_fix']:
            return None
        raise ParameterError(
            'the map datum is not set: set datum.latitude_deg and datum.longitude_deg (WGS 84 '
            'degrees of the map frame origin, e.g. near the start of the drive) in the '
            'params file or with -p, or set datum.from_first_fix: true')
    return LocalEnu(float(lat), float(lon), float(values['datum.altitude_m']))


def _map_source_options(values: dict[str, Any]) -> dict:
    if values['map_source.kind'] == 'geotiff':
        return {'path': values['map_source.path']}
    return {'root': values['map_source.root'], 'zoom': values['map_source.zoom'],
            'ext': values['map_source.ext'], 'tms': values['map_source.tms'],
            'cache_tiles': values['map_source.cache_tiles']}


def _single_covariance_adapt(v: dict[str, Any]) -> bool:
    """fusion.single_covariance_adapt: 'auto' = pinhole cameras."""
    mode = v['fusion.single_covariance_adapt']
    return mode == 'true' or (mode == 'auto' and v['camera_model'] == 'pinhole')


def _single_covariance_gate(v: dict[str, Any]) -> bool:
    """fusion.single_covariance_gate: 'auto' = where the innovation scale is off (its one
    factor already covers the wrong peaks)."""
    mode = v['fusion.single_covariance_gate']
    return mode == 'true' or (mode == 'auto' and not _single_covariance_adapt(v))


def _fusion_config(values: dict[str, Any]) -> FusionConfig:
    names = ('cell_m', 'window_m', 'process_noise_m2_per_s', 'process_noise_full_speed_mps',
             'heading_sigma_deg',
             'no_motion_sigma_mps', 'track_window_s', 'gnss_sigma_m', 'gnss_bias_sigma_m',
             'gnss_bias_correlation_s', 'gate_chi2', 'fix_jump_count', 'max_gap_s',
             'min_outlier_weight', 'camera_weight', 'camera_weight_distance_m', 'late_fix_max_s',
             'bias_excursion_chi2')
    mode = 'gnss' if values['fusion.mode'] == 'gnss' else 'filter'
    try:
        return FusionConfig(mode=mode, **{n: values[f'fusion.{n}'] for n in names})
    except ValueError as err:
        raise ParameterError(f'invalid fusion parameters: {err}') from err


# node parameter fusion.<name> -> YawTrackerConfig field
YAW_TRACKER_PARAMETERS = {'yaw_tracking': 'enabled',
                          'yaw_accel_sigma_dps2': 'yaw_accel_sigma_dps2',
                          'yaw_window_sigmas': 'window_sigmas',
                          'yaw_min_range_deg': 'min_range_deg',
                          'yaw_gate_chi2': 'gate_chi2',
                          'yaw_max_rejections': 'max_rejections',
                          'yaw_max_start_std_deg': 'max_start_std_deg',
                          'yaw_search_every': 'search_every',
                          'yaw_prior_check_s': 'prior_check_s',
                          'yaw_max_prior_disagreement_deg': 'max_prior_disagreement_deg'}


def _yaw_tracker_config(values: dict[str, Any]) -> YawTrackerConfig:
    try:
        return YawTrackerConfig(**{field: values[f'fusion.{name}']
                                   for name, field in YAW_TRACKER_PARAMETERS.items()})
    except ValueError as err:
        raise ParameterError(f'invalid fusion.yaw_* parameters: {err}') from err


def check_map_source_options(config: NodeConfig) -> None:
    """ParameterError when the configured map source has no file or folder."""
    if config.map_source_kind == 'geotiff' and not config.map_source_options['path']:
        raise ParameterError('map_source.path is empty: set it to the satellite GeoTIFF '
                             "(or map_source.kind: 'xyz' with map_source.root)")
    if config.map_source_kind == 'xyz' and not config.map_source_options['root']:
        raise ParameterError('map_source.root is empty: set it to the XYZ tile folder '
                             '({z}/{x}/{y}.ext) or use map_source.kind: geotiff')


def config_from_values(values: dict[str, Any]) -> NodeConfig:
    """Parameter name -> value (None = unset) to a validated NodeConfig.

    Raises ParameterError naming the parameter and the fix. Missing names take the
    table default.
    """
    merged = {}
    for spec in PARAMETERS:
        value = values.get(spec.name, None if spec.required else spec.default)
        reason = spec.check(value)
        if reason is not None:
            raise ParameterError(f'invalid parameter: {reason}')
        merged[spec.name] = value
    v = merged
    return NodeConfig(
        camera_model=v['camera_model'], image_transport=v['image_transport'],
        camera_info_rectified=v['camera_info_rectified'], map_frame=v['map_frame'],
        base_frame=v['base_frame'],
        camera_offset=CameraOffset(v['camera_offset.x_m'], v['camera_offset.y_m'],
                                   v['camera_offset.z_m'],
                                   math.radians(v['camera_offset.yaw_deg'])),
        datum=_datum(v), datum_from_first_fix=v['datum.from_first_fix'],
        map_source_kind=v['map_source.kind'], map_source_options=_map_source_options(v),
        crop_size_m=v['crop_size_m'], crop_size_px=v['crop_size_px'],
        max_image_pixels=v['max_image_pixels'],
        location_checkpoint=v['location_checkpoint'],
        orientation_checkpoint=v['orientation_checkpoint'], device=v['device'],
        backend=v['backend'], yaw_search=v['yaw_search'],
        precision=v['precision'], heading_source=v['heading_source'],
        yaw_prior_range_deg=v['yaw_prior_range_deg'],
        yaw_search_auto_max_range_deg=v['yaw_search_auto_max_range_deg'],
        heading_prior_sigma_deg=v['heading_prior_sigma_deg'],
        yaw_search_auto_min_sigma_deg=v['yaw_search_auto_min_sigma_deg'],
        default_yaw_rad=math.radians(v['default_yaw_deg']),
        default_yaw_range_deg=v['default_yaw_range_deg'],
        heading_max_age_s=v['heading_max_age_s'],
        track_min_speed_mps=v['track_min_speed_mps'], track_window_s=v['track_window_s'],
        gnss_velocity_input=v['gnss_velocity_input'],
        gnss_velocity_min_speed_mps=v['gnss_velocity_min_speed_mps'],
        gnss_velocity_sigma_mps=v['gnss_velocity_sigma_mps'],
        max_fix_age_s=v['max_fix_age_s'], min_confidence=v['min_confidence'],
        busy_policy=v['busy_policy'], low_confidence_policy=v['low_confidence_policy'],
        low_confidence_inflation=v['low_confidence_inflation'], publish_tf=v['publish_tf'],
        publish_heatmap=v['publish_heatmap'], publish_fix_corrected=v['publish_fix_corrected'],
        diagnostics_period_s=v['diagnostics_period_s'],
        fusion_mode=v['fusion.mode'], fusion=_fusion_config(v),
        yaw_tracker=_yaw_tracker_config(v),
        camera_max_search_yaw_std_deg=v['fusion.camera_max_search_yaw_std_deg'],
        camera_max_prior_disagreement_deg=v['fusion.camera_max_prior_disagreement_deg'],
        single_covariance_adapt=_single_covariance_adapt(v),
        single_covariance_target_nis=v['fusion.single_covariance_target_nis'],
        single_covariance_gate=_single_covariance_gate(v),
        single_covariance_gate_nis=v['fusion.single_covariance_gate_nis'],
        single_covariance_gate_inlier_scale=v['fusion.single_covariance_gate_inlier_scale'],
        odometry_input=v['fusion.odometry'], odometry_sigma_mps=v['fusion.odometry_sigma_mps'],
        odometry_yaw_rate_sigma_rps=v['fusion.odometry_yaw_rate_sigma_rps'],
        warning_throttle_s=v['warning_throttle_s'])
