"""Equirectangular panoramas (method.md section 6 convention, pinned by tests).

Column coordinate u has relative azimuth phi = (u - (W - 1) / 2) * 2 pi / W, clockwise
from the camera's forward axis, so it looks along the map bearing yaw - phi. Row v has
elevation theta = pi / 2 - (v + 0.5) * pi / H (row 0 looks up; the horizon lies between
rows H/2 - 1 and H/2).
"""
from __future__ import annotations

import math

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

MAX_SLOPE = 1.0e4


def panorama_rays(yaw_rad: float, height_px: int, width_px: int) -> RayBundle:
    """The ray bundle of a panorama looking along yaw_rad."""
    if height_px <= 0 or width_px <= 0:
        raise ValueError(f'panorama size must be positive, got {height_px}x{width_px}')
    u = np.arange(width_px, dtype=np.float64)
    phi = (u - (width_px - 1) / 2.0) * (2 * math.pi / width_px)
    v = np.arange(height_px, dtype=np.float64)
    theta = math.pi / 2 - (v + 0.5) * (math.pi / height_px)
    slope = np.clip(np.tan(theta), -MAX_SLOPE, MAX_SLOPE)
    return RayBundle(yaw_rad - phi, slope, np.ones(width_px))


def render_panorama(world: World, pose: CameraPose, height_px: int = 320,
                    width_px: int = 640, *, cars: str = 'ground', look: ViewLook | None = None,
                    seed: int = 0, config: GroundRenderConfig = DEFAULT_GROUND_RENDER,
                    ) -> GroundView:
    """Equirectangular panorama (height_px, width_px) from `pose`; the centre column looks
    along pose.yaw_rad. cars: which cars exist ('ground' = the ground view's cars); look:
    default the world's domain_gap.ground_look; seed: per-image colour jitter and noise."""
    rays = panorama_rays(pose.yaw_rad, height_px, width_px)
    return render_columns(world, pose, rays, 2 * math.pi / width_px, cars=cars,
                          look=look, seed=seed, config=config)
