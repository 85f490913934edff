"""Trees: a vertical cylinder trunk under an ellipsoid canopy.

The canopy of tree i is the ellipsoid centred at (centre_en_m[i], (bottom + top) / 2)
with horizontal radius canopy_radius_m and vertical semi-axis (top - bottom) / 2; the
trunk rises from the ground to the canopy centre. The world keeps the exact table (the
ground renderer intersects rays with it) and a rasterised canopy top surface for the
satellite view.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geodistill_core.data.synthetic.grid import cells_of_points, disk_cells, value_noise
from geodistill_core.data.synthetic.materials import Material
from geodistill_core.data.synthetic.roads import RoadNetwork
from geodistill_core.data.synthetic.styles import CityStyle
from geodistill_core.geometry.raster import NorthUpCrop


@dataclass(frozen=True, eq=False)
class TreeTable:
    """T trees: centre_en_m (T, 2) m; canopy_radius_m, canopy_bottom_m, canopy_top_m,
    trunk_radius_m (T,) m; rgb (T, 3) float32 linear leaf albedo."""

    centre_en_m: np.ndarray
    canopy_radius_m: np.ndarray
    canopy_bottom_m: np.ndarray
    canopy_top_m: np.ndarray
    trunk_radius_m: np.ndarray
    rgb: np.ndarray

    def __len__(self) -> int:
        return len(self.canopy_radius_m)

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> TreeTable:
        """rows of (east, north, radius, bottom, top, trunk_radius, r, g, b)."""
        a = np.array(rows, dtype=np.float64).reshape(-1, 9)
        return cls(a[:, 0:2].copy(), a[:, 2].copy(), a[:, 3].copy(), a[:, 4].copy(),
                   a[:, 5].copy(), a[:, 6:9].astype(np.float32))


def _tree(centre, style: CityStyle, rng) -> tuple:
    radius = rng.uniform(*style.tree_radius_m)
    top = rng.uniform(*style.tree_height_m)
    bottom = max(2.3, top - 2.2 * radius)
    rgb = np.array(style.tree_rgb[int(rng.integers(len(style.tree_rgb)))])
    rgb = rgb * (1 + rng.uniform(-0.12, 0.12, 3))
    return (centre[0], centre[1], radius, bottom, top, rng.uniform(0.15, 0.3), *rgb)


def _clear_of_buildings(grid, building_id, centre, radius) -> bool:
    disk = disk_cells(grid, centre, radius)
    if disk is None:
        return False
    win, mask, _, _ = disk
    return not (building_id[win.rows, win.cols][mask] >= 0).any()


def place_trees(network: RoadNetwork, style: CityStyle, grid: NorthUpCrop,
                material: np.ndarray, building_id: np.ndarray, rng: np.random.Generator,
                ) -> TreeTable:
    """Street trees along sidewalks near the kerb, park trees on grass and plazas."""
    rows: list[tuple] = []
    spacing = 2.5  # minimum trunk spacing, metres (coarse occupancy)
    occupied: set[tuple[int, int]] = set()

    def accept(centre, radius_clear, allowed) -> bool:
        key = (int(centre[0] // spacing), int(centre[1] // spacing))
        if key in occupied:
            return False
        r, c, inside = cells_of_points(grid, np.array([centre[0]]), np.array([centre[1]]))
        if not inside[0] or material[r[0], c[0]] not in allowed:
            return False
        if not _clear_of_buildings(grid, building_id, centre, radius_clear):
            return False
        occupied.add(key)
        return True

    radius = network.node_radius_m()
    if style.street_tree_spacing_m > 0:
        for edge in network.edges:
            if edge.sidewalk_m < 2.0:
                continue
            s_values = np.arange(radius[edge.start] + 4.0, edge.length_m - radius[edge.end] - 4.0,
                                 style.street_tree_spacing_m)
            if len(s_values) == 0:
                continue
            points, tangents = edge.point_at(s_values)
            for side in (1.0, -1.0):
                normals = side * np.stack([-tangents[:, 1], tangents[:, 0]], axis=1)
                for p, n in zip(points, normals, strict=True):
                    if rng.uniform() >= style.street_tree_prob:
                        continue
                    centre = p + n * (edge.half_width_m + 0.9)
                    tree = _tree(centre, style, rng)
                    if accept(centre, tree[2] * 0.6, (Material.SIDEWALK,)):
                        rows.append(tree)

    cell_area = grid.meters_per_px ** 2
    green = np.count_nonzero((material == Material.GRASS) | (material == Material.PLAZA))
    n_try = rng.poisson(green * cell_area / 1e4 * style.park_trees_per_ha * 3.0)
    for _ in range(n_try):
        east, north = rng.uniform(0, grid.cols * grid.meters_per_px, 2)
        centre = np.array([east, north])
        tree = _tree(centre, style, rng)
        if rng.uniform() < 1 / 3 and accept(centre, tree[2] + 0.5,
                                            (Material.GRASS, Material.PLAZA)):
            rows.append(tree)
    return TreeTable.from_rows(rows)


def rasterize_canopies(trees: TreeTable, grid: NorthUpCrop, rng: np.random.Generator):
    """Canopy top surface for the satellite view.

    Returns canopy_top_m (R, C) float32 (0 where no canopy) and canopy_rgb (R, C, 3)
    float32 linear albedo with leaf-clump texture.
    """
    top = np.zeros((grid.rows, grid.cols), dtype=np.float32)
    rgb = np.zeros((grid.rows, grid.cols, 3), dtype=np.float32)
    clump_cells = 0.7 / grid.meters_per_px
    for i in range(len(trees)):
        radius = float(trees.canopy_radius_m[i])
        disk = disk_cells(grid, trees.centre_en_m[i], radius)
        if disk is None:
            continue
        win, mask, de, dn = disk
        rv = 0.5 * (trees.canopy_top_m[i] - trees.canopy_bottom_m[i])
        zc = 0.5 * (trees.canopy_top_m[i] + trees.canopy_bottom_m[i])
        q = np.clip(1.0 - (de * de + dn * dn) / (radius * radius), 0.0, 1.0)
        noise = value_noise(de.shape, clump_cells, rng)
        h = (zc + rv * np.sqrt(q) + 0.25 * noise).astype(np.float32)
        region = (win.rows, win.cols)
        write = mask & (h > top[region])
        top[region] = np.where(write, h, top[region])
        tone = (0.85 + 0.18 * noise)[..., None]
        rgb[region] = np.where(write[..., None], trees.rgb[i] * tone, rgb[region])
    return top, rgb
