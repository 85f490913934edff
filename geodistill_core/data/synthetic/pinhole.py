"""Level pinhole cameras (OpenCV frame: x right, y down, z forward; pixel centres at
integer coordinates).

A pixel (u, v) has the camera-frame ray (x, y, 1) with x = (u - cx) / fx and
y = (v - cy) / fy: its column plane points atan(x) clockwise from the forward axis and
its slope is -y / sqrt(1 + x^2). The camera's forward axis is horizontal, along yaw.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodistill_core.data.synthetic.config import ViewLook
from geodistill_core.data.synthetic.ground_view import (
    DEFAULT_GROUND_RENDER,
    GroundRenderConfig,
    GroundView,
    render_columns,
)
from geodistill_core.data.synthetic.poses import CameraPose
from geodistill_core.data.synthetic.raymarch import RayBundle
from geodistill_core.data.synthetic.world import World


@dataclass(frozen=True)
class PinholeCamera:
    """Image size (pixels) and intrinsics K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]."""

    width_px: int
    height_px: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


KITTI_CAMERA = PinholeCamera(width_px=1242, height_px=375, fx=721.5377, fy=721.5377,
                             cx=609.5593, cy=172.854)
"""KITTI-like left colour camera (P_rect_02 of 2011_09_26), level, 1.65 m above ground."""


def pinhole_rays(camera: PinholeCamera, yaw_rad: float) -> RayBundle:
    """The ray bundle of a level pinhole camera looking along yaw_rad."""
    x = (np.arange(camera.width_px, dtype=np.float64) - camera.cx) / camera.fx
    y = (np.arange(camera.height_px, dtype=np.float64) - camera.cy) / camera.fy
    return RayBundle(yaw_rad - np.arctan(x), -y, 1.0 / np.sqrt(1.0 + x * x))


def render_pinhole(world: World, pose: CameraPose, camera: PinholeCamera = KITTI_CAMERA, *,
                   cars: str = 'ground', look: ViewLook | None = None, seed: int = 0,
                   config: GroundRenderConfig = DEFAULT_GROUND_RENDER) -> GroundView:
    """Pinhole image (camera.height_px, camera.width_px) from `pose` (forward = yaw)."""
    rays = pinhole_rays(camera, pose.yaw_rad)
    return render_columns(world, pose, rays, 1.0 / camera.fx, cars=cars,
                          look=look, seed=seed, config=config)
