"""Hand-made minimal worlds: a flat ground with a few exactly placed objects.

For tests and examples where the geometry must be known analytically (a pillar due east
of the camera, a tree at a given range). `build_scene` rasterises the objects on the same
layers as `generate_world`, so every renderer treats them identically.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodistill_core.data.synthetic.buildings import (
    BuildingTable,
    building_row,
    rasterize_building,
)
from geodistill_core.data.synthetic.cars import CarPresence, CarTable, rasterize_car
from geodistill_core.data.synthetic.config import DomainGapConfig, WorldConfig
from geodistill_core.data.synthetic.grid import world_grid
from geodistill_core.data.synthetic.materials import Material
from geodistill_core.data.synthetic.roads import RoadNetwork
from geodistill_core.data.synthetic.styles import get_city_style
from geodistill_core.data.synthetic.trees import TreeTable, rasterize_canopies
from geodistill_core.data.synthetic.world import World, assemble_world

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class SceneBox:
    """A flat-roofed box building without parapet detail unless windows are asked for.

    centre_en_m: (east, north); length_m along yaw_rad, width_m across; window_w_frac 0
    gives a plain facade of colour facade_rgb.
    """

    centre_en_m: tuple[float, float]
    length_m: float
    width_m: float
    height_m: float
    yaw_rad: float = 0.0
    facade_rgb: RGB = (0.8, 0.1, 0.1)
    roof_rgb: RGB = (0.8, 0.1, 0.1)
    window_w_frac: float = 0.0


@dataclass(frozen=True)
class SceneTree:
    centre_en_m: tuple[float, float]
    canopy_radius_m: float = 3.0
    canopy_bottom_m: float = 3.0
    canopy_top_m: float = 9.0
    trunk_radius_m: float = 0.25
    rgb: RGB = (0.15, 0.3, 0.1)


@dataclass(frozen=True)
class SceneCar:
    centre_en_m: tuple[float, float]
    yaw_rad: float = 0.0
    length_m: float = 4.5
    width_m: float = 1.8
    height_m: float = 1.5
    rgb: RGB = (0.1, 0.2, 0.7)
    presence: CarPresence = CarPresence.BOTH


def build_scene(size_m: float = 60.0, cell_m: float = 0.1, *, boxes=(), trees=(), cars=(),
                ground_rgb: RGB = (0.3, 0.3, 0.3), ground_material: Material = Material.ROAD,
                domain_gap: DomainGapConfig | None = None, seed: int = 0) -> World:
    """A flat world of size_m x size_m (SW corner at the origin) with the given objects.

    boxes / trees / cars: sequences of SceneBox / SceneTree / SceneCar. The domain gap
    defaults to DomainGapConfig.disabled() (identical views, no noise).
    """
    gap = DomainGapConfig.disabled() if domain_gap is None else domain_gap
    config = WorldConfig(style='grid_downtown', size_m=size_m, cell_m=cell_m, domain_gap=gap)
    grid = world_grid(config.cells, cell_m)
    rng = np.random.default_rng(seed)
    shape = (grid.rows, grid.cols)
    height = np.zeros(shape, np.float32)
    building_id = np.full(shape, -1, np.int32)
    rgb = np.broadcast_to(np.array(ground_rgb, np.float32), shape + (3,)).copy()
    material = np.full(shape, int(ground_material), np.uint8)
    rows = []
    for box in boxes:
        row = building_row(box.centre_en_m, box.yaw_rad, box.length_m, box.width_m,
                           box.height_m, False, box.facade_rgb, box.roof_rgb, (0.1, 0.1, 0.1),
                           window_w_frac=box.window_w_frac)
        row['roof_top_m'] = box.height_m  # no parapet: an exact box
        roof = np.zeros(shape + (3,), np.float32)
        cells = rasterize_building(len(rows), row, grid, height, building_id, roof, rng)
        if cells is None:
            raise ValueError(f'box at {box.centre_en_m} lies outside the {size_m} m world')
        on = building_id == len(rows)
        height[on] = box.height_m
        rgb[on] = box.roof_rgb
        material[on] = Material.BUILDING
        rows.append(row)
    tree_table = TreeTable.from_rows([
        (*t.centre_en_m, t.canopy_radius_m, t.canopy_bottom_m, t.canopy_top_m,
         t.trunk_radius_m, *t.rgb) for t in trees])
    canopy_top, canopy_rgb = rasterize_canopies(tree_table, grid, rng)
    car_id = np.full(shape, -1, np.int32)
    car_height = np.zeros(shape, np.float32)
    car_rows = []
    for car in cars:
        row = (*car.centre_en_m, car.yaw_rad, car.length_m, car.width_m, car.height_m,
               *car.rgb, int(car.presence), 1.0)
        if not rasterize_car(len(car_rows), row, grid, car_id, car_height):
            raise ValueError(f'car at {car.centre_en_m} overlaps another car or lies outside')
        car_rows.append(row)
    roads = RoadNetwork(np.zeros((0, 2)), (), 0.0)
    return assemble_world(config, seed, get_city_style('grid_downtown'), grid,
                          height_m=height, surface_rgb=rgb, material=material,
                          building_id=building_id, canopy_top_m=canopy_top,
                          canopy_rgb=canopy_rgb, car_id=car_id, car_height_m=car_height,
                          roads=roads, buildings=BuildingTable.from_rows(rows),
                          trees=tree_table, cars=CarTable.from_rows(car_rows), rng=rng)
