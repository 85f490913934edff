"""The synthetic world: a 2.5D city as north-up layers plus exact object tables.

`generate_world(config, seed)` is a pure function of its arguments (numpy only, no
files). The map frame is ENU metres with the origin at the world's south-west corner;
layers follow `World.grid` (geometry.raster.NorthUpCrop: row grows south, column grows
east, cell (r, c) centred at grid.pixel_to_map(r, c)). The ground is flat at height 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from geodistill_core.data.synthetic.buildings import BuildingTable
from geodistill_core.data.synthetic.cars import CarTable
from geodistill_core.data.synthetic.city_buildings import place_city_buildings
from geodistill_core.data.synthetic.city_cars import place_cars
from geodistill_core.data.synthetic.config import WorldConfig
from geodistill_core.data.synthetic.grid import world_grid
from geodistill_core.data.synthetic.lighting import cast_shadow_lit
from geodistill_core.data.synthetic.road_field import compute_road_field
from geodistill_core.data.synthetic.road_paint import paint_roads
from geodistill_core.data.synthetic.roads import RoadNetwork, make_road_network
from geodistill_core.data.synthetic.styles import CityStyle, get_city_style
from geodistill_core.data.synthetic.surfaces import fill_blocks
from geodistill_core.data.synthetic.trees import TreeTable, place_trees, rasterize_canopies
from geodistill_core.geometry.raster import NorthUpCrop

GROUND_MIP_LEVELS = 4
NOISE_TEXTURE_PX = 256


@dataclass(frozen=True, eq=False)
class World:
    """All layers are (R, C[, 3]) on `grid`; colours are linear albedo x 255 (uint8).

    height_m: float32, static solids (buildings; ground = 0).
    surface_rgb: uint8, albedo of the top static surface (ground or roof).
    material: uint8, Material of the top static surface.
    building_id: int32, index into `buildings` (-1 none).
    canopy_top_m / canopy_rgb: float32 / uint8, tree canopy top (0 none) and albedo.
    car_id / car_height_m: int32 (-1 none) / float32, all cars of every view.
    lit_satellite / lit_ground: uint8, 255 x fraction of direct sun reaching the cell
        under each view's sun (buildings and canopies cast shadows, cars do not).
    surface_mips: surface_rgb downsampled by 2, 4, 8 (for distant ground).
    noise_texture: (NOISE_TEXTURE_PX, NOISE_TEXTURE_PX) float32 tileable noise (clouds, leaves).
    """

    config: WorldConfig
    seed: int
    style: CityStyle
    grid: NorthUpCrop
    height_m: np.ndarray
    surface_rgb: np.ndarray
    material: np.ndarray
    building_id: np.ndarray
    canopy_top_m: np.ndarray
    canopy_rgb: np.ndarray
    car_id: np.ndarray
    car_height_m: np.ndarray
    lit_satellite: np.ndarray
    lit_ground: np.ndarray
    surface_mips: tuple[np.ndarray, ...]
    noise_texture: np.ndarray
    roads: RoadNetwork
    buildings: BuildingTable
    trees: TreeTable
    cars: CarTable

    @property
    def cell_m(self) -> float:
        return self.grid.meters_per_px

    @property
    def size_m(self) -> float:
        return self.grid.cols * self.grid.meters_per_px

    def extent_crop(self, meters_per_px: float) -> NorthUpCrop:
        """A north-up crop covering the whole world at meters_per_px (e.g. a GeoTIFF map);
        its outer pixel edges coincide with the world's edges when size_m / meters_per_px
        is an integer."""
        n = int(round(self.size_m / meters_per_px))
        half = 0.5 * self.size_m
        return NorthUpCrop(n, n, self.size_m / n, half, half)


def _to_u8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _periodic_noise(size: int, sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Tileable smooth noise (size, size) float32, zero mean, unit std (FFT low-pass)."""
    f = np.fft.fftfreq(size)
    k2 = f[:, None] ** 2 + f[None, :] ** 2
    spectrum = np.fft.fft2(rng.standard_normal((size, size)))
    out = np.real(np.fft.ifft2(spectrum * np.exp(-2 * (np.pi * sigma_px) ** 2 * k2)))
    return ((out - out.mean()) / max(float(out.std()), 1e-9)).astype(np.float32)


def assemble_world(config: WorldConfig, seed: int, style: CityStyle, grid: NorthUpCrop, *,
                   height_m, surface_rgb, material, building_id, canopy_top_m, canopy_rgb,
                   car_id, car_height_m, roads, buildings, trees, cars,
                   rng: np.random.Generator) -> World:
    """Build a World from its layers: lighting, mipmaps and sky are derived here.

    surface_rgb and canopy_rgb are float32 linear albedo in [0, 1] (or uint8 x 255).
    """
    solid = np.maximum(height_m, canopy_top_m).astype(np.float32)
    gap = config.domain_gap
    lit_sat = _to_u8(cast_shadow_lit(solid, grid.meters_per_px, gap.satellite_sun))
    lit_grd = (lit_sat if gap.ground_sun == gap.satellite_sun
               else _to_u8(cast_shadow_lit(solid, grid.meters_per_px, gap.ground_sun)))
    surf = surface_rgb if surface_rgb.dtype == np.uint8 else _to_u8(surface_rgb)
    canopy = canopy_rgb if canopy_rgb.dtype == np.uint8 else _to_u8(canopy_rgb)
    mips, level = [], surf
    for _ in range(GROUND_MIP_LEVELS - 1):
        level = cv2.pyrDown(level)
        mips.append(level)
    sky = _periodic_noise(NOISE_TEXTURE_PX, 6.0, rng)
    return World(config=config, seed=seed, style=style, grid=grid,
                 height_m=height_m.astype(np.float32), surface_rgb=surf,
                 material=material.astype(np.uint8), building_id=building_id.astype(np.int32),
                 canopy_top_m=canopy_top_m.astype(np.float32), canopy_rgb=canopy,
                 car_id=car_id.astype(np.int32), car_height_m=car_height_m.astype(np.float32),
                 lit_satellite=lit_sat, lit_ground=lit_grd, surface_mips=tuple(mips),
                 noise_texture=sky, roads=roads, buildings=buildings, trees=trees, cars=cars)


def generate_world(config: WorldConfig, seed: int) -> World:
    """Generate a city world; a pure function of (config, seed).

    Each stage draws from its own child of np.random.SeedSequence(seed), so a stage's
    randomness does not shift when another stage changes.
    """
    style = get_city_style(config.style)
    grid = world_grid(config.cells, config.cell_m)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    network = make_road_network(style, config.size_m, rngs[0])
    field = compute_road_field(network, grid)
    material, rgb = paint_roads(network, field, style, config.cell_m, rngs[1])
    del field
    labels = fill_blocks(material, rgb, style, grid, network.rotation_rad, rngs[2])
    buildings, height, building_id, roof_rgb = place_city_buildings(
        network, style, grid, material, labels, rngs[3])
    del labels
    on_roof = building_id >= 0
    rgb[on_roof] = roof_rgb[on_roof]
    del roof_rgb
    trees = place_trees(network, style, grid, material, building_id, rngs[4])
    canopy_top, canopy_rgb = rasterize_canopies(trees, grid, rngs[5])
    cars, car_id, car_height = place_cars(network, style, grid, material, building_id,
                                          config.domain_gap.transient_car_fraction, rngs[6])
    return assemble_world(config, seed, style, grid, height_m=height, surface_rgb=rgb,
                          material=material, building_id=building_id,
                          canopy_top_m=canopy_top, canopy_rgb=canopy_rgb, car_id=car_id,
                          car_height_m=car_height, roads=network, buildings=buildings,
                          trees=trees, cars=cars, rng=rngs[7])
