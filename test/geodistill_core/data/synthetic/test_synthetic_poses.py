"""Street camera sampling and smooth drives along the roads."""
import math

import numpy as np
import pytest

from geodistill_core.data.synthetic import (
    ROAD_MATERIALS,
    SIDEWALK_MATERIALS,
    WorldConfig,
    generate_world,
    hide_ground_cars_near,
    sample_drive,
    sample_street_poses,
)


def _materials(world, east, north):
    r, c = world.grid.map_to_pixel(np.asarray(east), np.asarray(north))
    return world.material[np.rint(r).astype(int), np.rint(c).astype(int)]


def _road_heading(world, samples):
    out = []
    for i in range(len(samples)):
        edge = world.roads.edges[samples.edge[i]]
        pts, tans = edge.point_at(np.linspace(0, edge.length_m, 400))
        j = np.argmin(np.hypot(pts[:, 0] - samples.east_m[i], pts[:, 1] - samples.north_m[i]))
        out.append(math.atan2(tans[j, 1], tans[j, 0]))
    return np.array(out)


@pytest.mark.parametrize('style', ['grid_downtown', 'suburb_organic'])
def test_poses_lie_on_roads_and_sidewalks(small_world_factory, style):
    world = small_world_factory(style, 0)
    samples = sample_street_poses(world, 40, seed=1)
    mats = _materials(world, samples.east_m, samples.north_m)
    road = np.isin(mats, np.array(ROAD_MATERIALS, np.uint8))
    walk = np.isin(mats, np.array(SIDEWALK_MATERIALS, np.uint8))
    assert np.array_equal(road, samples.on_road) and np.array_equal(walk, ~samples.on_road)
    assert samples.on_road.any() and (~samples.on_road).any()
    # No camera inside a car of the ground view.
    r, c = world.grid.map_to_pixel(samples.east_m, samples.north_m)
    cid = world.car_id[np.rint(r).astype(int), np.rint(c).astype(int)]
    assert not np.any((cid >= 0) & world.cars.visible('ground')[np.maximum(cid, 0)])


def test_road_yaw_follows_the_road_and_keeps_right(downtown):
    samples = sample_street_poses(downtown, 30, seed=2, surfaces=('road',))
    diff = (samples.yaw_rad - _road_heading(downtown, samples) + math.pi) % math.pi
    assert np.all(np.minimum(diff, math.pi - diff) < 1e-6)  # parallel to the road
    # Keep right: the lane is on the right of the direction of travel.
    for i in range(len(samples)):
        edge = downtown.roads.edges[samples.edge[i]]
        pts, _ = edge.point_at(np.linspace(0, edge.length_m, 400))
        j = np.argmin(np.hypot(pts[:, 0] - samples.east_m[i], pts[:, 1] - samples.north_m[i]))
        to_cam = np.array([samples.east_m[i], samples.north_m[i]]) - pts[j]
        yaw = samples.yaw_rad[i]
        left = -math.sin(yaw) * to_cam[0] + math.cos(yaw) * to_cam[1]
        assert left < 0


def test_uniform_yaw_and_determinism(downtown):
    a = sample_street_poses(downtown, 200, seed=3, yaw_mode='uniform')
    b = sample_street_poses(downtown, 200, seed=3, yaw_mode='uniform')
    assert np.array_equal(a.yaw_rad, b.yaw_rad) and np.array_equal(a.east_m, b.east_m)
    hist = np.histogram(a.yaw_rad, bins=4, range=(-math.pi, math.pi))[0]
    assert hist.min() > 25
    c = sample_street_poses(downtown, 200, seed=4, yaw_mode='uniform')
    assert not np.array_equal(a.east_m, c.east_m)
    with pytest.raises(ValueError, match='yaw_mode'):
        sample_street_poses(downtown, 1, seed=0, yaw_mode='compass')


@pytest.fixture(scope='module')
def wide_suburb():
    return generate_world(WorldConfig(style='suburb_organic', size_m=260.0, cell_m=0.4), 2)


def test_drive_is_smooth_consistent_and_on_the_road(wide_suburb):
    world = wide_suburb
    drive = sample_drive(world, 300, speed_mps=6.0, hz=10.0, seed=1, margin_m=5.0)
    assert len(drive) == 300 and np.allclose(np.diff(drive.time_s), 0.1)
    step = np.hypot(np.diff(drive.east_m), np.diff(drive.north_m))
    assert np.allclose(step, 0.6, atol=0.01)  # constant speed
    def wrap(a):
        return (a + math.pi) % (2 * math.pi) - math.pi
    turn = wrap(np.diff(drive.yaw_rad))
    chord = np.arctan2(np.diff(drive.north_m), np.diff(drive.east_m))
    assert np.abs(wrap(chord - drive.yaw_rad[:-1] - 0.5 * turn)).max() < 0.01
    rate = 0.5 * (drive.yaw_rate_rps[1:] + drive.yaw_rate_rps[:-1])
    assert np.abs(turn * drive.hz - rate).max() < 0.05
    assert np.abs(turn).sum() > 0.5  # the drive turns at least once
    assert np.allclose(drive.v_east_mps, 6.0 * np.cos(drive.yaw_rad))
    assert np.allclose(drive.v_north_mps, 6.0 * np.sin(drive.yaw_rad))
    assert np.allclose(drive.accel_left_mps2, 6.0 * drive.yaw_rate_rps)
    mats = _materials(world, drive.east_m, drive.north_m)
    assert np.mean(np.isin(mats, np.array(ROAD_MATERIALS, np.uint8))) > 0.97
    again = sample_drive(world, 300, speed_mps=6.0, hz=10.0, seed=1, margin_m=5.0)
    assert np.array_equal(drive.east_m, again.east_m)


@pytest.mark.parametrize('seed', [0, 3])
def test_a_drive_longer_than_its_first_route_does_not_stand_still(wide_suburb, seed):
    """At 10 m/s these walks' lane paths (corners trimmed and rounded) came out shorter
    than the drive: the last frames stood still while the OXTS velocity said 10 m/s. The
    route is now extended (same seed, same walk continued) until every frame is on it."""
    drive = sample_drive(wide_suburb, 300, speed_mps=10.0, hz=10.0, seed=seed, margin_m=5.0)
    step = np.hypot(np.diff(drive.east_m), np.diff(drive.north_m))
    assert step.min() > 0.9  # 1 m per frame, chords of the sharpest corners a little less
    assert np.allclose(np.hypot(drive.v_east_mps, drive.v_north_mps), 10.0)
    again = sample_drive(wide_suburb, 300, speed_mps=10.0, hz=10.0, seed=seed, margin_m=5.0)
    assert np.array_equal(drive.east_m, again.east_m)


def test_hide_cars_near_a_drive(small_world_factory):
    downtown = small_world_factory('grid_downtown', 0)
    drive = sample_drive(downtown, 200, speed_mps=8.0, seed=0, margin_m=0.0)
    clear = hide_ground_cars_near(downtown, drive.east_m, drive.north_m, radius_m=2.0)
    visible = clear.cars.visible('ground')
    d = np.hypot(clear.cars.centre_en_m[:, None, 0] - drive.east_m[None],
                 clear.cars.centre_en_m[:, None, 1] - drive.north_m[None]).min(axis=1)
    assert not np.any(visible & (d < 2.0))
    assert np.array_equal(clear.cars.visible('satellite'), downtown.cars.visible('satellite'))
