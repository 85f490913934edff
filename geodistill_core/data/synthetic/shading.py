"""Colours of hit points seen from the ground: ground and roofs, facades, cars, trees.

Every function takes flat (N,) arrays of hit points in the map frame (east_m, north_m,
z_m) and returns linear RGB (N, 3) float32 lit by the ground-view sun: ambient plus
direct light times the Lambert term (and the cast-shadow layer on horizontal surfaces).
"""
from __future__ import annotations

import numpy as np

from geodistill_core.data.synthetic.cars import car_side_rgb, car_top_rgb
from geodistill_core.data.synthetic.config import SunConfig
from geodistill_core.data.synthetic.lighting import sun_direction_enu
from geodistill_core.data.synthetic.materials import RenderLabel
from geodistill_core.data.synthetic.surfaces import hash01
from geodistill_core.data.synthetic.world import World

TRUNK_RGB = np.array([0.16, 0.11, 0.07], dtype=np.float32)
WALL_AMBIENT = 0.8


def _light(sun: SunConfig, ndotl: np.ndarray, lit, ambient_scale=1.0) -> np.ndarray:
    return (np.array(sun.ambient_rgb, np.float32) * ambient_scale
            + np.array(sun.sun_rgb, np.float32) * (np.clip(ndotl, 0, None) * lit)[:, None])


def _local(centre, yaw, east, north):
    de, dn = east - centre[:, 0], north - centre[:, 1]
    c, s = np.cos(yaw), np.sin(yaw)
    return c * de + s * dn, -s * de + c * dn, c, s


def _box_face(along, across, half_l, half_w, c, s):
    """Which side of a box a wall point lies on: horizontal normal (east, north) and the
    coordinate along that face."""
    on_end = (half_l - np.abs(along)) < (half_w - np.abs(across))
    na = np.where(on_end, np.sign(along), 0.0)
    nc = np.where(on_end, 0.0, np.sign(across))
    return na * c - nc * s, na * s + nc * c, np.where(on_end, across, along)


def flat_cells(world: World, east_m, north_m):
    """Flat cell index and inside mask (same convention as raymarch.HeightLookup)."""
    inv = 1.0 / world.cell_m
    col = np.floor(east_m * inv).astype(np.int64)
    row = np.floor((world.size_m - north_m) * inv).astype(np.int64)
    inside = (col >= 0) & (col < world.grid.cols) & (row >= 0) & (row < world.grid.rows)
    return np.where(inside, row * world.grid.cols + col, 0), inside, row, col


def _bilinear(img: np.ndarray, col_f, row_f) -> np.ndarray:
    """Bilinear lookup of a uint8 (R, C[, 3]) image at pixel coordinates -> (N[, 3]) / 255."""
    c0, r0 = np.floor(col_f), np.floor(row_f)
    fc, fr = col_f - c0, row_f - r0
    if img.ndim == 3:
        fc, fr = fc[:, None], fr[:, None]
    c0 = np.clip(c0.astype(np.int64), 0, img.shape[1] - 2)
    r0 = np.clip(r0.astype(np.int64), 0, img.shape[0] - 2)
    flat = img.reshape((img.shape[0] * img.shape[1],) + img.shape[2:])
    i00 = r0 * img.shape[1] + c0
    top = flat[i00] * (1 - fc) + flat[i00 + 1] * fc
    bottom = flat[i00 + img.shape[1]] * (1 - fc) + flat[i00 + img.shape[1] + 1] * fc
    return ((top * (1 - fr) + bottom * fr) * np.float32(1 / 255)).astype(np.float32)


def shade_tops(world: World, east_m, north_m, z_m, footprint_m, sun: SunConfig,
               cars_visible: np.ndarray):
    """Horizontal surfaces (ground, roofs, car roofs). footprint_m: pixel size on the
    surface, used to pick the ground mip level. Returns (rgb (N, 3), label (N,))."""
    idx, inside, row, col = flat_cells(world, east_m, north_m)
    static = np.where(inside, world.height_m.ravel()[idx], 0.0)
    cid = np.where(inside, world.car_id.ravel()[idx], -1)
    car_on = np.append(cars_visible, False)[cid]
    car_h = np.where(car_on, world.car_height_m.ravel()[idx], 0.0)
    is_car = car_on & (car_h > static) & (z_m > 0.05)
    is_roof = (~is_car) & (static > 0.05) & (z_m > 0.05)
    level = np.clip(np.floor(np.log2(np.maximum(footprint_m / world.cell_m, 1.0))), 0,
                    len(world.surface_mips)).astype(np.int64)
    level = np.where(~inside, 0, level)
    albedo = np.empty(east_m.shape + (3,), np.float32)
    near = (level == 0) & ~is_roof
    col_f = east_m[near] / world.cell_m - 0.5
    row_f = (world.size_m - north_m[near]) / world.cell_m - 0.5
    albedo[near] = _bilinear(world.surface_rgb, col_f, row_f)
    flat = (level == 0) & is_roof
    albedo[flat] = world.surface_rgb.reshape(-1, 3)[idx[flat]] * np.float32(1 / 255)
    for lv in range(1, len(world.surface_mips) + 1):
        sel = level == lv
        if not sel.any():
            continue
        img = world.surface_mips[lv - 1]
        r = np.clip(row[sel] >> lv, 0, img.shape[0] - 1)
        c = np.clip(col[sel] >> lv, 0, img.shape[1] - 1)
        albedo[sel] = img[r, c] * np.float32(1 / 255)
    albedo[~inside] = (0.25, 0.26, 0.22)
    if is_car.any():
        k = cid[is_car]
        cars = world.cars
        along, across, _, _ = _local(cars.centre_en_m[k], cars.yaw_rad[k], east_m[is_car],
                                     north_m[is_car])
        albedo[is_car] = car_top_rgb(cars.rgb[k], along, across, cars.length_m[k],
                                     cars.width_m[k])
    lit = np.where(inside, world.lit_ground.ravel()[idx], 255).astype(np.float32) / 255.0
    lit[near] = _bilinear(world.lit_ground, col_f, row_f)
    sin_el = float(sun_direction_enu(sun)[2])
    rgb = albedo * _light(sun, np.full(lit.shape, sin_el, np.float32), lit)
    label = np.where(is_car, RenderLabel.CAR,
                     np.where(is_roof, RenderLabel.BUILDING, RenderLabel.GROUND))
    return rgb, label.astype(np.uint8)


def shade_facades(world: World, bid, east_m, north_m, z_m, footprint_m, sun: SunConfig):
    """Building walls: storeys, windows (shop windows on the ground floor), parapets and
    pitched roof planes above the eaves. bid: (N,) building indices (>= 0)."""
    q = world.buildings.packed[bid]  # (N, 22), columns buildings.PACKED_COLUMNS
    c, s = q[:, 2], q[:, 3]
    de, dn = east_m - q[:, 0], north_m - q[:, 1]
    along, across = c * de + s * dn, c * dn - s * de
    ne, nn, coord = _box_face(along, across, q[:, 4], q[:, 5], c, s)
    storey_m, pitch, eave = q[:, 6], q[:, 7], q[:, 10]
    shop, pitched = q[:, 11] > 0.5, q[:, 12] > 0.5
    z_up = np.where(shop, z_m - 1.0, z_m)
    level = np.floor(z_up / storey_m)
    fz = z_up / storey_m - level
    win_idx = np.floor(coord / pitch)
    fx = np.abs(coord / pitch - win_idx - 0.5)
    window = ((fx < 0.5 * q[:, 8]) & (fz > 0.3) & (fz < 0.3 + q[:, 9]) & (z_up > 0)
              & (z_m < eave - 0.3))
    window |= shop & (z_m > 0.25) & (z_m < storey_m + 0.6) & (fx < 0.42)
    facade = q[:, 13:16] * np.where(fz < 0.05, np.float32(0.85), np.float32(1.0))[:, None]
    glint = 0.6 + 0.9 * hash01(win_idx + 7919 * bid, level)
    glass = q[:, 19:22] * glint[:, None]
    detail = np.clip(footprint_m / (0.4 * pitch), 0.0, 1.0)[:, None]  # fade when too small
    wall = np.where(window[:, None], glass + (0.5 * facade - 0.5 * glass) * detail, facade)
    above = z_m > eave + 0.02
    roof = np.where(pitched[:, None], q[:, 16:19], facade * np.float32(0.9))
    albedo = np.where(above[:, None], roof, wall)
    sun_dir = sun_direction_enu(sun).astype(np.float32)
    ndotl = np.where(above & pitched, 0.9 * sun_dir[2], ne * sun_dir[0] + nn * sun_dir[1])
    return albedo * _light(sun, ndotl, np.float32(1.0), WALL_AMBIENT)


def shade_car_sides(world: World, cid, east_m, north_m, z_m, sun: SunConfig):
    """Car bodies seen from the side: tyres, paint, cabin glass. cid: (N,) car indices."""
    cars = world.cars
    along, across, c, s = _local(cars.centre_en_m[cid], cars.yaw_rad[cid], east_m, north_m)
    ne, nn, _ = _box_face(along, across, 0.5 * cars.length_m[cid], 0.5 * cars.width_m[cid],
                          c, s)
    albedo = car_side_rgb(cars.rgb[cid], z_m, cars.height_m[cid]).astype(np.float32)
    sun_dir = sun_direction_enu(sun)
    ndotl = (ne * sun_dir[0] + nn * sun_dir[1]).astype(np.float32)
    return albedo * _light(sun, ndotl, 1.0, WALL_AMBIENT)


def shade_trees(world: World, tree, trunk, east_m, north_m, z_m, sun: SunConfig):
    """Tree canopies (ellipsoid normals, leaf-clump texture) and trunks."""
    t = world.trees
    de = east_m - t.centre_en_m[tree, 0]
    dn = north_m - t.centre_en_m[tree, 1]
    zc = 0.5 * (t.canopy_bottom_m[tree] + t.canopy_top_m[tree])
    rv = 0.5 * (t.canopy_top_m[tree] - t.canopy_bottom_m[tree])
    r2 = t.canopy_radius_m[tree] ** 2
    normal = np.stack([de / r2, dn / r2, (z_m - zc) / rv ** 2], axis=1)
    horiz = np.hypot(de, dn)[:, None]
    normal = np.where(trunk[:, None], np.concatenate(
        [np.stack([de, dn], axis=1) / np.maximum(horiz, 1e-6), np.zeros_like(horiz)], axis=1),
        normal)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    noise = world.noise_texture
    size = noise.shape[0]
    angle = np.arctan2(dn, de)
    u = np.floor((angle * t.canopy_radius_m[tree] + 37.0 * tree) / 0.25).astype(np.int64)
    v = np.floor(z_m / 0.25).astype(np.int64)
    leaf = np.clip(0.8 + 0.25 * noise[v % size, u % size], 0.45, 1.25)
    albedo = np.where(trunk[:, None], TRUNK_RGB, t.rgb[tree] * leaf[:, None])
    ndotl = (normal @ sun_direction_enu(sun)).astype(np.float32)
    return albedo.astype(np.float32) * _light(sun, ndotl, 1.0, 0.9)
