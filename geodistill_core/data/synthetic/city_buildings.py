"""Place a city's buildings: street frontages on both sides of every road, then extra
buildings inside large blocks. Footprints never overlap roads, sidewalks or each other."""
from __future__ import annotations

import math

import numpy as np

from geodistill_core.data.synthetic.buildings import (
    BuildingTable,
    building_row,
    footprint_is_free,
    rasterize_building,
)
from geodistill_core.data.synthetic.materials import Material
from geodistill_core.data.synthetic.roads import RoadNetwork
from geodistill_core.data.synthetic.styles import CityStyle
from geodistill_core.geometry.raster import NorthUpCrop

_STREET_MATERIALS = (Material.ROAD, Material.LANE_MARKING, Material.CROSSWALK, Material.KERB,
                     Material.SIDEWALK)


def _jitter_rgb(palette, rng, amount=0.06):
    base = np.array(palette[int(rng.integers(len(palette)))], dtype=np.float64)
    return tuple(np.clip(base * (1.0 + rng.uniform(-amount, amount, 3)), 0.0, 1.0))


def _attributes(style: CityStyle, rng: np.random.Generator) -> dict:
    """Random height, roof and facade parameters of one building."""
    storey = rng.uniform(*style.storey_m)
    storeys = max(int(round(rng.uniform(*style.storeys))), 1)
    if rng.uniform() < style.tower_prob:
        storeys = int(storeys * rng.uniform(2.0, 4.0))
    shop = bool(rng.uniform() < style.shopfront_prob)
    return dict(eave_m=storeys * storey + (1.0 if shop else 0.0),
                pitched=bool(rng.uniform() < style.pitched_roof_prob),
                facade_rgb=_jitter_rgb(style.facade_rgb, rng),
                roof_rgb=_jitter_rgb(style.roof_rgb, rng),
                window_rgb=_jitter_rgb((style.window_rgb,), rng, 0.2),
                storey_m=storey, window_pitch_m=rng.uniform(2.2, 3.6),
                window_w_frac=rng.uniform(0.35, 0.7), window_h_frac=rng.uniform(0.4, 0.65),
                shopfront=shop)


def place_city_buildings(network: RoadNetwork, style: CityStyle, grid: NorthUpCrop,
                         material: np.ndarray, block_labels: np.ndarray,
                         rng: np.random.Generator):
    """Place and rasterise the buildings.

    material: (R, C) uint8, updated in place (BUILDING under footprints).
    Returns (BuildingTable, height_m (R, C) float32, building_id (R, C) int32 (-1 none),
    roof_rgb (R, C, 3) float32 (valid where building_id >= 0)).
    """
    shape = material.shape
    height = np.zeros(shape, dtype=np.float32)
    building_id = np.full(shape, -1, dtype=np.int32)
    roof_rgb = np.zeros(shape + (3,), dtype=np.float32)
    forbidden = np.isin(material, np.array(_STREET_MATERIALS, dtype=np.uint8))
    rows: list[dict] = []

    def try_place(centre, yaw, length, width, attrs, margin=0.0):
        if not footprint_is_free(grid, forbidden, centre, yaw, length + 2 * margin,
                                 width + 2 * margin):
            return False
        row = building_row(centre, yaw, length, width, **attrs)
        cells = rasterize_building(len(rows), row, grid, height, building_id, roof_rgb, rng)
        if cells is None:
            return False
        rows.append(row)
        forbidden[cells.window.rows, cells.window.cols] |= cells.mask
        return True

    radius = network.node_radius_m()
    for edge in network.edges:
        length = edge.length_m
        road_edge_m = edge.half_width_m + edge.sidewalk_m
        for side in (1.0, -1.0):
            s = radius[edge.start] + rng.uniform(0.0, style.gap_m[1])
            end = length - radius[edge.end]
            while True:
                front = rng.uniform(*style.frontage_m)
                if s + front > end:
                    break
                point, tangent = edge.point_at(s + 0.5 * front)
                point, tangent = point[0], tangent[0]
                normal = side * np.array([-tangent[1], tangent[0]])
                yaw = math.atan2(tangent[1], tangent[0])
                setback = rng.uniform(*style.setback_m)
                attrs = _attributes(style, rng)
                depth = rng.uniform(*style.depth_m)
                for shrink in (1.0, 0.65, 0.4):
                    d = depth * shrink
                    if d < 5.0:
                        break
                    centre = point + normal * (road_edge_m + setback + 0.5 * d + 0.05)
                    if try_place(centre, yaw, front - 0.1, d, attrs):
                        break
                s += front + rng.uniform(*style.gap_m)

    # Extra buildings inside large blocks, aligned with the lattice.
    cell_area = grid.meters_per_px ** 2
    areas = np.bincount(block_labels.ravel()) * cell_area
    big = areas > 2500.0
    big[0] = False
    world_ha = grid.rows * grid.cols * cell_area / 1e4
    n_try = rng.poisson(world_ha * style.interior_buildings_per_ha * 2.0)
    for _ in range(n_try):
        r, c = int(rng.integers(grid.rows)), int(rng.integers(grid.cols))
        if not big[block_labels[r, c]] or rng.uniform() < 0.5:
            continue
        east, north = grid.pixel_to_map(r, c)
        yaw = network.rotation_rad + 0.5 * math.pi * int(rng.integers(4))
        size = rng.uniform(1.0, 1.4)
        try_place(np.array([east, north]), yaw, rng.uniform(*style.frontage_m) * size,
                  rng.uniform(*style.depth_m) * size, _attributes(style, rng), margin=3.0)
    material[building_id >= 0] = Material.BUILDING
    return BuildingTable.from_rows(rows), height, building_id, roof_rgb
