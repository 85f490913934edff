"""Cross-view consistency through the project's own geometry: the ground pixels of a
rendered panorama / pinhole image, projected to a north-up BEV with geometry.bev and
correlated with the satellite render, peak at the camera's true position."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geodistill_core.data.synthetic import (
    KITTI_CAMERA,
    CameraPose,
    DomainGapConfig,
    RenderLabel,
    render_panorama,
    render_pinhole,
    render_satellite,
    sample_street_poses,
)
from geodistill_core.geometry import (
    BevGrid,
    NorthUpCrop,
    panorama_bev_grid,
    pinhole_bev_grid,
    sample_image,
)

CELL_M = 0.25
BEV_PX = 96
SAT_PX = 192


@pytest.fixture(scope='module')
def matching_world(small_world_factory):
    return small_world_factory('grid_downtown', 0, domain_gap=DomainGapConfig.disabled())


def _locate(view, grid, sat: np.ndarray, crop: NorthUpCrop, radius_m: float):
    """Best position (map frame) of the BEV of the view's ground pixels in the satellite."""
    image = torch.from_numpy(view.rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    ground = torch.from_numpy((view.label == RenderLabel.GROUND).astype(np.float32))
    bev = sample_image(image, grid)[0]
    keep = sample_image(ground[None, None], grid, mode='nearest')[0, 0]
    offsets = BevGrid(BEV_PX, BEV_PX, CELL_M).cell_offsets_en_m()
    keep = keep * (offsets.norm(dim=-1) < radius_m).float()
    n = keep.sum()
    bev = (bev - (bev * keep).sum((1, 2), keepdim=True) / n) * keep
    s = torch.from_numpy(sat.astype(np.float32) / 255).permute(2, 0, 1)[None]
    window = keep[None, None].expand(1, 3, BEV_PX, BEV_PX)
    energy = F.conv2d(s * s, window) - F.conv2d(s, window) ** 2 / (3 * n)
    score = F.conv2d(s, bev[None])[0, 0] / energy[0, 0].clamp_min(1e-6).sqrt()
    r, c = divmod(int(torch.argmax(score)), score.shape[1])
    return crop.pixel_to_map(r + (BEV_PX - 1) / 2, c + (BEV_PX - 1) / 2)


def _errors(world, render, make_grid, radius_m, n_scenes=8, seed=3):
    poses = sample_street_poses(world, n_scenes, seed=seed, yaw_mode='uniform', margin_m=25)
    rng = np.random.default_rng(seed)
    errors = []
    for i in range(n_scenes):
        pose = poses.pose(i)
        view = render(pose)
        shift = rng.uniform(-6, 6, 2)
        crop = NorthUpCrop(SAT_PX, SAT_PX, CELL_M, pose.east_m + shift[0],
                           pose.north_m + shift[1])
        sat = render_satellite(world, crop, seed=i)
        grid = make_grid(pose)
        east, north = _locate(view, grid, sat, crop, radius_m)
        errors.append(math.hypot(east - pose.east_m, north - pose.north_m))
    return np.array(errors)


def test_panorama_bev_peaks_at_the_true_position(matching_world):
    hw = (256, 512)
    errors = _errors(
        matching_world, lambda p: render_panorama(matching_world, p, *hw),
        lambda p: panorama_bev_grid(BevGrid(BEV_PX, BEV_PX, CELL_M),
                                    torch.tensor([p.yaw_rad]), p.height_m, hw),
        radius_m=12.0)
    assert np.sum(errors <= CELL_M) >= 6, errors  # the rest: along-road ambiguity
    assert np.median(errors) <= CELL_M


def test_pinhole_bev_peaks_at_the_true_position(matching_world):
    cam = KITTI_CAMERA
    K = torch.tensor(cam.K, dtype=torch.float32)

    def render(p):
        return render_pinhole(matching_world, CameraPose(p.east_m, p.north_m, p.yaw_rad, 1.65),
                              cam)

    errors = _errors(
        matching_world, render,
        lambda p: pinhole_bev_grid(BevGrid(BEV_PX, BEV_PX, CELL_M), torch.tensor([p.yaw_rad]),
                                   1.65, K, (cam.height_px, cam.width_px)),
        radius_m=12.0, seed=4)
    assert np.sum(errors <= CELL_M) >= 5, errors
    assert np.median(errors) <= CELL_M
