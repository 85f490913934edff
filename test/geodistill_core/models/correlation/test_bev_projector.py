"""BEV template sizes, satellite cell sizes and the projection of ground features."""
import math

import pytest
import torch

from geodistill_core.geometry import BevGrid
from geodistill_core.models.correlation import (
    ground_sampling_grid,
    project_to_bev,
    satellite_cell_m,
    template_shape,
)


@pytest.mark.parametrize('feature_hw, fraction, expected', [
    ((64, 64), 0.4, (25, 25)),     # VIGOR 512 px at 1/8: 25.6 -> 25
    ((256, 256), 0.4, (103, 103)),  # ... at 1/2: 102.4 -> 103
    ((32, 48), 0.4, (13, 19)),
    ((8, 8), 1.0, (7, 7)),          # never larger than the map
    ((5, 5), 1.0, (5, 5)),
    ((4, 4), 0.1, (1, 1)),
])
def test_template_shape_is_the_nearest_odd_size(feature_hw, fraction, expected):
    assert template_shape(feature_hw, fraction) == expected


@pytest.mark.parametrize('fraction', [0.0, -0.1, 1.5])
def test_template_fraction_out_of_range_is_refused(fraction):
    with pytest.raises(ValueError, match=str(fraction)):
        template_shape((8, 8), fraction)


def test_satellite_cell_is_derived_from_the_sizes_actually_used():
    # VIGOR: 640 px at 0.113248 m resized to 512 px, features at 1/8 and 1/2
    mpp_512 = 0.113248 * 640 / 512
    assert satellite_cell_m((512, 512), (64, 64), mpp_512) == pytest.approx(0.113248 * 10)
    assert satellite_cell_m((512, 512), (256, 256), mpp_512) == pytest.approx(0.113248 * 2.5)
    # a feature map not at an integer stride still gets the exact cell size
    assert satellite_cell_m((518, 518), (37, 37), 0.2) == pytest.approx(0.2 * 14)
    assert satellite_cell_m((64, 96), (8, 12), 0.5) == pytest.approx(4.0)


def test_non_square_cells_and_bad_resolution_are_refused():
    with pytest.raises(ValueError, match=r'64x96 px with a 8x8 feature map'):
        satellite_cell_m((64, 96), (8, 8), 0.5)
    with pytest.raises(ValueError, match='must be > 0'):
        satellite_cell_m((64, 64), (8, 8), 0.0)


def test_hidden_columns_zero_the_bev_features_confidence_and_validity():
    H, W = 16, 64
    grid = BevGrid(9, 9, 1.0)
    yaw = torch.tensor([math.pi / 2, 0.3])
    sampling = ground_sampling_grid('panorama', grid, yaw, 2.0, (H, W))
    features = torch.rand(2, 4, H // 2, W // 2) + 0.5  # strictly positive everywhere
    confidence = torch.rand(2, 1, H // 2, W // 2) * 0.5 + 0.25
    visible = torch.ones(2, W, dtype=torch.bool)
    visible[:, 40:60] = False
    full = project_to_bev(features, confidence, sampling)
    masked = project_to_bev(features, confidence, sampling, visible)
    hidden = full.valid & ~masked.valid
    assert hidden.sum() > 10  # the mask removes cells ...
    assert masked.valid.sum() > 10  # ... but not all of them
    assert (masked.features.permute(0, 2, 3, 1)[hidden] == 0).all()
    assert (masked.confidence[:, 0][hidden] == 0).all()
    assert (full.features.permute(0, 2, 3, 1)[hidden] > 0).all()  # counter-example
    kept = masked.valid
    assert torch.equal(masked.features.permute(0, 2, 3, 1)[kept],
                       full.features.permute(0, 2, 3, 1)[kept])
    assert masked.weighted().shape == (2, 4, 9, 9)


def test_pinhole_template_is_valid_only_in_front_of_the_camera():
    grid = BevGrid(7, 7, 1.0)
    K = torch.tensor([[20.0, 0, 31.5], [0, 20.0, 15.5], [0, 0, 1]])
    north = torch.tensor([math.pi / 2])
    sampling = ground_sampling_grid('pinhole', grid, north, 1.65, (32, 64), K)
    bev = project_to_bev(torch.ones(1, 2, 32, 64), torch.ones(1, 1, 32, 64), sampling)
    assert not bev.valid[0, 3:].any()  # the camera row and everything south of it
    assert bev.valid[0, 0, 3]  # 3 m straight ahead (north): row 15.5 + 20 * 1.65 / 3 = 26.5
    assert not bev.valid[0, 1, 3]  # 2 m ahead: row 32.0, below the image
    assert (bev.features[0, :, ~bev.valid[0]] == 0).all()


def test_sampling_grid_errors():
    grid = BevGrid(3, 3, 1.0)
    yaw = torch.zeros(1)
    with pytest.raises(ValueError, match='needs intrinsics K'):
        ground_sampling_grid('pinhole', grid, yaw, 1.65, (8, 8))
    with pytest.raises(ValueError, match="'fisheye'"):
        ground_sampling_grid('fisheye', grid, yaw, 1.65, (8, 8))
    sampling = ground_sampling_grid('panorama', grid, yaw, 2.0, (8, 16))
    with pytest.raises(ValueError, match=r'\(1, 1, 8\)'):
        project_to_bev(torch.ones(1, 2, 8, 16), torch.ones(1, 1, 8), sampling)
