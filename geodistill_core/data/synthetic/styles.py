"""Named city styles: what makes one synthetic city look unlike another.

A `CityStyle` fixes the road pattern, block sizes, street furniture density, building
sizes and the colour palettes. Worlds of one style share a look (same-area splits);
different styles differ in layout and colour (cross-area splits). Colours are linear
RGB albedos in [0, 1]; ranges are (min, max) tuples sampled uniformly.
"""
from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[float, float, float]
Range = tuple[float, float]


@dataclass(frozen=True)
class CityStyle:
    """Generation parameters of one kind of city (all lengths in metres)."""

    name: str
    # Road network.
    road_pattern: str  # 'grid' (straight, orthogonal) or 'organic' (jittered, curved)
    block_m: Range  # spacing between parallel streets
    grid_rotation_deg: Range  # rotation of the whole network (map frame, CCW)
    node_jitter: float  # organic: node jitter as a fraction of the block size
    edge_bend: float  # organic: mid-edge bend as a fraction of the edge length
    edge_drop_prob: float  # fraction of edges removed (connectivity is kept)
    arterial_every: int  # every n-th street is an arterial (0: none)
    lane_width_m: float
    street_lanes_per_dir: int
    arterial_lanes_per_dir: int
    parking_lane_prob: float  # probability that a street has kerbside parking lanes
    parking_lane_m: float
    sidewalk_m: Range  # (streets, arterials)
    street_centre_marking: str  # 'double_yellow', 'dashed_white', 'dashed_yellow', 'none'
    arterial_centre_marking: str
    crosswalk_prob: float  # per intersection approach
    # Buildings.
    frontage_m: Range  # building width along the street
    depth_m: Range  # building depth away from the street
    setback_m: Range  # distance from the sidewalk edge
    gap_m: Range  # gap between neighbouring buildings
    storeys: Range  # number of storeys (rounded)
    tower_prob: float  # probability of a tower (storeys x 2..4)
    storey_m: Range
    pitched_roof_prob: float
    shopfront_prob: float
    interior_buildings_per_ha: float  # extra buildings inside large blocks
    facade_rgb: tuple[RGB, ...]
    roof_rgb: tuple[RGB, ...]
    window_rgb: RGB
    # Ground surfaces.
    road_rgb: RGB
    sidewalk_rgb: RGB
    block_surfaces: tuple[tuple[str, float], ...]  # (material name, weight)
    grass_rgb: RGB
    plaza_rgb: RGB
    # Trees.
    street_tree_spacing_m: float  # 0: no street trees
    street_tree_prob: float
    park_trees_per_ha: float  # in grass blocks
    tree_radius_m: Range
    tree_height_m: Range
    tree_rgb: tuple[RGB, ...]
    # Cars.
    parked_car_prob: float  # per kerbside parking slot
    moving_cars_per_km: float  # per lane
    lot_car_prob: float  # per parking-lot stall
    car_rgb: tuple[RGB, ...]


_CAR_RGB = ((0.75, 0.75, 0.76), (0.05, 0.05, 0.06), (0.45, 0.46, 0.48), (0.55, 0.06, 0.05),
            (0.08, 0.15, 0.40), (0.80, 0.80, 0.78), (0.25, 0.30, 0.28), (0.70, 0.55, 0.10))

GRID_DOWNTOWN = CityStyle(
    name='grid_downtown', road_pattern='grid', block_m=(70.0, 95.0),
    grid_rotation_deg=(-35.0, 35.0), node_jitter=0.0, edge_bend=0.0, edge_drop_prob=0.0,
    arterial_every=3, lane_width_m=3.3, street_lanes_per_dir=1, arterial_lanes_per_dir=2,
    parking_lane_prob=0.7, parking_lane_m=2.4, sidewalk_m=(3.5, 5.0),
    street_centre_marking='double_yellow', arterial_centre_marking='double_yellow',
    crosswalk_prob=0.95,
    frontage_m=(14.0, 30.0), depth_m=(18.0, 32.0), setback_m=(0.0, 0.5), gap_m=(0.0, 1.5),
    storeys=(5.0, 14.0), tower_prob=0.2, storey_m=(3.3, 3.9), pitched_roof_prob=0.0,
    shopfront_prob=0.8, interior_buildings_per_ha=2.0,
    facade_rgb=((0.55, 0.52, 0.48), (0.42, 0.40, 0.38), (0.62, 0.60, 0.57),
                (0.35, 0.22, 0.18), (0.50, 0.45, 0.38), (0.30, 0.33, 0.36)),
    roof_rgb=((0.45, 0.45, 0.44), (0.30, 0.30, 0.30), (0.55, 0.54, 0.50),
              (0.38, 0.36, 0.33)),
    window_rgb=(0.10, 0.14, 0.18),
    road_rgb=(0.20, 0.20, 0.21), sidewalk_rgb=(0.52, 0.50, 0.47),
    block_surfaces=(('plaza', 0.6), ('parking', 0.25), ('grass', 0.15)),
    grass_rgb=(0.20, 0.32, 0.12), plaza_rgb=(0.48, 0.46, 0.43),
    street_tree_spacing_m=11.0, street_tree_prob=0.55, park_trees_per_ha=60.0,
    tree_radius_m=(2.0, 3.5), tree_height_m=(6.0, 10.0),
    tree_rgb=((0.13, 0.24, 0.08), (0.16, 0.27, 0.10), (0.11, 0.20, 0.09)),
    parked_car_prob=0.7, moving_cars_per_km=25.0, lot_car_prob=0.6, car_rgb=_CAR_RGB,
)

SUBURB_ORGANIC = CityStyle(
    name='suburb_organic', road_pattern='organic', block_m=(70.0, 110.0),
    grid_rotation_deg=(-90.0, 90.0), node_jitter=0.22, edge_bend=0.18, edge_drop_prob=0.2,
    arterial_every=0, lane_width_m=3.0, street_lanes_per_dir=1, arterial_lanes_per_dir=1,
    parking_lane_prob=0.2, parking_lane_m=2.2, sidewalk_m=(2.0, 2.5),
    street_centre_marking='none', arterial_centre_marking='dashed_white',
    crosswalk_prob=0.3,
    frontage_m=(9.0, 14.0), depth_m=(8.0, 12.0), setback_m=(4.0, 8.0), gap_m=(4.0, 9.0),
    storeys=(1.0, 2.0), tower_prob=0.0, storey_m=(2.8, 3.1), pitched_roof_prob=0.85,
    shopfront_prob=0.0, interior_buildings_per_ha=0.0,
    facade_rgb=((0.80, 0.76, 0.66), (0.70, 0.72, 0.72), (0.78, 0.70, 0.55),
                (0.60, 0.66, 0.70), (0.82, 0.80, 0.76)),
    roof_rgb=((0.35, 0.18, 0.14), (0.25, 0.25, 0.27), (0.40, 0.30, 0.22),
              (0.20, 0.22, 0.26)),
    window_rgb=(0.14, 0.16, 0.18),
    road_rgb=(0.24, 0.24, 0.25), sidewalk_rgb=(0.60, 0.59, 0.56),
    block_surfaces=(('grass', 1.0),),
    grass_rgb=(0.18, 0.34, 0.10), plaza_rgb=(0.55, 0.53, 0.50),
    street_tree_spacing_m=14.0, street_tree_prob=0.6, park_trees_per_ha=35.0,
    tree_radius_m=(2.5, 4.5), tree_height_m=(7.0, 13.0),
    tree_rgb=((0.14, 0.26, 0.07), (0.18, 0.30, 0.09), (0.12, 0.22, 0.10)),
    parked_car_prob=0.3, moving_cars_per_km=8.0, lot_car_prob=0.4, car_rgb=_CAR_RGB,
)

INDUSTRIAL = CityStyle(
    name='industrial', road_pattern='grid', block_m=(110.0, 150.0),
    grid_rotation_deg=(-10.0, 10.0), node_jitter=0.0, edge_bend=0.0, edge_drop_prob=0.15,
    arterial_every=2, lane_width_m=3.6, street_lanes_per_dir=1, arterial_lanes_per_dir=2,
    parking_lane_prob=0.1, parking_lane_m=2.6, sidewalk_m=(1.8, 2.5),
    street_centre_marking='dashed_yellow', arterial_centre_marking='double_yellow',
    crosswalk_prob=0.2,
    frontage_m=(30.0, 60.0), depth_m=(25.0, 50.0), setback_m=(6.0, 15.0), gap_m=(8.0, 20.0),
    storeys=(1.0, 2.0), tower_prob=0.05, storey_m=(4.5, 6.0), pitched_roof_prob=0.0,
    shopfront_prob=0.0, interior_buildings_per_ha=0.8,
    facade_rgb=((0.62, 0.63, 0.64), (0.50, 0.52, 0.56), (0.66, 0.60, 0.50),
                (0.40, 0.44, 0.48)),
    roof_rgb=((0.70, 0.71, 0.72), (0.55, 0.57, 0.58), (0.62, 0.58, 0.52),
              (0.35, 0.40, 0.45)),
    window_rgb=(0.22, 0.25, 0.28),
    road_rgb=(0.27, 0.27, 0.27), sidewalk_rgb=(0.55, 0.54, 0.52),
    block_surfaces=(('parking', 0.45), ('dirt', 0.3), ('grass', 0.25)),
    grass_rgb=(0.26, 0.32, 0.15), plaza_rgb=(0.50, 0.50, 0.50),
    street_tree_spacing_m=25.0, street_tree_prob=0.2, park_trees_per_ha=10.0,
    tree_radius_m=(2.0, 3.5), tree_height_m=(6.0, 9.0),
    tree_rgb=((0.16, 0.25, 0.10), (0.20, 0.28, 0.12)),
    parked_car_prob=0.25, moving_cars_per_km=10.0, lot_car_prob=0.35, car_rgb=_CAR_RGB,
)

OLD_TOWN = CityStyle(
    name='old_town', road_pattern='organic', block_m=(45.0, 65.0),
    grid_rotation_deg=(-90.0, 90.0), node_jitter=0.25, edge_bend=0.12, edge_drop_prob=0.1,
    arterial_every=4, lane_width_m=2.9, street_lanes_per_dir=1, arterial_lanes_per_dir=1,
    parking_lane_prob=0.15, parking_lane_m=2.0, sidewalk_m=(1.8, 3.0),
    street_centre_marking='none', arterial_centre_marking='dashed_white',
    crosswalk_prob=0.6,
    frontage_m=(7.0, 13.0), depth_m=(10.0, 16.0), setback_m=(0.0, 0.3), gap_m=(0.0, 0.5),
    storeys=(3.0, 5.0), tower_prob=0.03, storey_m=(3.0, 3.5), pitched_roof_prob=0.8,
    shopfront_prob=0.5, interior_buildings_per_ha=1.0,
    facade_rgb=((0.85, 0.72, 0.52), (0.80, 0.60, 0.45), (0.88, 0.82, 0.68),
                (0.70, 0.48, 0.38), (0.78, 0.78, 0.70), (0.82, 0.66, 0.40)),
    roof_rgb=((0.55, 0.26, 0.16), (0.48, 0.22, 0.14), (0.60, 0.32, 0.20),
              (0.35, 0.30, 0.28)),
    window_rgb=(0.12, 0.12, 0.13),
    road_rgb=(0.34, 0.32, 0.30), sidewalk_rgb=(0.58, 0.55, 0.50),
    block_surfaces=(('plaza', 0.55), ('grass', 0.45)),
    grass_rgb=(0.22, 0.33, 0.13), plaza_rgb=(0.55, 0.50, 0.44),
    street_tree_spacing_m=0.0, street_tree_prob=0.0, park_trees_per_ha=45.0,
    tree_radius_m=(2.0, 4.0), tree_height_m=(6.0, 11.0),
    tree_rgb=((0.15, 0.26, 0.09), (0.18, 0.28, 0.10)),
    parked_car_prob=0.3, moving_cars_per_km=6.0, lot_car_prob=0.3, car_rgb=_CAR_RGB,
)

CITY_STYLES: dict[str, CityStyle] = {
    s.name: s for s in (GRID_DOWNTOWN, SUBURB_ORGANIC, INDUSTRIAL, OLD_TOWN)
}


def get_city_style(style: str | CityStyle) -> CityStyle:
    """Resolve a style name (a key of CITY_STYLES) or pass a CityStyle through."""
    if isinstance(style, CityStyle):
        return style
    try:
        return CITY_STYLES[style]
    except KeyError:
        raise ValueError(f'unknown city style {style!r}; choose one of '
                         f'{sorted(CITY_STYLES)} or pass a CityStyle') from None
