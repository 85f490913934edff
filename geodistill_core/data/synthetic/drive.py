"""Smooth vehicle drives along the road graph, sampled at a fixed rate (KITTI: 10 Hz).

The route is a random walk on the road graph (edges within the world's margin only, dead
ends pruned when loops exist, so no U-turns), driven on the centre of the right-hand lane
nearest the centreline. Corners are rounded by a Gaussian filter along the arc length,
then the path is sampled at constant speed. Heading, yaw rate and the accelerations
follow from the smoothed path, so positions, yaw and velocities are mutually consistent.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import math

import numpy as np

from geodistill_core.data.synthetic.cars import CarPresence
from geodistill_core.data.synthetic.poses import KITTI_CAMERA_HEIGHT_M, CameraPose
from geodistill_core.data.synthetic.world import World

DENSE_STEP_M = 0.25
MAX_ROUTE_EXTENSIONS = 8


@dataclass(frozen=True)
class Drive:
    """N frames at `hz`. All arrays (N,), map frame (ENU metres, radians, seconds).

    time_s; east_m, north_m: vehicle (camera) position; yaw_rad: heading (0 = east, CCW);
    speed_mps; v_east_mps, v_north_mps; yaw_rate_rps (CCW positive);
    accel_forward_mps2, accel_left_mps2 (centripetal); edges: the road edges driven.
    """

    hz: float
    time_s: np.ndarray
    east_m: np.ndarray
    north_m: np.ndarray
    yaw_rad: np.ndarray
    speed_mps: np.ndarray
    v_east_mps: np.ndarray
    v_north_mps: np.ndarray
    yaw_rate_rps: np.ndarray
    accel_forward_mps2: np.ndarray
    accel_left_mps2: np.ndarray
    edges: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.time_s)

    def pose(self, i: int, height_m: float = KITTI_CAMERA_HEIGHT_M) -> CameraPose:
        """Frame i as a CameraPose looking along the heading."""
        return CameraPose(float(self.east_m[i]), float(self.north_m[i]),
                          float(self.yaw_rad[i]), height_m)


def _inside(poly: np.ndarray, size_m: float, margin_m: float) -> bool:
    return bool(np.all((poly >= margin_m) & (poly <= size_m - margin_m)))


def _loop_core(edges, usable: list[int]) -> list[int]:
    """The usable edges left after repeatedly removing dead-end edges."""
    core = set(usable)
    while True:
        degree: dict[int, int] = {}
        for i in core:
            for n in (edges[i].start, edges[i].end):
                degree[n] = degree.get(n, 0) + 1
        dead = {i for i in core if min(degree[edges[i].start], degree[edges[i].end]) < 2}
        if not dead:
            return sorted(core)
        core -= dead


def _route(world: World, length_m: float, margin_m: float, rng) -> tuple[list, np.ndarray]:
    """Random walk over interior edges until the lane path is long enough."""
    edges = world.roads.edges
    ok = [i for i, e in enumerate(edges) if _inside(e.polyline_en_m, world.size_m, margin_m)]
    if not ok:
        raise ValueError(f'no road lies {margin_m} m inside the world; use a larger world')
    ok = _loop_core(edges, ok) or ok  # avoid dead ends (U-turns) when the roads allow
    at_node: dict[int, list[int]] = {}
    for i in ok:
        at_node.setdefault(edges[i].start, []).append(i)
        at_node.setdefault(edges[i].end, []).append(i)
    k = ok[int(rng.integers(len(ok)))]
    forward = rng.uniform() < 0.5
    visited, pieces, total = [], [], 0.0
    while total < length_m:
        e = edges[k]
        poly = e.polyline_en_m if forward else e.polyline_en_m[::-1]
        seg = np.diff(poly, axis=0)
        normal = np.stack([seg[:, 1], -seg[:, 0]], axis=1)  # right of travel
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
        normal = np.concatenate([normal[:1], 0.5 * (normal[1:] + normal[:-1]), normal[-1:]])
        pieces.append(_trim(poly + 0.5 * e.lane_width_m * normal, e.lane_width_m + 1.0))
        visited.append(k)
        total += e.length_m
        node = e.end if forward else e.start
        options = [j for j in at_node[node] if j != k] or [k]
        k = options[int(rng.integers(len(options)))]
        forward = edges[k].start == node
    return visited, np.concatenate(pieces)


def _trim(poly: np.ndarray, cut_m: float) -> np.ndarray:
    """Drop cut_m of arc length at both ends (so lane paths do not overlap at corners)."""
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(poly, axis=0), axis=1))])
    if s[-1] < 3 * cut_m:
        return poly
    inner = (s > cut_m) & (s < s[-1] - cut_m)
    ends = [np.array([np.interp(v, s, poly[:, 0]), np.interp(v, s, poly[:, 1])])
            for v in (cut_m, s[-1] - cut_m)]
    return np.concatenate([ends[0][None], poly[inner], ends[1][None]])


def _resample(path: np.ndarray, step_m: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    keep = np.concatenate([[True], seg > 1e-6])
    path = path[keep]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    grid = np.arange(0.0, s[-1], step_m)
    return np.stack([np.interp(grid, s, path[:, 0]), np.interp(grid, s, path[:, 1])], axis=1)


def _gaussian_smooth(points: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter (sigma in samples) along a (N, 2) polyline, ends held fixed."""
    radius = int(math.ceil(4 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(points, ((radius, radius), (0, 0)), mode='edge')
    return np.stack([np.convolve(padded[:, i], kernel, mode='valid') for i in range(2)],
                    axis=1)


def hide_ground_cars_near(world: World, east_m, north_m, radius_m: float = 3.0) -> World:
    """A copy of `world` whose ground-visible cars within radius_m of any of the given
    points (arrays (N,)) are gone from the ground view (as if they had since moved): cars
    of both views become satellite-only, ground-only cars disappear.

    Use it so that a drive or a camera does not pass through a car."""
    cars = world.cars
    if len(cars) == 0:
        return world
    pts = np.stack([np.ravel(east_m), np.ravel(north_m)], axis=1)
    reach = radius_m + 0.5 * np.hypot(cars.length_m, cars.width_m)
    near = np.zeros(len(cars), dtype=bool)
    for start in range(0, len(pts), 256):
        d = np.linalg.norm(cars.centre_en_m[:, None, :] - pts[None, start:start + 256, :],
                           axis=2)
        near |= (d < reach[:, None]).any(axis=1)
    hide = near & cars.visible('ground')
    if not hide.any():
        return world
    presence = cars.presence.copy()
    presence[hide & (presence == CarPresence.BOTH)] = CarPresence.SATELLITE_ONLY
    presence[hide & (presence == CarPresence.GROUND_ONLY)] = CarPresence.NEITHER
    return replace(world, cars=replace(cars, presence=presence))


def sample_drive(world: World, n_frames: int, speed_mps: float = 8.0, hz: float = 10.0,
                 seed: int = 0, *, margin_m: float = 15.0, corner_sigma_m: float = 4.0,
                 ) -> Drive:
    """A drive of n_frames at constant speed_mps, sampled at hz (deterministic in seed)."""
    if n_frames < 2 or speed_mps <= 0 or hz <= 0:
        raise ValueError(f'need n_frames >= 2, speed > 0, hz > 0; got {n_frames}, '
                         f'{speed_mps}, {hz}')
    length = (n_frames - 1) * speed_mps / hz
    pad = 4.0 * corner_sigma_m
    s_frames = pad + np.arange(n_frames) * (speed_mps / hz)
    wanted = length + 2 * pad + 1.0
    for _ in range(MAX_ROUTE_EXTENSIONS + 1):
        # the same seed replays the same walk, so a longer request extends the route
        edges, raw = _route(world, wanted, margin_m, np.random.default_rng(seed))
        dense = _resample(raw, DENSE_STEP_M)
        smooth = _gaussian_smooth(dense, corner_sigma_m / DENSE_STEP_M)
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(smooth, axis=0),
                                                            axis=1))])
        if s[-1] >= s_frames[-1]:
            break
        # the lane path is shorter than the edges' lengths (corners trimmed and rounded):
        # without more road the last frames would stand still at speed_mps
        wanted += s_frames[-1] - s[-1] + 2 * pad
    else:
        raise ValueError(f'no route of {length + 2 * pad:.0f} m found in this world (seed '
                         f'{seed}); use fewer frames, a lower speed or a larger world')
    tangent = np.gradient(smooth, axis=0)
    heading = np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0]))
    curvature = np.gradient(heading, s)
    east = np.interp(s_frames, s, smooth[:, 0])
    north = np.interp(s_frames, s, smooth[:, 1])
    yaw = np.interp(s_frames, s, heading)
    kappa = np.interp(s_frames, s, curvature)
    speed = np.full(n_frames, float(speed_mps))
    yaw_rate = speed * kappa
    return Drive(hz=float(hz), time_s=np.arange(n_frames) / hz, east_m=east, north_m=north,
                 yaw_rad=(yaw + math.pi) % (2 * math.pi) - math.pi, speed_mps=speed,
                 v_east_mps=speed * np.cos(yaw), v_north_mps=speed * np.sin(yaw),
                 yaw_rate_rps=yaw_rate, accel_forward_mps2=np.zeros(n_frames),
                 accel_left_mps2=speed * yaw_rate, edges=tuple(edges))
