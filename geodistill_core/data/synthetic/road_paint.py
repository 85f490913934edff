"""Paint roads into the world layers: asphalt, kerbs, sidewalks, lane markings, crosswalks.

Uses the RoadField (each cell's nearest road, arc length and lateral offset). Markings are
anti-aliased by their coverage of the cell (lines of 0.12-0.15 m on cells of ~0.1 m).
Near an intersection node (degree >= 3) of radius r (the farthest incident kerb plus
sidewalk): a zebra crosswalk over s in [r + 0.3, r + 3.3], a stop line across the
incoming lanes at [r + 3.6, r + 4.0], and no lane markings before r + 4.0.
"""
from __future__ import annotations

import numpy as np

from geodistill_core.data.synthetic.grid import value_noise
from geodistill_core.data.synthetic.materials import Material
from geodistill_core.data.synthetic.road_field import RoadField
from geodistill_core.data.synthetic.roads import RoadNetwork
from geodistill_core.data.synthetic.styles import CityStyle

KERB_M = 0.25
WHITE = np.array([0.80, 0.80, 0.78], dtype=np.float32)
YELLOW = np.array([0.78, 0.58, 0.10], dtype=np.float32)
_CENTRE_CODES = {'none': 0, 'double_yellow': 1, 'dashed_white': 2, 'dashed_yellow': 3,
                 'solid_white': 4}


def _edge_table(network: RoadNetwork, style: CityStyle, rng: np.random.Generator):
    radius = network.node_radius_m()
    rows = []
    for e in network.edges:
        if e.centre_marking not in _CENTRE_CODES:
            raise ValueError(f'unknown centre marking {e.centre_marking!r}; '
                             f'choose one of {sorted(_CENTRE_CODES)}')
        rows.append((e.half_width_m, e.sidewalk_m, e.lanes_per_dir, e.lane_width_m,
                     e.parking_lane_m, _CENTRE_CODES[e.centre_marking], float(e.arterial),
                     e.length_m, radius[e.start], radius[e.end],
                     float(rng.uniform() < style.crosswalk_prob),
                     float(rng.uniform() < style.crosswalk_prob)))
    names = ('half', 'sidewalk', 'lanes', 'lane_w', 'parking', 'centre', 'arterial',
             'length', 'r_start', 'r_end', 'cross_start', 'cross_end')
    table = np.array(rows, dtype=np.float32).reshape(-1, len(names))
    return {n: table[:, i] for i, n in enumerate(names)}


def _line(abs_lat, pos, width, cell_m):
    """Anti-aliased coverage of a line of `width` centred at lateral offset `pos`."""
    return np.clip(0.5 + (0.5 * width - np.abs(abs_lat - pos)) / cell_m, 0.0, 1.0)


def _dash(s, period_m=9.0, on_m=3.0):
    return (np.mod(s, period_m) < on_m).astype(np.float32)


def paint_roads(network: RoadNetwork, field: RoadField, style: CityStyle, cell_m: float,
                rng: np.random.Generator):
    """Road materials and albedo.

    Returns material (R, C) uint8 (0 where no road/kerb/sidewalk: block cells to fill)
    and rgb (R, C, 3) float32 linear albedo (0 where material is 0).
    """
    shape = field.kerb_dist_m.shape
    material = np.zeros(shape, dtype=np.uint8)
    rgb = np.zeros(shape + (3,), dtype=np.float32)
    if not network.edges:
        return material, rgb
    tab = _edge_table(network, style, rng)
    coarse = value_noise(shape, 3.0 / cell_m, rng)
    fine = rng.standard_normal(shape, dtype=np.float32)
    e = field.edge
    kd = field.kerb_dist_m
    near = (e >= 0) & (kd < tab['sidewalk'][np.maximum(e, 0)])
    idx = np.flatnonzero(near)
    e = e.ravel()[idx]
    kd = kd.ravel()[idx]
    s = field.s_m.ravel()[idx]
    lat = field.lat_m.ravel()[idx]
    absl = np.abs(lat)
    grain = 1.0 + 0.06 * fine.ravel()[idx] + 0.07 * coarse.ravel()[idx]
    t = {k: v[e] for k, v in tab.items()}

    road = kd < 0
    kerb = (kd >= 0) & (kd < KERB_M)
    mat = np.where(road, Material.ROAD, np.where(kerb, Material.KERB, Material.SIDEWALK))
    col = np.where(road[:, None], np.array(style.road_rgb, np.float32),
                   np.array(style.sidewalk_rgb, np.float32)) * grain[:, None]
    col[kerb] *= 1.2
    slab = (np.mod(s, 1.8) < 0.06) | (np.abs(kd - KERB_M - 0.5 * (t['sidewalk'] - KERB_M))
                                      < 0.03)
    col[(~road) & (~kerb) & slab] *= 0.8

    # Lane markings (zero inside intersections).
    start_cut = np.where(t['r_start'] > 0, t['r_start'] + 4.0, 0.0)
    end_cut = np.where(t['r_end'] > 0, t['length'] - t['r_end'] - 4.0, t['length'])
    live = (s > start_cut) & (s < end_cut) & road
    yellow = np.zeros_like(s)
    white = np.zeros_like(s)
    centre = t['centre']
    dbl = np.maximum(_line(absl, 0.16, 0.12, cell_m), 0)
    yellow += np.where(centre == 1, dbl, 0)
    centre_line = _line(absl, 0.0, 0.15, cell_m) * _dash(s)
    white += np.where(centre == 2, centre_line, 0)
    yellow += np.where(centre == 3, centre_line, 0)
    white += np.where(centre == 4, _line(absl, 0.0, 0.15, cell_m), 0)
    for i in range(1, int(tab['lanes'].max())):
        sep = _line(absl, i * t['lane_w'], 0.15, cell_m) * _dash(s)
        white += np.where(t['lanes'] > i, sep, 0)
    travel = t['lanes'] * t['lane_w']
    edge_pos = np.where(t['parking'] > 0, travel, t['half'] - 0.3)
    has_edge_line = (t['parking'] > 0) | (t['arterial'] > 0)
    white += np.where(has_edge_line, _line(absl, edge_pos, 0.15, cell_m), 0)
    white *= live
    yellow *= live

    # Crosswalks and stop lines at both ends.
    zebra = (np.mod(lat + t['half'], 1.0) < 0.55) & (absl < t['half'] - 0.2)
    for r, s_rel, enabled, incoming in (
            (t['r_start'], s, t['cross_start'], lat > 0),
            (t['r_end'], t['length'] - s, t['cross_end'], lat < 0)):
        at_node = road & (r > 0)
        band = at_node & (enabled > 0) & (s_rel > r + 0.3) & (s_rel < r + 3.3) & zebra
        white = np.where(band, 1.0, white)
        stop = at_node & (s_rel > r + 3.6) & (s_rel < r + 4.0) & incoming & (absl < travel)
        white = np.where(stop, 1.0, white)
        mat = np.where(band, Material.CROSSWALK, mat)

    paint = np.clip(white + yellow, 0.0, 1.0)[:, None]
    paint_rgb = np.where((yellow > white)[:, None], YELLOW, WHITE) * grain[:, None]
    col = col * (1.0 - paint) + paint_rgb * paint
    mat = np.where((mat == Material.ROAD) & (paint[:, 0] > 0.5), Material.LANE_MARKING, mat)
    material.ravel()[idx] = mat.astype(np.uint8)
    rgb.reshape(-1, 3)[idx] = col
    return material, rgb
