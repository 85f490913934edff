"""Orientation estimator (method.md section 5): yaw offset from a prior, in 1-degree bins.

Build with `build_orientation_estimator(OrientationEstimatorConfig(...))` (timm
EfficientNet-B0 encoders; `b0_orientation_config(weights_path)`: the paper's ImageNet B0
cut after block 14 with the flatten head; `lite0_orientation_config()`: ImageNet
EfficientNet-Lite0 encoders cut at stride 16) or `OrientationEstimator(config,
satellite_encoder, ground_encoder)`; `tiny_orientation_config()` for tests. Train with
`estimator.loss(output, yaw_offset_rad(true_yaw, prior_yaw))`. Sign: a positive offset
means the camera's yaw is counter-clockwise of the prior (map frame), true yaw = prior +
offset; align a panorama to north with geometry.roll_panorama(pano, pi / 2 - yaw).
"""
from geodistill_core.models.orientation.config import (
    B0_BLOCK14_FLATTEN,
    LITE0_STRIDE16_ENCODERS,
    OrientationEstimatorConfig,
    b0_orientation_config,
    lite0_orientation_config,
    tiny_orientation_config,
)
from geodistill_core.models.orientation.estimator import (
    OrientationEstimator,
    OrientationOutput,
    build_orientation_estimator,
)
from geodistill_core.models.orientation.yaw_bins import (
    bin_to_offset,
    decode_yaw_offset_deg,
    offset_to_bin,
    yaw_bin_centers_deg,
    yaw_offset_labels,
    yaw_offset_loss,
    yaw_offset_rad,
    yaw_spread_deg,
)

__all__ = [
    'B0_BLOCK14_FLATTEN',
    'LITE0_STRIDE16_ENCODERS',
    'OrientationEstimator',
    'OrientationEstimatorConfig',
    'OrientationOutput',
    'b0_orientation_config',
    'bin_to_offset',
    'build_orientation_estimator',
    'decode_yaw_offset_deg',
    'lite0_orientation_config',
    'offset_to_bin',
    'tiny_orientation_config',
    'yaw_bin_centers_deg',
    'yaw_offset_labels',
    'yaw_offset_loss',
    'yaw_offset_rad',
    'yaw_spread_deg',
]
