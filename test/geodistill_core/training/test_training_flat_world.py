"""The procedural flat world: rendering follows the geometry conventions (pinned), items
follow the VIGOR reader's keys, randomness is seeded."""
import math

import pytest
import torch

from geodistill_core.geometry import BevGrid, panorama_bev_grid, sample_image
from geodistill_core.training.flat_world import FlatWorldDataset


def blob_world(ds, east_m, north_m, camera_rc):
    world = torch.zeros_like(ds.world)
    r = camera_rc[0] - north_m / ds.sat_meters_per_px
    c = camera_rc[1] + east_m / ds.sat_meters_per_px
    world[0, int(r) - 3:int(r) + 4, int(c) - 3:int(c) + 4] = 1.0
    ds.world = world


@pytest.mark.parametrize('east_m, north_m, expected_col_fraction', [
    (0.0, 8.0, 0.5), (8.0, 0.0, 0.75), (-8.0, 0.0, 0.25)])
def test_north_aligned_panorama_sees_north_in_the_centre_and_east_to_the_right(
        east_m, north_m, expected_col_fraction):
    ds = FlatWorldDataset('train', size=1, ground_hw=(64, 128), sat_size=64)
    camera = (256.0, 256.0)
    blob_world(ds, east_m, north_m, camera)
    pano = ds.render_panorama(camera, math.pi / 2)
    col = int(pano[0].sum(dim=0).argmax())
    assert col / 128 == pytest.approx(expected_col_fraction, abs=0.03)
    assert pano[0, :32].max() < 0.95  # the blob lies below the horizon


def test_spherical_bev_projection_of_a_rendering_gives_back_the_ground():
    """What the correlation estimator does (panorama_bev_grid) inverts the rendering."""
    ds = FlatWorldDataset('train', size=1, ground_hw=(128, 256), sat_size=64)
    camera = (200.0, 300.0)
    pano = ds.render_panorama(camera, math.pi / 2)[None]
    grid = BevGrid(21, 21, ds.sat_meters_per_px)
    errors = {}
    for yaw in (math.pi / 2, 0.0):
        sampling = panorama_bev_grid(grid, torch.tensor([yaw]), 2.0, (128, 256))
        bev = sample_image(pano, sampling)[0]
        truth = ds.world[:, 190:211, 290:311]
        ring = sampling.valid[0]
        errors[yaw] = (bev - truth).abs()[:, ring].mean().item()
    assert errors[math.pi / 2] < 0.005  # a one-pixel shift gives 0.013
    assert errors[0.0] > 3 * errors[math.pi / 2]  # counter-example: the wrong yaw


def test_items_keys_offsets_and_seeding():
    ds = FlatWorldDataset('train', size=4, ground_hw=(16, 32), sat_size=32, yaw_noise_deg=20)
    item = ds[1]
    assert set(item) >= {'ground', 'satellite', 'sat_meters_per_px', 'camera_height_m',
                         'yaw_rad', 'yaw_prior_rad', 'yaw_noise_rad', 'eval_true_offset_en_m'}
    assert item['ground'].shape == (3, 16, 32) and item['satellite'].shape == (3, 32, 32)
    quarter = 32 * 0.5 / 4
    assert item['eval_true_offset_en_m'].abs().max() <= quarter
    assert item['yaw_noise_rad'].abs() <= math.radians(20)
    assert item['yaw_rad'] == pytest.approx(item['yaw_prior_rad'] - item['yaw_noise_rad'])
    again = FlatWorldDataset('train', size=4, ground_hw=(16, 32), sat_size=32,
                             yaw_noise_deg=20)[1]
    assert torch.equal(item['ground'], again['ground'])
    other = FlatWorldDataset('val', size=4, ground_hw=(16, 32), sat_size=32)[1]
    assert not torch.equal(item['satellite'], other['satellite'])
    assert len(ds.sampling_layout()) == 4
