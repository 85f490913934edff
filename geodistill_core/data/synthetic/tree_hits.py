"""Exact ray intersections with the trees (ellipsoid canopy over a cylinder trunk).

Per column, the trees whose canopy disc the column's horizontal ray crosses are ranked by
entry distance; the nearest `max_per_column` are intersected, one rank at a time, with
the pixel rays of the column whose slope can reach them. A ray at horizontal distance t
has height z + s t, so the canopy condition
((t - a)^2 + p^2) / R^2 + (z + s t - zc)^2 / rv^2 = 1 (a: along-ray distance of the tree
centre, p: its perpendicular offset) is a quadratic in t.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodistill_core.data.synthetic.raymarch import RayBundle
from geodistill_core.data.synthetic.trees import TreeTable

MIN_T_M = 0.05


@dataclass(frozen=True)
class TreeHits:
    """(W, H): t_m horizontal distance of the first tree hit (inf: none), tree index
    (-1: none), trunk (bool: the trunk rather than the canopy was hit)."""

    t_m: np.ndarray
    tree: np.ndarray
    trunk: np.ndarray


def _row_spans(rays: RayBundle, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Rows of each column whose slope lies in [lo, hi].

    Returns (pair index, row) of every (pair, row) element, flattened."""
    sub = RayBundle(rays.bearing_rad[cols], rays.base_slope, rays.column_scale[cols])
    v0 = sub.rows_above(hi[:, None])[:, 0]
    v1 = sub.rows_above(lo[:, None], inclusive=True)[:, 0]
    length = np.maximum(v1 - v0, 0)
    pair = np.repeat(np.arange(len(cols)), length)
    start = np.cumsum(length) - length
    row = v0[pair] + np.arange(pair.size) - start[pair]
    return pair, row


def intersect_trees(trees: TreeTable, east_m: float, north_m: float, cam_z_m: float,
                    rays: RayBundle, range_m: float = 160.0, max_per_column: int = 6,
                    ) -> TreeHits:
    """First tree hit of every pixel ray of the bundle, (W, H) arrays."""
    w, h = rays.shape
    bearing_rad = rays.bearing_rad
    t_best = np.full((w, h), np.inf, np.float32)
    tree_best = np.full((w, h), -1, np.int64)
    trunk_best = np.zeros((w, h), bool)
    if len(trees) == 0:
        return TreeHits(t_best, tree_best, trunk_best)
    rel = trees.centre_en_m - np.array([east_m, north_m])
    near = np.flatnonzero(np.hypot(rel[:, 0], rel[:, 1]) < range_m + trees.canopy_radius_m)
    if near.size == 0:
        return TreeHits(t_best, tree_best, trunk_best)
    rel = rel[near]
    radius = trees.canopy_radius_m[near]
    dx, dy = np.cos(bearing_rad)[:, None], np.sin(bearing_rad)[:, None]
    along = dx * rel[:, 0] + dy * rel[:, 1]  # (W, T)
    perp = dx * rel[:, 1] - dy * rel[:, 0]
    chord = np.sqrt(np.maximum(radius ** 2 - perp ** 2, 0.0))
    entry = np.where((perp ** 2 < radius ** 2) & (along + chord > MIN_T_M), along - chord,
                     np.inf)
    n_pick = min(max_per_column, near.size)
    pick = np.argpartition(entry, n_pick - 1, axis=1)[:, :n_pick]  # (W, P)
    for rank in range(n_pick):
        cols = np.flatnonzero(np.isfinite(entry[np.arange(w), pick[:, rank]]))
        if cols.size == 0:
            continue
        j = pick[cols, rank]
        tree = near[j]
        a, p = along[cols, j], perp[cols, j]
        t_in = np.maximum(entry[cols, j], MIN_T_M)
        t_out = np.maximum(a + chord[cols, j], MIN_T_M)
        bottom, top = trees.canopy_bottom_m[tree], trees.canopy_top_m[tree]
        zc, rv = 0.5 * (bottom + top), 0.5 * (top - bottom)
        lo = np.minimum(np.minimum((bottom - cam_z_m) / t_in, (bottom - cam_z_m) / t_out),
                        -cam_z_m / t_in)
        hi = np.maximum((top - cam_z_m) / t_in, (top - cam_z_m) / t_out)
        pair, row = _row_spans(rays, cols, lo, hi)
        if pair.size == 0:
            continue
        s = (rays.column_scale[cols[pair]] * rays.base_slope[row]).astype(np.float32)
        r2, rv2, ap, pp = radius[j] ** 2, rv ** 2, a[pair], p[pair]
        dz = cam_z_m - zc[pair]
        qa = 1.0 / r2[pair] + s * s / rv2[pair]
        qb = -2.0 * ap / r2[pair] + 2.0 * s * dz / rv2[pair]
        qc = (ap * ap + pp * pp) / r2[pair] + dz * dz / rv2[pair] - 1.0
        disc = qb * qb - 4.0 * qa * qc
        root = np.sqrt(np.maximum(disc, 0.0))
        t1 = (-qb - root) / (2.0 * qa)
        t_hit = np.where(t1 > MIN_T_M, t1, (-qb + root) / (2.0 * qa))
        t_hit = np.where((disc >= 0) & (t_hit > MIN_T_M), t_hit, np.inf)
        trunk_r2 = trees.trunk_radius_m[tree[pair]] ** 2
        t_trunk = ap - np.sqrt(np.maximum(trunk_r2 - pp * pp, 0.0))
        z_trunk = cam_z_m + s * t_trunk
        on_trunk = ((pp * pp < trunk_r2) & (t_trunk > MIN_T_M) & (z_trunk >= 0)
                    & (z_trunk <= zc[pair]) & (t_trunk < t_hit))
        t_hit = np.where(on_trunk, t_trunk, t_hit)
        u = cols[pair]
        better = t_hit < t_best[u, row]
        u, row = u[better], row[better]
        t_best[u, row] = t_hit[better]
        tree_best[u, row] = tree[pair[better]]
        trunk_best[u, row] = on_trunk[better]
    return TreeHits(t_best, tree_best, trunk_best)
