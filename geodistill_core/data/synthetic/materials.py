"""Per-cell ground materials of the synthetic world and per-pixel labels of ground renders.

`Material` is what a world cell is made of at its top surface (the `World.material`
layer, uint8). `RenderLabel` is what a pixel of a ground-level render shows.
"""
from __future__ import annotations

from enum import IntEnum


class Material(IntEnum):
    """Top-surface material of a world cell (uint8 in `World.material`)."""

    GRASS = 1
    ROAD = 2
    LANE_MARKING = 3
    CROSSWALK = 4
    SIDEWALK = 5
    KERB = 6
    PARKING = 7
    PLAZA = 8
    DIRT = 9
    BUILDING = 10


ROAD_MATERIALS = (Material.ROAD, Material.LANE_MARKING, Material.CROSSWALK)
"""Cells a vehicle may stand on."""

SIDEWALK_MATERIALS = (Material.SIDEWALK,)
"""Cells a pedestrian camera may stand on."""


class RenderLabel(IntEnum):
    """What a pixel of a ground render shows (uint8 in `GroundView.label`)."""

    SKY = 0
    GROUND = 1
    BUILDING = 2
    TREE = 3
    CAR = 4
