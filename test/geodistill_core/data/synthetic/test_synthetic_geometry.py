"""Convention pins: a landmark at a known map position appears at the analytically
predicted panorama column/row, pinhole pixel and satellite pixel (method.md section 6)."""
import math

import numpy as np
import pytest

from geodistill_core.data.synthetic import (
    KITTI_CAMERA,
    CameraPose,
    RenderLabel,
    SceneBox,
    SceneTree,
    build_scene,
    render_panorama,
    render_pinhole,
    render_satellite,
)
from geodistill_core.geometry.raster import NorthUpCrop

H, W = 320, 640
CAM_EN = (30.0, 30.0)
PILLAR_EN = (40.0, 30.0)  # 10 m due east of the camera


@pytest.fixture(scope='module')
def pillar_world():
    """A 1 m x 1 m red pillar, 20 m tall, due east of the camera on flat grey ground."""
    return build_scene(60.0, 0.1, boxes=[SceneBox(PILLAR_EN, 1.0, 1.0, 20.0)])


def _building_columns(view, row):
    return np.flatnonzero(view.label[row] == RenderLabel.BUILDING)


def _circular_centre(cols, width):
    angles = cols * 2 * np.pi / width
    mean = math.atan2(np.sin(angles).mean(), np.cos(angles).mean())
    return (mean * width / (2 * np.pi)) % width


@pytest.mark.parametrize('yaw_rad, expected_col', [
    (math.pi / 2, (W - 1) / 2 + W / 4),   # facing north: east is to the right
    (0.0, (W - 1) / 2),                   # facing east: straight ahead
    (-math.pi / 2, (W - 1) / 2 - W / 4),  # facing south: east is to the left
    (math.pi, W - 0.5),                   # facing west: behind, on the seam
])
def test_panorama_pillar_column(pillar_world, yaw_rad, expected_col):
    view = render_panorama(pillar_world, CameraPose(*CAM_EN, yaw_rad, 2.0), H, W)
    cols = _building_columns(view, H // 2 - 20)
    assert 5 <= cols.size <= 15  # 1 m at 10 m: 2 atan(0.05) * W / 2pi = 10.2 px
    centre = _circular_centre(cols, W)
    assert abs((centre - expected_col + W / 2) % W - W / 2) <= 1.0


def test_panorama_north_facing_pillar_is_not_on_the_left(pillar_world):
    view = render_panorama(pillar_world, CameraPose(*CAM_EN, math.pi / 2, 2.0), H, W)
    mask = view.label == RenderLabel.BUILDING
    assert mask[:, W // 2:].sum() > 100
    assert mask[:, :W // 2].sum() == 0


def test_panorama_pillar_rows(pillar_world):
    """The front face at 9.5 m spans elevations atan(-2 / 9.5) to atan((20 - 2) / 9.5)."""
    view = render_panorama(pillar_world, CameraPose(*CAM_EN, 0.0, 2.0), H, W)
    rows = np.flatnonzero(view.label[:, W // 2] == RenderLabel.BUILDING)
    def row_of(elevation):
        return (math.pi / 2 - elevation) * H / math.pi - 0.5
    assert abs(rows.min() - row_of(math.atan2(18.0, 9.5))) <= 1.0
    assert abs(rows.max() - row_of(math.atan2(-2.0, 9.5))) <= 1.0


def test_panorama_horizon_between_rows_h2_minus_1_and_h2():
    empty = build_scene(60.0, 0.2)
    view = render_panorama(empty, CameraPose(30.0, 30.0, 0.7, 2.0), H, W)
    sky = view.label == RenderLabel.SKY
    assert sky[:H // 2].all() and not sky[H // 2:].any()
    # The ground range grows towards the horizon as h / tan(depression).
    v = np.array([H // 2 + 10, H // 2 + 40])
    depression = (v + 0.5) * math.pi / H - math.pi / 2
    expected = 2.0 / np.sin(depression)
    assert np.allclose(view.range_m[v, 100], expected, rtol=2e-3)


@pytest.mark.parametrize('distance_m', [8.0, 15.0, 30.0])
def test_pinhole_pillar_centre_column_and_base_row(pillar_world, distance_m):
    """A pillar straight ahead at distance d: centred on cx, base row cy + fy h / d."""
    cam = KITTI_CAMERA
    front_e = PILLAR_EN[0] - 0.5
    view = render_pinhole(pillar_world, CameraPose(front_e - distance_m, CAM_EN[1], 0.0, 1.65),
                          cam)
    mask = view.label == RenderLabel.BUILDING
    cols = np.flatnonzero(mask.any(axis=0))
    assert abs(0.5 * (cols.min() + cols.max()) - cam.cx) <= 1.0
    half_width_px = cam.fx * 0.5 / distance_m
    assert abs(0.5 * (cols.max() - cols.min() + 1) - half_width_px) <= 1.5
    base_row = np.flatnonzero(mask[:, int(round(cam.cx))]).max()
    assert abs(base_row + 0.5 - (cam.cy + cam.fy * 1.65 / distance_m)) <= 2.0
    assert view.rgb.shape == (375, 1242, 3)


def test_pinhole_pillar_left_when_it_is_to_the_left(pillar_world):
    """Counter-example: turned left of the pillar's bearing (yaw > 0, towards north) the
    pillar is on the right half; turned right of it, on the left (x right in OpenCV)."""
    for yaw, right in ((0.4, True), (-0.4, False)):
        view = render_pinhole(pillar_world, CameraPose(*CAM_EN, yaw, 1.65), KITTI_CAMERA)
        cols = np.flatnonzero((view.label == RenderLabel.BUILDING).any(axis=0))
        assert cols.size > 0
        assert (cols.mean() > KITTI_CAMERA.cx) == right


@pytest.mark.parametrize('mpp, centre', [(0.25, (30.0, 30.0)), (0.1, (36.3, 27.1)),
                                         (0.6, (25.0, 35.0))])
def test_satellite_pillar_pixel(pillar_world, mpp, centre):
    crop = NorthUpCrop(160, 160, mpp, *centre)
    image = render_satellite(pillar_world, crop)
    red = image[..., 0].astype(int) - image[..., 1] > 60
    rows, cols = np.nonzero(red)
    row_exp, col_exp = crop.map_to_pixel(*PILLAR_EN)
    weights = (image[..., 0].astype(float) - image[..., 1])[rows, cols]
    assert abs(np.average(rows, weights=weights) - row_exp) <= 0.5
    assert abs(np.average(cols, weights=weights) - col_exp) <= 0.5


def test_satellite_north_is_up(pillar_world):
    """Counter-example for a flipped axis: a second box north-west of the first shows up
    above and left of it."""
    world = build_scene(60.0, 0.1, boxes=[SceneBox(PILLAR_EN, 1.0, 1.0, 20.0),
                                          SceneBox((20.0, 45.0), 2.0, 2.0, 5.0,
                                                   facade_rgb=(0.1, 0.1, 0.8),
                                                   roof_rgb=(0.1, 0.1, 0.8))])
    crop = NorthUpCrop(120, 120, 0.5, 30.0, 30.0)
    image = render_satellite(world, crop).astype(int)
    red = np.argwhere(image[..., 0] - image[..., 2] > 60).mean(axis=0)
    blue = np.argwhere(image[..., 2] - image[..., 0] > 60).mean(axis=0)
    assert blue[0] < red[0] - 20 and blue[1] < red[1] - 20


def test_tree_seen_at_its_bearing():
    """A tree 12 m north-east of a north-facing camera: right of centre, at +45 deg."""
    tree_en = (30.0 + 12 / math.sqrt(2), 30.0 + 12 / math.sqrt(2))
    world = build_scene(60.0, 0.1, trees=[SceneTree(tree_en, 2.0, 3.0, 8.0, 0.3)])
    view = render_panorama(world, CameraPose(30.0, 30.0, math.pi / 2, 2.0), H, W)
    trunk_row = H // 2 + 5  # below the horizon, under the canopy: the trunk
    cols = np.flatnonzero(view.label[trunk_row] == RenderLabel.TREE)
    assert cols.size > 0
    assert abs(cols.mean() - ((W - 1) / 2 + W / 8)) <= 1.0
    canopy_row = int(round((math.pi / 2 - math.atan2(5.5 - 2.0, 12.0)) * H / math.pi - 0.5))
    canopy = np.flatnonzero(view.label[canopy_row] == RenderLabel.TREE)
    expected_half = math.degrees(math.asin(2.0 / 12.0)) * W / 360
    assert abs(0.5 * (canopy.max() - canopy.min() + 1) - expected_half) <= 2.0
