"""World generation: every style, determinism, layer consistency, config validation."""
import numpy as np
import pytest

from geodistill_core.data.synthetic import (
    CITY_STYLES,
    ROAD_MATERIALS,
    DomainGapConfig,
    Material,
    WorldConfig,
    generate_world,
    get_city_style,
)

LAYERS = ('height_m', 'surface_rgb', 'material', 'building_id', 'canopy_top_m', 'canopy_rgb',
          'car_id', 'car_height_m', 'lit_satellite', 'lit_ground')


def test_at_least_four_named_styles():
    assert len(CITY_STYLES) >= 4
    assert {'grid_downtown', 'suburb_organic', 'industrial', 'old_town'} <= set(CITY_STYLES)
    with pytest.raises(ValueError, match='unknown city style'):
        get_city_style('atlantis')


@pytest.mark.parametrize('style', sorted(CITY_STYLES))
def test_every_style_generates_a_city(small_world_factory, style):
    world = small_world_factory(style, 0)
    n = world.grid.rows
    assert world.grid.rows == world.grid.cols == 600
    for name in LAYERS:
        layer = getattr(world, name)
        assert layer.shape[:2] == (n, n), name
    assert world.surface_rgb.dtype == np.uint8 and world.surface_rgb.shape == (n, n, 3)
    assert len(world.roads.edges) > 0 and len(world.buildings) > 0
    counts = np.bincount(world.material.ravel(), minlength=len(Material) + 1)
    assert counts[Material.ROAD] > 0 and counts[Material.BUILDING] > 0
    assert counts[Material.SIDEWALK] > 0 and counts[0] == 0  # every cell has a material
    # Buildings stand exactly where the building id is set, never on a street.
    on_building = world.building_id >= 0
    assert np.array_equal(on_building, world.material == Material.BUILDING)
    assert np.all(world.height_m[on_building] > 2.0)
    assert np.all(world.height_m[~on_building] == 0.0)
    # Cars stand on free ground, not inside buildings.
    assert not np.any((world.car_id >= 0) & on_building)


def test_styles_differ_in_layout_and_colour(small_world_factory):
    down = small_world_factory('grid_downtown', 0)
    suburb = small_world_factory('suburb_organic', 0)
    mean_height = [w.height_m[w.building_id >= 0].mean() for w in (down, suburb)]
    assert mean_height[0] > 2 * mean_height[1]
    grass = [np.mean(w.material == Material.GRASS) for w in (down, suburb)]
    assert grass[1] > grass[0] + 0.2


def test_same_seed_same_world_different_seed_different_world(small_world_factory):
    config = WorldConfig(style='old_town', size_m=80.0, cell_m=0.25)
    a, b = generate_world(config, 3), generate_world(config, 3)
    for name in LAYERS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.buildings.centre_en_m, b.buildings.centre_en_m)
    c = generate_world(config, 4)
    assert not np.array_equal(a.surface_rgb, c.surface_rgb)
    assert not np.array_equal(a.height_m, c.height_m)


def test_road_edges_are_on_road_cells(downtown):
    """The lane centres of every road lie on road cells (where no car stands)."""
    hits, total = 0, 0
    for edge in downtown.roads.edges:
        s = np.linspace(0, edge.length_m, 50)
        points, tangents = edge.point_at(s)
        lane = points + 0.5 * edge.lane_width_m * np.stack([tangents[:, 1], -tangents[:, 0]],
                                                           axis=1)
        r, c = downtown.grid.map_to_pixel(lane[:, 0], lane[:, 1])
        r, c = np.rint(r).astype(int), np.rint(c).astype(int)
        ok = (r >= 0) & (r < downtown.grid.rows) & (c >= 0) & (c < downtown.grid.cols)
        mats = downtown.material[r[ok], c[ok]]
        hits += np.isin(mats, np.array(ROAD_MATERIALS, np.uint8)).sum()
        total += ok.sum()
    assert total > 100 and hits == total


def test_config_validation():
    with pytest.raises(ValueError, match='cell_m'):
        WorldConfig(cell_m=5.0)
    with pytest.raises(ValueError, match='size_m'):
        WorldConfig(size_m=5.0)
    with pytest.raises(ValueError, match='transient'):
        DomainGapConfig(transient_car_fraction=1.5)
