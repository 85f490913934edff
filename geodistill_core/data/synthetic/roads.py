"""Road networks: a graph of nodes (intersections, bends, dead ends) and edge polylines.

Each `RoadEdge` is a centreline polyline in the map frame (ENU metres) from its start
node to its end node, with a lane layout across it. Lateral offsets are measured from
the centreline, positive to the left of the edge's direction. Traffic keeps right: the
lanes of travel along the edge direction lie at negative lateral offsets.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import math

import numpy as np

from geodistill_core.data.synthetic.styles import CityStyle


@dataclass(frozen=True, eq=False)
class RoadEdge:
    """One road between two nodes.

    polyline_en_m: (P, 2) centreline vertices, east/north metres, start -> end.
    Lanes: `lanes_per_dir` lanes of `lane_width_m` each side of the centre, then an
    optional kerbside parking lane of `parking_lane_m` (0 if none), then the kerb and a
    sidewalk of `sidewalk_m`.
    """

    start: int
    end: int
    polyline_en_m: np.ndarray
    lanes_per_dir: int
    lane_width_m: float
    parking_lane_m: float
    sidewalk_m: float
    centre_marking: str
    arterial: bool

    @property
    def half_width_m(self) -> float:
        """Centreline to kerb (carriageway half width), metres."""
        return self.lanes_per_dir * self.lane_width_m + self.parking_lane_m

    @property
    def cumulative_m(self) -> np.ndarray:
        """(P,) arc length at each vertex, metres."""
        seg = np.linalg.norm(np.diff(self.polyline_en_m, axis=0), axis=1)
        return np.concatenate([[0.0], np.cumsum(seg)])

    @property
    def length_m(self) -> float:
        return float(self.cumulative_m[-1])

    def point_at(self, s_m) -> tuple[np.ndarray, np.ndarray]:
        """Centreline points and unit tangents at arc lengths s_m (N,): ((N, 2), (N, 2))."""
        s = np.atleast_1d(np.asarray(s_m, dtype=np.float64))
        cum = self.cumulative_m
        s = np.clip(s, 0.0, cum[-1])
        i = np.clip(np.searchsorted(cum, s, side='right') - 1, 0, len(cum) - 2)
        a, b = self.polyline_en_m[i], self.polyline_en_m[i + 1]
        seg = np.maximum(cum[i + 1] - cum[i], 1e-9)
        f = ((s - cum[i]) / seg)[:, None]
        tangent = (b - a) / seg[:, None]
        return a + f * (b - a), tangent


@dataclass(frozen=True, eq=False)
class RoadNetwork:
    """nodes_en_m: (N, 2) node positions; edges: the roads; rotation_rad: the lattice
    orientation of the network (parking stalls and plaza tiles align with it)."""

    nodes_en_m: np.ndarray
    edges: tuple[RoadEdge, ...]
    rotation_rad: float

    def degree(self) -> np.ndarray:
        """(N,) number of edges at each node."""
        deg = np.zeros(len(self.nodes_en_m), dtype=np.int64)
        for e in self.edges:
            deg[e.start] += 1
            deg[e.end] += 1
        return deg

    def incident(self, node: int) -> list[int]:
        """Indices of the edges that start or end at `node`."""
        return [i for i, e in enumerate(self.edges) if node in (e.start, e.end)]

    def node_radius_m(self) -> np.ndarray:
        """(N,) intersection radius: the farthest kerb + sidewalk of the incident roads.

        Lane markings stop there and crosswalks start there (nodes of degree >= 3 only;
        other nodes get 0)."""
        rad = np.zeros(len(self.nodes_en_m))
        deg = self.degree()
        for e in self.edges:
            r = e.half_width_m + e.sidewalk_m
            for n in (e.start, e.end):
                if deg[n] >= 3:
                    rad[n] = max(rad[n], r)
        return rad


def _lattice(rng, style: CityStyle, size_m: float, rotation: float):
    """Street positions along both lattice axes, covering the rotated world."""
    reach = size_m * math.sqrt(2) / 2 + style.block_m[1]
    lines = []
    for _ in range(2):
        pos = [-reach + rng.uniform(0, style.block_m[1])]
        while pos[-1] < reach:
            pos.append(pos[-1] + rng.uniform(*style.block_m))
        lines.append(np.array(pos))
    return lines


def _connected(n_nodes: int, pairs: list[tuple[int, int]], used: set[int]) -> bool:
    adj = [[] for _ in range(n_nodes)]
    for k, (a, b) in enumerate(pairs):
        if k in used:
            adj[a].append(b)
            adj[b].append(a)
    nodes = {n for k in used for n in pairs[k]}
    if not nodes:
        return True
    start = next(iter(nodes))
    seen, todo = {start}, deque([start])
    while todo:
        for m in adj[todo.popleft()]:
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen >= nodes


def _bend(a: np.ndarray, b: np.ndarray, bend: float, rng) -> np.ndarray:
    """A quadratic Bezier from a to b bulging by `bend` x length, sampled every ~4 m."""
    length = float(np.linalg.norm(b - a))
    if bend <= 0 or length < 1e-6:
        return np.stack([a, b])
    normal = np.array([-(b - a)[1], (b - a)[0]]) / length
    ctrl = (a + b) / 2 + normal * length * bend * rng.uniform(-1, 1)
    t = np.linspace(0, 1, max(int(length / 4.0), 2) + 1)[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t ** 2 * b


def make_road_network(style: CityStyle, size_m: float, rng: np.random.Generator,
                      ) -> RoadNetwork:
    """A street lattice over a size_m x size_m world (SW corner at the origin).

    'grid': straight orthogonal streets, the lattice rotated by grid_rotation_deg.
    'organic': the same lattice with jittered nodes, bent edges and dropped edges.
    Only edges that come within 30 m of the world are kept.
    """
    rotation = math.radians(rng.uniform(*style.grid_rotation_deg))
    us, vs = _lattice(rng, style, size_m, rotation)
    nu, nv = len(us), len(vs)
    uu, vv = np.meshgrid(us, vs, indexing='ij')
    block = 0.5 * sum(style.block_m)
    if style.road_pattern == 'organic':
        uu = uu + rng.uniform(-1, 1, uu.shape) * style.node_jitter * block
        vv = vv + rng.uniform(-1, 1, vv.shape) * style.node_jitter * block
    elif style.road_pattern != 'grid':
        raise ValueError(f'unknown road_pattern {style.road_pattern!r} (grid or organic)')
    c, s = math.cos(rotation), math.sin(rotation)
    centre = size_m / 2.0
    east = centre + c * uu - s * vv
    north = centre + s * uu + c * vv
    nodes = np.stack([east.ravel(), north.ravel()], axis=1)
    art_u = rng.integers(0, max(style.arterial_every, 1))
    art_v = rng.integers(0, max(style.arterial_every, 1))

    pairs, arterial = [], []
    for i in range(nu):
        for j in range(nv):
            if i + 1 < nu:  # along u: a street of constant v (index j)
                pairs.append((i * nv + j, (i + 1) * nv + j))
                arterial.append(style.arterial_every > 0 and j % style.arterial_every == art_v)
            if j + 1 < nv:
                pairs.append((i * nv + j, i * nv + j + 1))
                arterial.append(style.arterial_every > 0 and i % style.arterial_every == art_u)
    lo, hi = -30.0, size_m + 30.0
    near = [k for k, (a, b) in enumerate(pairs)
            if np.all((nodes[[a, b]] > lo) & (nodes[[a, b]] < hi), axis=1).any()]
    used = set(near)
    for k in rng.permutation(near):
        if rng.uniform() < style.edge_drop_prob and not arterial[k]:
            used.discard(int(k))
            if not _connected(len(nodes), pairs, used):
                used.add(int(k))

    edges = []
    for k in sorted(used):
        a, b = pairs[k]
        art = arterial[k]
        bend = style.edge_bend if style.road_pattern == 'organic' else 0.0
        poly = _bend(nodes[a], nodes[b], bend * (0.3 if art else 1.0), rng)
        parking = rng.uniform() < style.parking_lane_prob * (0.5 if art else 1.0)
        edges.append(RoadEdge(
            start=a, end=b, polyline_en_m=poly,
            lanes_per_dir=style.arterial_lanes_per_dir if art else style.street_lanes_per_dir,
            lane_width_m=style.lane_width_m,
            parking_lane_m=style.parking_lane_m if parking else 0.0,
            sidewalk_m=style.sidewalk_m[1] if art else style.sidewalk_m[0],
            centre_marking=(style.arterial_centre_marking if art
                            else style.street_centre_marking),
            arterial=art))
    return RoadNetwork(nodes, tuple(edges), rotation)
