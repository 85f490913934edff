"""Column ray marching over the height field (buildings + cars).

All rays of one image column share a horizontal bearing, so the column's terrain profile
is sampled once at horizontal distances t_0 < ... < t_{K-1} (fine near the camera,
geometric far away). A ray of slope s = tan(elevation) from height z first meets the
profile at the first sample k with max_{j <= k} (h_j - z) / t_j >= s; with the rows of a
column ordered by slope this is a histogram of row thresholds (RayBundle.first_reaching).
Wall positions (rising edges of the profile) are refined by bisection between samples.

Arrays are column-major: (W, K) per sample, (W, H) per pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodistill_core.data.synthetic.world import World

HIT_SKY = 0
HIT_TOP = 1
HIT_WALL = 2


@dataclass(frozen=True)
class RayMarchConfig:
    """near_m/far_m: marching range (beyond far_m only the flat ground is hit);
    step_min_m: step near the camera (None: 0.9 x the world cell); step_rel: step as a
    fraction of the distance far away; refine_iters: bisection steps on wall edges."""

    near_m: float = 0.3
    far_m: float = 320.0
    step_min_m: float | None = None
    step_rel: float = 0.015
    refine_iters: int = 4


def march_distances(cfg: RayMarchConfig, cell_m: float) -> np.ndarray:
    """Sample distances (K,) float64: step max(step_min, step_rel * t) from near to far."""
    step_min = 0.9 * cell_m if cfg.step_min_m is None else cfg.step_min_m
    t, out = cfg.near_m, []
    while t < cfg.far_m:
        out.append(t)
        t += max(step_min, cfg.step_rel * t)
    out.append(cfg.far_m)
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class RayBundle:
    """The pixel rays of a level camera, column by column.

    bearing_rad: (W,) map-frame bearing of each column's vertical plane (ENU,
    counter-clockwise from east). Pixel (u, v) has slope tan(elevation) =
    base_slope[v] * column_scale[u], with base_slope (H,) strictly decreasing (row 0
    looks highest) and column_scale (W,) > 0. Equirectangular panoramas (scale 1) and
    level pinhole cameras (scale 1 / sqrt(1 + x_u^2)) both have this form.
    """

    bearing_rad: np.ndarray
    base_slope: np.ndarray
    column_scale: np.ndarray

    def __post_init__(self):
        if self.bearing_rad.shape != self.column_scale.shape or self.bearing_rad.ndim != 1:
            raise ValueError(f'bearing_rad {self.bearing_rad.shape} and column_scale '
                             f'{self.column_scale.shape} must both be (W,)')
        if self.base_slope.ndim != 1 or np.any(np.diff(self.base_slope) >= 0):
            raise ValueError('base_slope must be (H,) and strictly decreasing')

    @property
    def shape(self) -> tuple[int, int]:
        """(W, H)."""
        return self.bearing_rad.shape[0], self.base_slope.shape[0]

    def slope(self) -> np.ndarray:
        """(W, H) float32 tan(elevation) of every pixel ray."""
        return (self.column_scale[:, None] * self.base_slope[None, :]).astype(np.float32)

    def rows_above(self, threshold: np.ndarray, inclusive: bool = False) -> np.ndarray:
        """Number of rows of column u whose slope is > threshold (>= if inclusive).

        threshold: (W, ...) per-column values; returns int64 of the same shape.
        """
        ratio = threshold / self.column_scale.reshape((-1,) + (1,) * (threshold.ndim - 1))
        side = 'right' if inclusive else 'left'
        return np.searchsorted(-self.base_slope, -ratio.ravel(), side=side).reshape(
            threshold.shape)

    def first_reaching(self, run_max: np.ndarray) -> np.ndarray:
        """For non-decreasing per-column sequences run_max (W, K), the first index k with
        run_max[u, k] >= slope[u, v] for every pixel: (W, H) int64 (K where none).

        Row threshold r_k = rows_above(run_max[:, k]) is non-increasing in k, and pixel v
        is reached at the first k with r_k <= v, so the answer is #{k: r_k > v}: a
        per-column histogram of r_k summed from the bottom row up."""
        w, h = self.shape
        r = self.rows_above(run_max)  # (W, K) in [0, H]
        counts = np.bincount((np.arange(w)[:, None] * (h + 1) + r).ravel(),
                             minlength=w * (h + 1)).reshape(w, h + 1)
        above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]  # above[:, v] = #{k: r_k >= v}
        return above[:, 1:]


@dataclass(frozen=True)
class ColumnHits:
    """Per-pixel first hits, (W, H) each: kind (HIT_*), t_m horizontal distance (inf for
    sky), sample index k of the hit (-1 if none); and per column/sample: building (W, K)
    int32 and car (W, K) int32 ids (-1 none) of the sample cells."""

    kind: np.ndarray
    t_m: np.ndarray
    k: np.ndarray
    building: np.ndarray
    car: np.ndarray


class HeightLookup:
    """Nearest-cell lookups of the static + visible-car height field of a world."""

    def __init__(self, world: World, cars_visible: np.ndarray):
        self.world = world
        self.inv_cell = 1.0 / world.cell_m
        self.size_m = world.size_m
        self.cols = world.grid.cols
        self.rows = world.grid.rows
        self.height = world.height_m.ravel()
        self.car_id = world.car_id.ravel()
        self.car_height = world.car_height_m.ravel()
        self.car_on = np.append(cars_visible.astype(np.float32), np.float32(0.0))

    def flat_index(self, east_m, north_m):
        """Flat cell index (int64) and inside mask for map points (any shape)."""
        col = np.floor(east_m * self.inv_cell).astype(np.int64)
        row = np.floor((self.size_m - north_m) * self.inv_cell).astype(np.int64)
        inside = (col >= 0) & (col < self.cols) & (row >= 0) & (row < self.rows)
        return np.where(inside, row * self.cols + col, 0), inside

    def sample(self, east_m, north_m):
        """(height, static height, flat index, inside) at map points."""
        idx, inside = self.flat_index(east_m, north_m)
        static = np.where(inside, self.height[idx], np.float32(0.0))
        car = np.where(inside, self.car_height[idx] * self.car_on[self.car_id[idx]],
                       np.float32(0.0))
        return np.maximum(static, car), static, idx, inside


def march_columns(world: World, east_m: float, north_m: float, cam_z_m: float,
                  rays: RayBundle, cars_visible: np.ndarray, cfg: RayMarchConfig,
                  ) -> ColumnHits:
    """First hits of the rays of a bundle. cars_visible: (N_cars,) bool."""
    w, h_px = rays.shape
    t = march_distances(cfg, world.cell_m).astype(np.float32)
    n_k = t.shape[0]
    dx = np.cos(rays.bearing_rad).astype(np.float32)[:, None]
    dy = np.sin(rays.bearing_rad).astype(np.float32)[:, None]
    look = HeightLookup(world, cars_visible)
    h, static, idx, inside = look.sample(np.float32(east_m) + dx * t,
                                         np.float32(north_m) + dy * t)
    building = np.where(inside, world.building_id.ravel()[idx], -1).astype(np.int32)
    car = np.where(inside & (h > static), look.car_id[idx], -1).astype(np.int32)

    # Refine rising edges: first point between t_{k-1} and t_k above h_{k-1}.
    t_eff = np.broadcast_to(t, h.shape).copy()
    rise_u, rise_k = np.nonzero(h[:, 1:] > h[:, :-1] + 1e-3)
    rise_k = rise_k + 1
    if rise_u.size:
        lo, hi = t[rise_k - 1], t[rise_k]
        base = h[rise_u, rise_k - 1] + np.float32(1e-3)
        ddx, ddy = dx[rise_u, 0], dy[rise_u, 0]
        for _ in range(cfg.refine_iters):
            mid = np.float32(0.5) * (lo + hi)
            up = look.sample(east_m + ddx * mid, north_m + ddy * mid)[0] > base
            hi = np.where(up, mid, hi)
            lo = np.where(up, lo, mid)
        t_eff[rise_u, rise_k] = hi
    cam_z = np.float32(cam_z_m)
    run_max = np.maximum.accumulate((h - cam_z) / t_eff, axis=1)
    k = rays.first_reaching(run_max)

    hit = k < n_k
    flat = (np.arange(w)[:, None] * n_k + np.minimum(k, n_k - 1)).ravel()
    t_prev_all = np.concatenate([np.zeros((w, 1), np.float32), t_eff[:, :-1]], axis=1)
    h_prev_all = np.concatenate([np.zeros((w, 1), np.float32), h[:, :-1]], axis=1)
    t_k = t_eff.ravel()[flat].reshape(w, h_px)
    t_prev = t_prev_all.ravel()[flat].reshape(w, h_px)
    h_k = h.ravel()[flat].reshape(w, h_px)
    h_prev = h_prev_all.ravel()[flat].reshape(w, h_px)
    slope = rays.slope()
    safe = np.where(np.abs(slope) > 1e-9, slope, np.float32(-1e-9))
    # A top (horizontal) hit on sample k when the ray was not below it at the previous
    # sample (2 cm tolerance for grazing rays) or it is the ground; a top hit on the
    # previous surface when the ray sinks below that before reaching the wall at t_k;
    # otherwise the wall of sample k.
    top = (cam_z + slope * t_prev > h_k - np.float32(0.02)) | (h_k <= np.float32(1e-3))
    before = (~top) & (cam_z + slope * t_k < h_prev)
    level = np.where(before, h_prev, h_k)
    t_top = np.clip((level - cam_z) / safe, t_prev, t_k)
    top |= before
    t_hit = np.where(top, t_top, t_k)
    ground_far = (~hit) & (slope < 0)
    t_hit = np.where(hit, t_hit, np.where(ground_far, -cam_z / safe, np.float32(np.inf)))
    kind = np.where(hit, np.where(top, HIT_TOP, HIT_WALL),
                    np.where(ground_far, HIT_TOP, HIT_SKY)).astype(np.uint8)
    return ColumnHits(kind=kind, t_m=t_hit.astype(np.float32, copy=False),
                      k=np.where(hit, k, -1), building=building, car=car)
