"""Satellite view: a north-up orthographic (nadir) image of the world at any resolution.

The crop is a geometry.raster.NorthUpCrop in the world's map frame: pixel (r, c) shows
the ground at crop.pixel_to_map(r, c) (pixel centres at integers; row grows south).
Top surfaces (ground, roofs, canopies, the cars of the chosen view) are shaded by the
satellite sun with cast shadows, then resampled from the world grid (bilinear, with a
Gaussian pre-filter when the crop is coarser than the grid). Outside the world the
image shows OUTSIDE_RGB.
"""
from __future__ import annotations

import cv2
import numpy as np

from geodistill_core.data.synthetic.appearance import apply_look
from geodistill_core.data.synthetic.cars import car_top_rgb
from geodistill_core.data.synthetic.config import SunConfig, ViewLook
from geodistill_core.data.synthetic.grid import window_around
from geodistill_core.data.synthetic.lighting import (
    cast_shadow_lit,
    sun_direction_enu,
    surface_normals,
)
from geodistill_core.data.synthetic.world import World
from geodistill_core.geometry.raster import NorthUpCrop

OUTSIDE_RGB = (0.22, 0.24, 0.18)


def _top_surface(world: World, rows: slice, cols: slice, cars: str):
    """Albedo (h, w, 3) float32, top height (h, w) and visible-car height of a window."""
    region = (rows, cols)
    albedo = world.surface_rgb[region].astype(np.float32) * np.float32(1 / 255)
    top = world.height_m[region].copy()
    canopy = world.canopy_top_m[region]
    over = canopy > top
    albedo[over] = world.canopy_rgb[region][over].astype(np.float32) / 255.0
    np.maximum(top, canopy, out=top)
    cid = world.car_id[region]
    shown = np.zeros(cid.shape, dtype=bool)
    has = cid >= 0
    shown[has] = world.cars.visible(cars)[cid[has]]
    car_h = np.where(shown, world.car_height_m[region], 0.0).astype(np.float32)
    on_car = shown & (car_h > top)
    if on_car.any():
        k = cid[on_car]
        c = world.cars
        rr, cc = np.nonzero(on_car)
        east, north = world.grid.pixel_to_map(rr + rows.start, cc + cols.start)
        de, dn = east - c.centre_en_m[k, 0], north - c.centre_en_m[k, 1]
        cy, sy = np.cos(c.yaw_rad[k]), np.sin(c.yaw_rad[k])
        along, across = cy * de + sy * dn, -sy * de + cy * dn
        albedo[on_car] = car_top_rgb(c.rgb[k], along, across, c.length_m[k], c.width_m[k])
        top[on_car] = car_h[on_car]
    return albedo, top, car_h


def shade_top_view(world: World, rows: slice, cols: slice, sun: SunConfig, lit: np.ndarray,
                   cars: str) -> np.ndarray:
    """Sun-lit linear colour (h, w, 3) float32 of a grid window seen from straight above.

    lit: (h, w) static direct-sun fraction of the window (World.lit_* / 255).
    """
    albedo, top, car_h = _top_surface(world, rows, cols, cars)
    if car_h.max() > 0:
        lit = lit * cast_shadow_lit(car_h, world.cell_m, sun)
    normal = surface_normals(top, world.cell_m)
    ndotl = np.clip(normal @ sun_direction_enu(sun).astype(np.float32), 0.0, None)
    light = (np.array(sun.ambient_rgb, np.float32)
             + np.array(sun.sun_rgb, np.float32) * (ndotl * lit)[..., None])
    return albedo * light


def render_satellite_linear(world: World, crop: NorthUpCrop, cars: str = 'satellite',
                            ) -> np.ndarray:
    """Linear RGB (crop.rows, crop.cols, 3) float32 of the crop, before the camera look."""
    grid = world.grid
    scale = crop.meters_per_px / grid.meters_per_px
    sigma = 0.45 * scale if scale > 1.0 else 0.0
    pad_m = (3.0 + 3.0 * sigma) * grid.meters_per_px
    half_e = 0.5 * crop.cols * crop.meters_per_px + pad_m
    half_n = 0.5 * crop.rows * crop.meters_per_px + pad_m
    win = window_around(grid, crop.centre_east_m - half_e, crop.centre_north_m - half_n,
                        crop.centre_east_m + half_e, crop.centre_north_m + half_n)
    outside = np.array(OUTSIDE_RGB, np.float32)
    if win is None:
        return np.broadcast_to(outside, (crop.rows, crop.cols, 3)).copy()
    sun = world.config.domain_gap.satellite_sun
    lit = world.lit_satellite[win.rows, win.cols].astype(np.float32) / 255.0
    colour = shade_top_view(world, win.rows, win.cols, sun, lit, cars)
    if sigma > 0:
        colour = cv2.GaussianBlur(colour, (0, 0), sigma)
    # crop pixel (r, c) -> window pixel: linear with slope `scale`.
    r0, c0 = grid.map_to_pixel(*crop.pixel_to_map(0.0, 0.0))
    matrix = np.array([[scale, 0.0, c0 - win.cols.start], [0.0, scale, r0 - win.rows.start]],
                      dtype=np.float64)
    return cv2.warpAffine(colour, matrix, (crop.cols, crop.rows),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in outside))


def render_satellite(world: World, crop: NorthUpCrop, *, cars: str = 'satellite',
                     look: ViewLook | None = None, seed: int = 0) -> np.ndarray:
    """North-up satellite image (crop.rows, crop.cols, 3) uint8 RGB.

    cars: which cars are shown ('satellite' = the satellite view's cars, 'ground', 'all',
    'none'). look: photometric model (default: the world's domain_gap.satellite_look).
    seed: seeds the per-image colour jitter and sensor noise.
    """
    look = world.config.domain_gap.satellite_look if look is None else look
    linear = render_satellite_linear(world, crop, cars)
    return apply_look(linear, look, np.random.default_rng(seed))

