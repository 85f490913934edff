"""Domain-gap switches: transient cars, per-view sun, camera looks and sensor noise."""
import math

import numpy as np

from geodistill_core.data.synthetic import (
    GROUND_LOOK,
    IDENTITY_LOOK,
    CameraPose,
    CarPresence,
    DomainGapConfig,
    RenderLabel,
    SceneBox,
    SceneCar,
    SunConfig,
    ViewLook,
    build_scene,
    render_panorama,
    render_satellite,
)
from geodistill_core.data.synthetic.appearance import apply_look
from geodistill_core.geometry.raster import NorthUpCrop

CAM = CameraPose(30.0, 30.0, 0.0, 2.0)
CROP = NorthUpCrop(120, 120, 0.5, 30.0, 30.0)


def _car_scene(**kwargs):
    cars = [SceneCar((38.0, 30.0), rgb=(0.9, 0.8, 0.0), presence=CarPresence.GROUND_ONLY),
            SceneCar((22.0, 30.0), rgb=(0.0, 0.8, 0.9), presence=CarPresence.SATELLITE_ONLY),
            SceneCar((30.0, 38.0), rgb=(0.9, 0.0, 0.9), presence=CarPresence.BOTH)]
    return build_scene(60.0, 0.1, cars=cars, **kwargs)


def _pano_car_columns(view, width):
    cols = np.flatnonzero((view.label == RenderLabel.CAR).any(axis=0))
    return {int(round(c)) for c in cols}


def test_transient_cars_exist_in_one_view_only():
    world = _car_scene()
    width = 360
    view = render_panorama(world, CAM, 180, width)
    cols = _pano_car_columns(view, width)
    ahead, behind, left = round((width - 1) / 2), width - 1, round((width - 1) / 2 - width / 4)
    assert ahead in cols  # ground-only car (east, straight ahead)
    assert behind not in cols and 0 not in cols  # satellite-only car (west) is absent
    assert left in cols  # the car in both views (north = left of an east-facing camera)
    sat = render_satellite(world, CROP).astype(int)
    def colour_near(east, north, rgb):
        r, c = CROP.map_to_pixel(east, north)
        patch = sat[int(r) - 1:int(r) + 2, int(c) - 1:int(c) + 2]
        return np.abs(patch - np.array(rgb) * 255).sum(axis=-1).min() < 150
    assert not colour_near(38.0, 30.0, (0.9, 0.8, 0.0))  # ground-only: not on the image
    assert colour_near(22.0, 30.0, (0.0, 0.8, 0.9))
    assert colour_near(30.0, 38.0, (0.9, 0.0, 0.9))
    # 'all' shows every car in both renderers.
    assert behind in _pano_car_columns(render_panorama(world, CAM, 180, width, cars='all'),
                                       width)


def test_generated_worlds_have_transient_cars_only_when_enabled(small_world_factory):
    on = small_world_factory('grid_downtown', 1)
    off = small_world_factory('grid_downtown', 1, domain_gap=DomainGapConfig.disabled())
    assert np.any(on.cars.presence != CarPresence.BOTH)
    assert np.all(off.cars.presence == CarPresence.BOTH)
    assert np.array_equal(off.lit_ground, off.lit_satellite)
    assert not np.array_equal(on.lit_ground, on.lit_satellite)


def test_sun_direction_moves_the_shadow():
    """A 10 m box casts its shadow away from the sun: with the sun in the south-east
    (azimuth -45 deg) the shadow falls north-west of the box."""
    sun = SunConfig(azimuth_deg=-45.0, elevation_deg=45.0)
    gap = DomainGapConfig(transient_car_fraction=0.0, satellite_sun=sun, ground_sun=sun,
                          satellite_look=IDENTITY_LOOK, ground_look=IDENTITY_LOOK)
    world = build_scene(60.0, 0.2, boxes=[SceneBox((30.0, 30.0), 4.0, 4.0, 10.0)],
                        domain_gap=gap)
    lit = world.lit_satellite.astype(float) / 255
    r, c = world.grid.map_to_pixel(np.array([30 - 6.0, 30 + 6.0]), np.array([30 + 6.0, 30 - 6.0]))
    (r_nw, r_se), (c_nw, c_se) = np.rint(r).astype(int), np.rint(c).astype(int)
    assert lit[r_nw, c_nw] < 0.1 and lit[r_se, c_se] > 0.9


def test_looks_change_colours_and_noise_is_seeded():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.05, 0.6, (32, 48, 3)).astype(np.float32)
    plain = apply_look(image, IDENTITY_LOOK, np.random.default_rng(1))
    again = apply_look(image, IDENTITY_LOOK, np.random.default_rng(2))
    assert np.array_equal(plain, again)  # no randomness without jitter or noise
    warm = apply_look(image, ViewLook(white_balance_rgb=(1.2, 1.0, 0.8)),
                      np.random.default_rng(1)).astype(int)
    assert (warm[..., 0] - plain[..., 0]).mean() > 5 and (warm[..., 2] - plain[..., 2]).mean() < -5
    noisy1 = apply_look(image, GROUND_LOOK, np.random.default_rng(1))
    noisy2 = apply_look(image, GROUND_LOOK, np.random.default_rng(1))
    noisy3 = apply_look(image, GROUND_LOOK, np.random.default_rng(2))
    assert np.array_equal(noisy1, noisy2) and not np.array_equal(noisy1, noisy3)


def test_disabled_gap_gives_matching_views_and_default_gap_differs():
    box = [SceneBox((40.0, 30.0), 4.0, 4.0, 8.0, facade_rgb=(0.5, 0.5, 0.5),
                    roof_rgb=(0.5, 0.5, 0.5))]
    plain = build_scene(60.0, 0.2, boxes=box)
    gapped = build_scene(60.0, 0.2, boxes=box, domain_gap=DomainGapConfig())
    a = render_panorama(plain, CAM, 64, 128, seed=0).rgb
    b = render_panorama(plain, CAM, 64, 128, seed=1).rgb
    assert np.array_equal(a, b)  # identity look: the seed does not matter
    c = render_panorama(gapped, CAM, 64, 128, seed=0).rgb
    assert np.abs(a.astype(int) - c).mean() > 3
    assert math.isclose(plain.config.domain_gap.transient_car_fraction, 0.0)
