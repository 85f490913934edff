"""Camera positions on roads and sidewalks, like a street-view vehicle or a pedestrian.

Positions are drawn uniformly along the road centrelines (by length), then offset to a
lane centre (road) or the middle of a sidewalk. Road cameras look along their lane's
direction of travel (traffic keeps right); sidewalk cameras along the street, either
way. A sample is kept only if its cell has the requested material, no ground-view car
or tree trunk is within `clearance_m`, and it is `margin_m` inside the world.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from geodistill_core.data.synthetic.grid import cells_of_points, disk_cells
from geodistill_core.data.synthetic.materials import ROAD_MATERIALS, SIDEWALK_MATERIALS
from geodistill_core.data.synthetic.poses import VIGOR_CAMERA_HEIGHT_M, CameraPose
from geodistill_core.data.synthetic.road_paint import KERB_M
from geodistill_core.data.synthetic.world import World

SURFACES = ('road', 'sidewalk')
YAW_MODES = ('road', 'uniform')


@dataclass(frozen=True)
class PoseSamples:
    """N camera poses as arrays (N,): east_m, north_m, yaw_rad (map frame), height_m;
    on_road (bool: road lane, else sidewalk); edge (int: index into world.roads.edges)."""

    east_m: np.ndarray
    north_m: np.ndarray
    yaw_rad: np.ndarray
    height_m: np.ndarray
    on_road: np.ndarray
    edge: np.ndarray

    def __len__(self) -> int:
        return len(self.east_m)

    def pose(self, i: int) -> CameraPose:
        """The i-th sample as a CameraPose."""
        return CameraPose(float(self.east_m[i]), float(self.north_m[i]),
                          float(self.yaw_rad[i]), float(self.height_m[i]))


def _clear(world: World, east: float, north: float, clearance_m: float) -> bool:
    disk = disk_cells(world.grid, (east, north), clearance_m)
    if disk is None:
        return False
    win, mask, _, _ = disk
    cid = world.car_id[win.rows, win.cols][mask]
    cid = cid[cid >= 0]
    if cid.size and world.cars.visible('ground')[cid].any():
        return False
    if len(world.trees):
        d = np.hypot(world.trees.centre_en_m[:, 0] - east, world.trees.centre_en_m[:, 1] - north)
        if np.any(d < world.trees.trunk_radius_m + clearance_m):
            return False
    return True


def sample_street_poses(world: World, n: int, seed: int, *, surfaces=SURFACES,
                        yaw_mode: str = 'road', yaw_noise_rad: float = 0.0,
                        camera_height_m: float = VIGOR_CAMERA_HEIGHT_M, margin_m: float = 10.0,
                        clearance_m: float = 1.5, max_tries: int = 200) -> PoseSamples:
    """Draw n camera poses on the streets of `world` (deterministic in seed).

    surfaces: any of 'road', 'sidewalk' (chosen with equal probability per sample).
    yaw_mode: 'road' (direction of travel / along the street, plus Gaussian noise of
    yaw_noise_rad) or 'uniform' (uniform in [-pi, pi)). Raises if fewer than n valid
    positions are found within n * max_tries proposals.
    """
    if yaw_mode not in YAW_MODES:
        raise ValueError(f'yaw_mode must be one of {YAW_MODES}, got {yaw_mode!r}')
    bad = set(surfaces) - set(SURFACES)
    if bad or not surfaces:
        raise ValueError(f'surfaces must be a non-empty subset of {SURFACES}, got {surfaces}')
    edges = world.roads.edges
    if not edges:
        raise ValueError('the world has no roads to sample camera poses on')
    rng = np.random.default_rng(seed)
    lengths = np.array([e.length_m for e in edges])
    prob = lengths / lengths.sum()
    size = world.size_m
    out: list[tuple] = []
    for _ in range(n * max_tries):
        if len(out) == n:
            break
        k = int(rng.choice(len(edges), p=prob))
        edge = edges[k]
        point, tangent = edge.point_at(rng.uniform(0.0, edge.length_m))
        point, tangent = point[0], tangent[0]
        heading = math.atan2(tangent[1], tangent[0])
        side = 1.0 if rng.uniform() < 0.5 else -1.0
        on_road = surfaces[int(rng.integers(len(surfaces)))] == 'road'
        if on_road:
            lane = int(rng.integers(edge.lanes_per_dir))
            lat = side * (lane + 0.5) * edge.lane_width_m
            yaw = heading + (math.pi if side > 0 else 0.0)
            allowed = ROAD_MATERIALS
        else:
            walk = edge.sidewalk_m - KERB_M
            lat = side * (edge.half_width_m + KERB_M + walk * rng.uniform(0.3, 0.7))
            yaw = heading + (math.pi if rng.uniform() < 0.5 else 0.0)
            allowed = SIDEWALK_MATERIALS
        east, north = point + lat * np.array([-tangent[1], tangent[0]])
        if not (margin_m <= east <= size - margin_m and margin_m <= north <= size - margin_m):
            continue
        r, c, _ = cells_of_points(world.grid, np.array([east]), np.array([north]))
        if world.material[r[0], c[0]] not in allowed:
            continue
        if not _clear(world, east, north, clearance_m):
            continue
        if yaw_mode == 'uniform':
            yaw = rng.uniform(-math.pi, math.pi)
        else:
            yaw += rng.normal(0.0, yaw_noise_rad) if yaw_noise_rad > 0 else 0.0
        yaw = (yaw + math.pi) % (2 * math.pi) - math.pi
        out.append((east, north, yaw, camera_height_m, on_road, k))
    if len(out) < n:
        raise RuntimeError(f'found only {len(out)} of {n} valid street poses after '
                           f'{n * max_tries} proposals; lower clearance_m/margin_m or use '
                           'a larger world')
    a = np.array(out, dtype=np.float64).reshape(-1, 6)
    return PoseSamples(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4] > 0.5,
                       a[:, 5].astype(np.int64))
