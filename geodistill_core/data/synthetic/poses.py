"""Camera poses in the world's map frame."""
from __future__ import annotations

from dataclasses import dataclass

VIGOR_CAMERA_HEIGHT_M = 2.0
KITTI_CAMERA_HEIGHT_M = 1.65


@dataclass(frozen=True)
class CameraPose:
    """A level camera: position (east_m, north_m) in the map frame (ENU metres), optical
    centre height_m above the flat ground, yaw_rad the map-frame direction of its forward
    axis (0 = east, counter-clockwise positive)."""

    east_m: float
    north_m: float
    yaw_rad: float
    height_m: float = VIGOR_CAMERA_HEIGHT_M

    def __post_init__(self):
        if not self.height_m > 0:
            raise ValueError(f'camera height must be > 0 m, got {self.height_m}')
