"""Localizer output -> planar pose of base_frame in the map frame, with covariance.

Frames: map = ENU metres at the datum, yaw 0 = east, CCW. The localizer reports the
camera in the satellite crop's own north-up frame (offset from the crop centre, yaw from
the crop's east axis); ``camera_pose_in_map`` moves it into the map frame (the crop centre
in map coordinates plus the offset rotated by the crop -> map yaw, tiny away from the
datum) and ``base_pose_from_camera`` applies the camera's mounting in base_frame:

    yaw_base = yaw_camera - camera_yaw
    p_base   = p_camera - R(yaw_base) @ (camera_x, camera_y)

Covariance propagation treats the camera position and yaw errors as independent:
cov_base = cov_camera + var_yaw * J J^T with J = d p_base / d yaw_base (the lever arm).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import math

import numpy as np

from geodistill_core.geodesy import wrap_angle_rad
from geodistill_ros.node.config import CameraOffset


@dataclass(frozen=True, eq=False)
class PlanarPose:
    """x_m, y_m, yaw_rad in the map frame; cov_xy_m2 (2, 2); var_yaw_rad2."""

    x_m: float
    y_m: float
    yaw_rad: float
    cov_xy_m2: np.ndarray
    var_yaw_rad2: float

    def inflated(self, factor: float) -> PlanarPose:
        """The same pose with both covariances multiplied by ``factor``."""
        return replace(self, cov_xy_m2=self.cov_xy_m2 * factor,
                       var_yaw_rad2=self.var_yaw_rad2 * factor)


def _rotation(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s], [s, c]])


def camera_pose_in_map(crop, offset_en_m, cov_en_m2, yaw_crop_rad: float,
                       var_yaw_rad2: float) -> PlanarPose:
    """Camera pose from the crop frame to the map frame.

    crop: a SatelliteCrop with a map frame (cut with a datum). offset_en_m: (2,) east,
    north metres from the crop centre. cov_en_m2: (2, 2) in the crop frame. yaw_crop_rad:
    camera yaw from the crop's east axis.
    """
    offset = np.asarray(offset_en_m, np.float64).reshape(2)
    cov = np.asarray(cov_en_m2, np.float64)
    if cov.shape != (2, 2):
        raise ValueError(f'cov_en_m2 must be (2, 2), got {cov.shape}')
    x, y = crop.offset_en_m_to_map_xy(offset[0], offset[1])
    R = _rotation(crop.map_from_crop_yaw_rad)
    return PlanarPose(float(x), float(y),
                      float(wrap_angle_rad(yaw_crop_rad + crop.map_from_crop_yaw_rad)),
                      R @ cov @ R.T, float(var_yaw_rad2))


def base_pose_from_camera(camera: PlanarPose, offset: CameraOffset) -> PlanarPose:
    """Pose of base_frame from the camera pose and the camera's mounting in base_frame."""
    yaw = float(wrap_angle_rad(camera.yaw_rad - offset.yaw_rad))
    lever = np.array([offset.x_m, offset.y_m])
    R = _rotation(yaw)
    c, s = math.cos(yaw), math.sin(yaw)
    jacobian = -np.array([[-s, -c], [c, -s]]) @ lever  # d(-R lever)/d yaw
    position = np.array([camera.x_m, camera.y_m]) - R @ lever
    cov = camera.cov_xy_m2 + camera.var_yaw_rad2 * np.outer(jacobian, jacobian)
    return PlanarPose(float(position[0]), float(position[1]), yaw, cov,
                      camera.var_yaw_rad2)


def camera_yaw_prior_in_crop(base_yaw_map_rad: float, offset: CameraOffset, crop) -> float:
    """A base_frame yaw prior (map frame) as the camera yaw in the crop frame."""
    return float(wrap_angle_rad(base_yaw_map_rad + offset.yaw_rad
                                - crop.map_from_crop_yaw_rad))
