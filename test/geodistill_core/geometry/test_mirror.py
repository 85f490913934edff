"""The east-west mirror of a cross-view pair: every BEV cell of the mirrored pair samples the
mirrored pixel of the original (pinhole and panorama), and the helpers are involutions."""
import math

import pytest
import torch

from geodistill_core.geometry import BevGrid, panorama_bev_grid, pinhole_bev_grid
from geodistill_core.geometry.mirror import mirror_images, mirror_intrinsics, mirror_yaw_rad

GRID = BevGrid(rows=33, cols=33, cell_m=0.5)  # odd: the centre column is its own mirror
KITTI_K = torch.tensor([[721.5377, 0.0, 609.5593], [0.0, 721.5377, 172.854], [0.0, 0.0, 1.0]],
                       dtype=torch.float64)
KITTI_HW = (375, 1242)
PANO_HW = (320, 640)


@pytest.mark.parametrize('yaw_deg', [90.0, 13.0, -120.0])
def test_pinhole_mirrored_pair_samples_the_mirrored_pixel_of_each_mirrored_cell(yaw_deg):
    yaw = torch.tensor([math.radians(yaw_deg)], dtype=torch.float64)
    plain = pinhole_bev_grid(GRID, yaw, 1.65, KITTI_K, KITTI_HW)
    mirrored = pinhole_bev_grid(GRID, mirror_yaw_rad(yaw), 1.65,
                                mirror_intrinsics(KITTI_K, KITTI_HW[1]), KITTI_HW)
    # the cell at (-e, n) of the mirror sees column W - 1 - u of the cell at (e, n), same row
    flipped_uv = mirror_images(mirrored.uv_px.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    flipped_valid = mirror_images(mirrored.valid)
    assert torch.equal(flipped_valid, plain.valid)
    assert plain.valid.sum() > 50  # the camera sees the ground in front of it
    v = plain.valid
    torch.testing.assert_close(KITTI_HW[1] - 1 - flipped_uv[..., 0][v], plain.uv_px[..., 0][v])
    torch.testing.assert_close(flipped_uv[..., 1][v], plain.uv_px[..., 1][v])


@pytest.mark.parametrize('yaw_deg', [90.0, 37.0, 200.0])
def test_panorama_mirrored_pair_samples_the_mirrored_column_of_each_mirrored_cell(yaw_deg):
    yaw = torch.tensor([math.radians(yaw_deg)], dtype=torch.float64)
    plain = panorama_bev_grid(GRID, yaw, 1.65, PANO_HW)
    mirrored = panorama_bev_grid(GRID, mirror_yaw_rad(yaw), 1.65, PANO_HW)
    flipped_uv = mirror_images(mirrored.uv_px.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    W = PANO_HW[1]
    # columns wrap: compare on the circle of W columns
    du = torch.remainder((W - 1 - flipped_uv[..., 0]) - plain.uv_px[..., 0], W)
    du[:, GRID.rows // 2, GRID.cols // 2] = 0.0  # the camera's own cell has no bearing
    assert torch.minimum(du, W - du).max() < 1e-6
    torch.testing.assert_close(flipped_uv[..., 1], plain.uv_px[..., 1])


def test_mirrors_are_involutions_and_keep_the_focal_lengths():
    K = KITTI_K.clone()
    K[0, 1] = 0.3
    twice = mirror_intrinsics(mirror_intrinsics(K, 1242), 1242)
    torch.testing.assert_close(twice, K)
    once = mirror_intrinsics(K, 1242)
    assert once[0, 0] == K[0, 0] and once[1, 1] == K[1, 1] and once[1, 2] == K[1, 2]
    assert once[0, 2] == pytest.approx(1241 - 609.5593) and once[0, 1] == -0.3
    assert K[0, 2] == 609.5593  # the input is not modified
    images = torch.arange(24.0).reshape(1, 2, 3, 4)
    assert torch.equal(mirror_images(mirror_images(images)), images)
    assert torch.equal(mirror_images(images)[..., 0], images[..., -1])
    yaw = torch.tensor([0.3, -2.0])
    torch.testing.assert_close(mirror_yaw_rad(mirror_yaw_rad(yaw)), yaw)
    # east becomes west, north stays north
    assert math.cos(float(mirror_yaw_rad(torch.tensor(0.0)))) == pytest.approx(-1.0)
    assert float(mirror_yaw_rad(torch.tensor(math.pi / 2))) == pytest.approx(math.pi / 2)
