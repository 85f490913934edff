"""Render ground-level images from per-column ray bundles (shared by panorama and pinhole).

A camera image is described by, for each image column, the map-frame bearing of the
column's vertical plane and, for each pixel, its ray slope tan(elevation). This holds for
equirectangular panoramas and for level pinhole cameras alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodistill_core.data.synthetic.appearance import apply_look
from geodistill_core.data.synthetic.config import ViewLook
from geodistill_core.data.synthetic.materials import RenderLabel
from geodistill_core.data.synthetic.poses import CameraPose
from geodistill_core.data.synthetic.raymarch import (
    HIT_TOP,
    HIT_WALL,
    RayBundle,
    RayMarchConfig,
    march_columns,
)
from geodistill_core.data.synthetic.shading import (
    shade_car_sides,
    shade_facades,
    shade_tops,
    shade_trees,
)
from geodistill_core.data.synthetic.sky import HORIZON_RGB, sky_rgb
from geodistill_core.data.synthetic.tree_hits import intersect_trees
from geodistill_core.data.synthetic.world import World


@dataclass(frozen=True)
class GroundRenderConfig:
    """march: height-field ray marching; tree_range_m / trees_per_column: tree
    intersection budget; fog_m: distance of 63% haze."""

    march: RayMarchConfig = RayMarchConfig()
    tree_range_m: float = 160.0
    trees_per_column: int = 6
    fog_m: float = 900.0


DEFAULT_GROUND_RENDER = GroundRenderConfig()


_SKY, _TOP, _CAR_SIDE, _FACADE, _LOST_WALL, _TREE = range(6)


@dataclass(frozen=True)
class GroundView:
    """A rendered ground image and its ground truth, all (H, W[, 3]).

    rgb: uint8 RGB after the camera look; linear_rgb: float32 linear radiance before it;
    label: uint8 RenderLabel; range_m: float32 distance from the optical centre to the hit
    point (inf for sky).
    """

    rgb: np.ndarray
    linear_rgb: np.ndarray
    label: np.ndarray
    range_m: np.ndarray


def render_columns(world: World, pose: CameraPose, rays: RayBundle,
                   pixel_angle_rad: float, *, cars: str = 'ground',
                   look: ViewLook | None = None, seed: int = 0,
                   config: GroundRenderConfig = DEFAULT_GROUND_RENDER) -> GroundView:
    """Render the W columns of H pixels of a ray bundle; outputs are (H, W[, 3]).

    pixel_angle_rad: angular pixel size (texture level of detail). cars: which cars exist
    (CarTable.visible). look: default the world's domain_gap.ground_look. seed: per-image
    colour jitter and sensor noise.
    """
    visible = world.cars.visible(cars)
    hits = march_columns(world, pose.east_m, pose.north_m, pose.height_m, rays, visible,
                         config.march)
    trees = intersect_trees(world.trees, pose.east_m, pose.north_m, pose.height_m, rays,
                            config.tree_range_m, config.trees_per_column)
    w, h = rays.shape
    tree_first = (trees.t_m < hits.t_m).ravel()
    t = np.where(tree_first, trees.t_m.ravel(), hits.t_m.ravel())
    kind = hits.kind.ravel()
    k = np.maximum(hits.k, 0)
    cols = np.arange(w)[:, None]
    bid = hits.building[cols, k].ravel()
    cid = hits.car[cols, k].ravel()
    code = np.where(kind == HIT_WALL, np.where(cid >= 0, _CAR_SIDE,
                                               np.where(bid >= 0, _FACADE, _LOST_WALL)),
                    np.where(kind == HIT_TOP, _TOP, _SKY))
    code = np.where(tree_first, _TREE, code).astype(np.uint8)
    cos_b = np.cos(rays.bearing_rad).astype(np.float32)
    sin_b = np.sin(rays.bearing_rad).astype(np.float32)
    base = rays.base_slope.astype(np.float32)
    scale = rays.column_scale.astype(np.float32)
    sun = world.config.domain_gap.ground_sun

    rgb = np.empty((w * h, 3), np.float32)
    label = np.empty(w * h, np.uint8)
    range_m = np.full(w * h, np.inf, np.float32)
    for c in (_SKY, _TOP, _CAR_SIDE, _FACADE, _LOST_WALL, _TREE):
        idx = np.flatnonzero(code == c)
        if idx.size == 0:
            continue
        u, v = idx // h, idx % h
        dx, dy, s = cos_b[u], sin_b[u], scale[u] * base[v]
        if c == _SKY:
            rgb[idx] = sky_rgb(dx, dy, s, sun, world.noise_texture)
            label[idx] = RenderLabel.SKY
            continue
        tc = t[idx]
        east, north, z = pose.east_m + dx * tc, pose.north_m + dy * tc, pose.height_m + s * tc
        dist = tc * np.sqrt(1.0 + s * s)
        footprint = dist * np.float32(pixel_angle_rad)
        if c == _TOP:
            col, label[idx] = shade_tops(world, east, north, z, footprint, sun, visible)
        elif c == _CAR_SIDE:
            col = shade_car_sides(world, cid[idx], east, north, z, sun)
            label[idx] = RenderLabel.CAR
        elif c == _FACADE:
            col = shade_facades(world, bid[idx], east, north, z, footprint, sun)
            label[idx] = RenderLabel.BUILDING
        elif c == _LOST_WALL:  # a wall sample the edge refinement lost: grey concrete
            col = np.full((idx.size, 3), 0.3, np.float32)
            label[idx] = RenderLabel.BUILDING
        else:
            col = shade_trees(world, trees.tree.ravel()[idx], trees.trunk.ravel()[idx], east,
                              north, z, sun)
            label[idx] = RenderLabel.TREE
        haze = (1.0 - np.exp(-dist / np.float32(config.fog_m)))[:, None]
        rgb[idx] = col * (1 - haze) + HORIZON_RGB * haze
        range_m[idx] = dist
    rgb = rgb.reshape(w, h, 3)
    label = label.reshape(w, h)
    range_m = range_m.reshape(w, h)
    linear = np.ascontiguousarray(rgb.transpose(1, 0, 2))
    look = world.config.domain_gap.ground_look if look is None else look
    return GroundView(rgb=apply_look(linear, look, np.random.default_rng(seed)),
                      linear_rgb=linear, label=np.ascontiguousarray(label.T),
                      range_m=np.ascontiguousarray(range_m.T))
