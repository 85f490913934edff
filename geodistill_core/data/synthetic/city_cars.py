"""Place a city's cars: kerbside parking, traffic in the lanes, parking-lot stalls.

Traffic keeps right (roads.py). A fraction of the driving cars is transient: it exists in
the ground view only or in the satellite view only (DomainGapConfig).
"""
from __future__ import annotations

import math

import numpy as np

from geodistill_core.data.synthetic.cars import CarPresence, CarTable, rasterize_car
from geodistill_core.data.synthetic.grid import cells_of_points
from geodistill_core.data.synthetic.materials import Material
from geodistill_core.data.synthetic.roads import RoadNetwork
from geodistill_core.data.synthetic.styles import CityStyle
from geodistill_core.data.synthetic.surfaces import (
    PARKING_PERIOD_M,
    PARKING_ROW_M,
    PARKING_STALL_M,
)
from geodistill_core.geometry.raster import NorthUpCrop


def _body(style: CityStyle, rng) -> tuple:
    if rng.uniform() < 0.25:  # SUV / van
        size = (rng.uniform(4.6, 5.2), rng.uniform(1.85, 2.0), rng.uniform(1.7, 1.95))
    else:
        size = (rng.uniform(4.1, 4.8), rng.uniform(1.72, 1.88), rng.uniform(1.38, 1.55))
    rgb = np.array(style.car_rgb[int(rng.integers(len(style.car_rgb)))])
    return size, tuple(np.clip(rgb * (1 + rng.uniform(-0.08, 0.08, 3)), 0, 1))


def place_cars(network: RoadNetwork, style: CityStyle, grid: NorthUpCrop,
               material: np.ndarray, building_id: np.ndarray, transient_fraction: float,
               rng: np.random.Generator):
    """Place and rasterise cars.

    Returns (CarTable, car_id (R, C) int32 (-1 none), car_height_m (R, C) float32).
    """
    shape = material.shape
    car_id = np.full(shape, -1, dtype=np.int32)
    car_height = np.zeros(shape, dtype=np.float32)
    forbidden = building_id >= 0
    rows: list[tuple] = []

    def add(centre, yaw, parked, moving=False):
        (length, width, height), rgb = _body(style, rng)
        presence = CarPresence.BOTH
        if moving and rng.uniform() < transient_fraction:
            presence = (CarPresence.GROUND_ONLY if rng.uniform() < 0.5
                        else CarPresence.SATELLITE_ONLY)
        car = (centre[0], centre[1], yaw, length, width, height, *rgb, int(presence),
               float(parked))
        if rasterize_car(len(rows), car, grid, car_id, car_height, forbidden):
            rows.append(car)

    radius = network.node_radius_m()
    for edge in network.edges:
        lo = radius[edge.start] + 3.0
        hi = edge.length_m - radius[edge.end] - 3.0
        if hi <= lo:
            continue
        travel = edge.lanes_per_dir * edge.lane_width_m
        for side in (1.0, -1.0):  # side of the centreline (+ = left of the edge direction)
            if edge.parking_lane_m > 0:
                for s in np.arange(lo + 3.0, hi - 3.0, 6.2):
                    if rng.uniform() >= style.parked_car_prob:
                        continue
                    p, t = edge.point_at(s + rng.uniform(-0.4, 0.4))
                    lat = side * (travel + 0.5 * edge.parking_lane_m)
                    yaw = math.atan2(t[0, 1], t[0, 0]) + (math.pi if side > 0 else 0.0)
                    add(p[0] + lat * np.array([-t[0, 1], t[0, 0]]), yaw, parked=True)
            for lane in range(edge.lanes_per_dir):
                n = rng.poisson((hi - lo) / 1000.0 * style.moving_cars_per_km)
                for s in rng.uniform(lo, hi, n):
                    p, t = edge.point_at(s)
                    lat = side * (lane + 0.5) * edge.lane_width_m + rng.normal(0, 0.15)
                    yaw = (math.atan2(t[0, 1], t[0, 0]) + (math.pi if side > 0 else 0.0)
                           + rng.normal(0, 0.02))
                    add(p[0] + lat * np.array([-t[0, 1], t[0, 0]]), yaw, parked=False,
                        moving=True)

    # Parking-lot stalls on the lattice of surfaces.py.
    if style.lot_car_prob > 0 and (material == Material.PARKING).any():
        c, s = math.cos(network.rotation_rad), math.sin(network.rotation_rad)
        corners = np.array([[0, 0], [1, 0], [0, 1], [1, 1]]) * grid.cols * grid.meters_per_px
        u_all = corners @ np.array([c, s])
        v_all = corners @ np.array([-s, c])
        u = np.arange(math.floor(u_all.min() / PARKING_STALL_M),
                      math.ceil(u_all.max() / PARKING_STALL_M)) * PARKING_STALL_M
        rows_v = np.arange(math.floor(v_all.min() / PARKING_PERIOD_M),
                           math.ceil(v_all.max() / PARKING_PERIOD_M)) * PARKING_PERIOD_M
        v = np.concatenate([rows_v + 0.5 * PARKING_ROW_M,
                            rows_v + PARKING_PERIOD_M - 0.5 * PARKING_ROW_M])
        uu, vv = np.meshgrid(u + 0.5 * PARKING_STALL_M, v, indexing='ij')
        east, north = c * uu - s * vv, s * uu + c * vv
        r, col, inside = cells_of_points(grid, east, north)
        ok = inside & (material[r, col] == Material.PARKING)
        for e, n_ in zip(east[ok], north[ok], strict=True):
            if rng.uniform() < style.lot_car_prob:
                yaw = network.rotation_rad + 0.5 * math.pi + (math.pi if rng.uniform() < 0.5
                                                              else 0.0)
                add((e, n_), yaw, parked=True)
    return CarTable.from_rows(rows), car_id, car_height
