"""Road coordinates of every world cell: nearest road, arc length, lateral offset.

The field is what road painting, building placement and camera sampling share: for each
cell, the road whose kerb is nearest (`edge`), the signed distance to that kerb
(`kerb_dist_m`, negative on the carriageway), and the cell's coordinates in that road's
frame (`s_m` along the centreline, `lat_m` across it, positive to the left).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodistill_core.data.synthetic.grid import window_around
from geodistill_core.data.synthetic.roads import RoadNetwork
from geodistill_core.geometry.raster import NorthUpCrop

FAR_M = 1.0e4
PIECE_M = 8.0


@dataclass(frozen=True, eq=False)
class RoadField:
    """Per-cell road coordinates, all (R, C): kerb_dist_m float32 (FAR_M far from any
    road), edge int32 (-1 far from any road), s_m float32, lat_m float32."""

    kerb_dist_m: np.ndarray
    edge: np.ndarray
    s_m: np.ndarray
    lat_m: np.ndarray


def _pieces(poly: np.ndarray, cum: np.ndarray):
    """Split a polyline into straight pieces of at most PIECE_M: (a, b, s_a) triples."""
    for i in range(len(poly) - 1):
        a, b = poly[i], poly[i + 1]
        length = float(np.linalg.norm(b - a))
        n = max(int(np.ceil(length / PIECE_M)), 1)
        for k in range(n):
            yield a + (b - a) * k / n, a + (b - a) * (k + 1) / n, cum[i] + length * k / n


def compute_road_field(network: RoadNetwork, grid: NorthUpCrop, reach_m: float = 3.0,
                       ) -> RoadField:
    """Rasterise the road coordinates within sidewalk + reach_m of every kerb."""
    shape = (grid.rows, grid.cols)
    kerb = np.full(shape, FAR_M, dtype=np.float32)
    edge_id = np.full(shape, -1, dtype=np.int32)
    s_field = np.zeros(shape, dtype=np.float32)
    lat_field = np.zeros(shape, dtype=np.float32)
    for k, edge in enumerate(network.edges):
        half = edge.half_width_m
        pad = half + edge.sidewalk_m + reach_m
        for a, b, s_a in _pieces(edge.polyline_en_m, edge.cumulative_m):
            lo, hi = np.minimum(a, b) - pad, np.maximum(a, b) + pad
            win = window_around(grid, lo[0], lo[1], hi[0], hi[1])
            if win is None:
                continue
            d = b - a
            length = float(np.hypot(*d))
            if length < 1e-9:
                continue
            d = d / length
            pe, pn = win.east_m - a[0], win.north_m - a[1]
            t = np.clip(pe * d[0] + pn * d[1], 0.0, length)
            cross = d[0] * pn - d[1] * pe
            dist = np.hypot(pe - t * d[0], pn - t * d[1])
            val = dist - half
            region = (win.rows, win.cols)
            better = val < kerb[region]
            if not better.any():
                continue
            kerb[region] = np.where(better, val, kerb[region])
            edge_id[region] = np.where(better, k, edge_id[region])
            s_field[region] = np.where(better, s_a + t, s_field[region])
            lat_field[region] = np.where(better, np.copysign(dist, cross), lat_field[region])
    return RoadField(kerb, edge_id, s_field, lat_field)
