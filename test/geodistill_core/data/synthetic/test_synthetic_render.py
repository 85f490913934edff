"""Renderers: shapes, determinism, the ray-bundle search against brute force."""
import math

import numpy as np
import pytest

from geodistill_core.data.synthetic import (
    KITTI_CAMERA,
    CameraPose,
    PinholeCamera,
    RayBundle,
    RenderLabel,
    panorama_rays,
    pinhole_rays,
    render_panorama,
    render_pinhole,
    render_satellite,
    sample_street_poses,
)
from geodistill_core.geometry.raster import NorthUpCrop


@pytest.fixture(scope='module')
def pose(downtown):
    return sample_street_poses(downtown, 1, seed=5).pose(0)


def test_render_shapes_and_labels(downtown, pose):
    pano = render_panorama(downtown, pose, 64, 128)
    assert pano.rgb.shape == (64, 128, 3) and pano.rgb.dtype == np.uint8
    assert pano.linear_rgb.shape == (64, 128, 3) and pano.linear_rgb.dtype == np.float32
    assert pano.label.shape == (64, 128) and pano.range_m.shape == (64, 128)
    labels = set(np.unique(pano.label))
    assert {RenderLabel.SKY, RenderLabel.GROUND, RenderLabel.BUILDING} <= labels
    assert np.all(np.isinf(pano.range_m[pano.label == RenderLabel.SKY]))
    assert np.all(np.isfinite(pano.range_m[pano.label != RenderLabel.SKY]))
    small = PinholeCamera(96, 32, 60.0, 60.0, 47.5, 15.5)
    assert render_pinhole(downtown, pose, small).rgb.shape == (32, 96, 3)


def test_renders_are_deterministic(downtown, pose):
    a = render_panorama(downtown, pose, 64, 128, seed=3).rgb
    b = render_panorama(downtown, pose, 64, 128, seed=3).rgb
    c = render_panorama(downtown, pose, 64, 128, seed=4).rgb
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    crop = NorthUpCrop(64, 64, 0.3, pose.east_m, pose.north_m)
    s1, s2 = render_satellite(downtown, crop, seed=1), render_satellite(downtown, crop, seed=1)
    assert np.array_equal(s1, s2)
    assert not np.array_equal(s1, render_satellite(downtown, crop, seed=2))


def test_whole_world_map(downtown):
    crop = downtown.extent_crop(1.0)
    assert (crop.rows, crop.cols) == (120, 120)
    east, north = crop.pixel_to_map(-0.5, -0.5)  # outer corner of the top-left pixel
    assert np.allclose([east, north], [0.0, downtown.size_m])
    image = render_satellite(downtown, crop)
    assert image.shape == (120, 120, 3) and image.std() > 10


def test_panorama_rolls_with_yaw(downtown, pose):
    """Turning the camera by 90 deg left (counter-clockwise) rolls the panorama right by
    W/4 columns: the same world bearings move to larger column indices."""
    w = 128
    a = render_panorama(downtown, pose, 32, w).label
    turned = CameraPose(pose.east_m, pose.north_m, pose.yaw_rad + math.pi / 2, pose.height_m)
    b = render_panorama(downtown, turned, 32, w).label
    assert np.mean(np.roll(a, w // 4, axis=1) == b) > 0.99
    assert np.mean(np.roll(a, -w // 4, axis=1) == b) < 0.95


def test_first_reaching_matches_brute_force():
    rng = np.random.default_rng(0)
    bundles = [panorama_rays(0.3, 40, 16),
               pinhole_rays(PinholeCamera(16, 40, 20.0, 20.0, 7.5, 19.5), 0.3)]
    for rays in bundles:
        run_max = np.maximum.accumulate(rng.normal(0, 1, (16, 50)).astype(np.float32), axis=1)
        k = rays.first_reaching(run_max)
        slope = rays.slope()
        reach = run_max[:, :, None] >= slope[:, None, :]  # (W, K, H)
        brute = np.where(reach.any(axis=1), reach.argmax(axis=1), run_max.shape[1])
        assert np.array_equal(k, brute)


def test_ray_bundles_follow_the_conventions():
    rays = panorama_rays(1.0, 8, 16)
    u = np.arange(16)
    assert np.allclose(rays.bearing_rad, 1.0 - (u - 7.5) * 2 * np.pi / 16)
    assert np.all(rays.slope()[:, :4] > 0) and np.all(rays.slope()[:, 4:] < 0)
    cam = KITTI_CAMERA
    rays = pinhole_rays(cam, 0.0)
    x = (np.arange(cam.width_px) - cam.cx) / cam.fx
    assert np.allclose(rays.bearing_rad, -np.arctan(x))  # right of centre = clockwise
    with pytest.raises(ValueError, match='decreasing'):
        RayBundle(np.zeros(3), np.array([0.0, 1.0]), np.ones(3))
