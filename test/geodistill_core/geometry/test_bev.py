"""Ground-plane projections: analytic cells and pixels, pins, gradients, device/dtype."""
import math

import pytest
import torch

from geodistill_core.geometry import (
    BevGrid,
    downward_view_grid,
    panorama_bev_grid,
    pinhole_bev_grid,
    sample_image,
)

PANO_HW = (320, 640)
KITTI_K = torch.tensor([[721.5377, 0.0, 609.5593], [0.0, 721.5377, 172.854], [0.0, 0.0, 1.0]],
                       dtype=torch.float64)
KITTI_HW = (375, 1242)


def cell_of(grid: BevGrid, east_m: float, north_m: float) -> tuple[int, int]:
    """Hand-derived cell: row grows south, column grows east, centre (n - 1) / 2."""
    row = (grid.rows - 1) / 2 - north_m / grid.cell_m
    col = (grid.cols - 1) / 2 + east_m / grid.cell_m
    assert row == int(row) and col == int(col), 'choose a point on a cell centre'
    return int(row), int(col)


@pytest.mark.parametrize('bearing_deg, distance_m, yaw_deg', [
    (90.0, 8.0, 90.0),   # due north of a north-facing camera: straight ahead
    (0.0, 8.0, 90.0),    # due east of a north-facing camera: 90 deg to the right
    (180.0, 4.0, 90.0),  # due west: 90 deg to the left
    (0.0, 6.0, 0.0),     # due east of an east-facing camera: straight ahead
    (-90.0, 10.0, 30.0),  # due south of a camera facing 30 deg north of east
])
def test_ground_point_lands_in_hand_computed_cell_and_pixel(bearing_deg, distance_m, yaw_deg):
    grid = BevGrid(rows=41, cols=41, cell_m=0.5)
    h = 2.0
    alpha = math.radians(bearing_deg)
    east, north = distance_m * math.cos(alpha), distance_m * math.sin(alpha)
    east, north = round(east * 2) / 2, round(north * 2) / 2  # snap to the 0.5 m lattice
    row, col = cell_of(grid, east, north)
    yaw = torch.tensor([math.radians(yaw_deg)], dtype=torch.float64)
    g = panorama_bev_grid(grid, yaw, h, PANO_HW)
    H, W = PANO_HW
    phi = math.radians(yaw_deg) - math.atan2(north, east)
    phi = (phi + math.pi) % (2 * math.pi) - math.pi
    u_expected = (W - 1) / 2 + phi * W / (2 * math.pi)
    v_expected = (H - 1) / 2 + math.atan2(h, math.hypot(east, north)) * H / math.pi
    u, v = g.uv_px[0, row, col].tolist()
    assert u == pytest.approx(u_expected, abs=1e-9)
    assert v == pytest.approx(v_expected, abs=1e-9)
    assert g.valid[0, row, col]


def test_panorama_blob_projects_back_to_its_cell():
    """End to end: a bright spot painted at the predicted pixel peaks in the right cell."""
    grid = BevGrid(rows=41, cols=41, cell_m=0.5)
    yaw = torch.tensor([math.pi / 2])
    east, north = 5.0, 3.0
    H, W = PANO_HW
    phi = math.pi / 2 - math.atan2(north, east)
    u = round((W - 1) / 2 + phi * W / (2 * math.pi))
    v = round((H - 1) / 2 + math.atan2(2.0, math.hypot(east, north)) * H / math.pi)
    pano = torch.zeros(1, 1, H, W)
    pano[0, 0, v - 1:v + 2, u - 1:u + 2] = 1.0
    bev = sample_image(pano, panorama_bev_grid(grid, yaw, 2.0, PANO_HW))
    peak = torch.nonzero(bev[0, 0] == bev[0, 0].max())[0].tolist()
    assert peak == list(cell_of(grid, east, north))


def test_north_in_a_north_aligned_panorama_is_the_centre_column():
    """VIGOR panoramas are north-aligned: yaw = +90 deg puts north at the centre column."""
    grid = BevGrid(rows=21, cols=21, cell_m=1.0)
    g = panorama_bev_grid(grid, torch.tensor([math.pi / 2]), 2.0, PANO_HW)
    W = PANO_HW[1]
    north_u = g.uv_px[0, cell_of(grid, 0.0, 8.0)[0], 10, 0].item()
    east_u = g.uv_px[0, 10, cell_of(grid, 8.0, 0.0)[1], 0].item()
    assert north_u == pytest.approx((W - 1) / 2)
    assert east_u == pytest.approx((W - 1) / 2 + W / 4)  # east on the right ...
    assert east_u != pytest.approx((W - 1) / 2 - W / 4)  # ... not on the left (mirror)


def test_pinhole_ipm_hand_computed_pixel():
    grid = BevGrid(rows=81, cols=81, cell_m=0.5)
    h = 1.65
    for yaw_deg in (0.0, 90.0, 180.0, -90.0):
        yaw = math.radians(yaw_deg)
        forward, right = 10.0, 2.0
        east = forward * math.cos(yaw) + right * math.sin(yaw)
        north = forward * math.sin(yaw) - right * math.cos(yaw)
        row = (grid.rows - 1) / 2 - north / grid.cell_m
        col = (grid.cols - 1) / 2 + east / grid.cell_m
        r, c = round(row), round(col)
        assert abs(r - row) < 1e-9 and abs(c - col) < 1e-9
        g = pinhole_bev_grid(grid, torch.tensor([yaw], dtype=torch.float64), h, KITTI_K,
                             KITTI_HW)
        fx, cx, fy, cy = 721.5377, 609.5593, 721.5377, 172.854
        u, v = g.uv_px[0, r, c].tolist()
        assert u == pytest.approx(cx + fx * right / forward, abs=1e-6)
        assert v == pytest.approx(cy + fy * h / forward, abs=1e-6)
        assert g.valid[0, r, c]


def test_pinhole_validity_behind_and_outside():
    grid = BevGrid(rows=81, cols=81, cell_m=0.5)
    g = pinhole_bev_grid(grid, torch.tensor([0.0]), 1.65, KITTI_K.float(), KITTI_HW)
    centre = 40
    assert not g.valid[0, centre, centre - 10]   # 5 m behind an east-facing camera
    assert g.valid[0, centre, centre + 20]        # 10 m ahead
    assert not g.valid[0, 0, centre + 2]          # far left of a narrow view: outside
    assert not g.valid[0, centre, centre]         # under the camera: not in view


def test_downward_view_grid_extent():
    grid = downward_view_grid(512, 2.0)
    assert grid.rows == grid.cols == 512
    assert grid.cell_m * 512 == pytest.approx(2 * 2.0 * math.tan(math.radians(85.0)))
    with pytest.raises(ValueError):
        downward_view_grid(512, 2.0, fov_deg=180.0)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_follows_dtype_and_device(dtype):
    grid = BevGrid(8, 8, 1.0)
    yaw = torch.zeros(3, dtype=dtype)
    g = panorama_bev_grid(grid, yaw, torch.full((3,), 2.0, dtype=dtype), PANO_HW)
    assert g.uv_px.dtype == dtype and g.uv_px.shape == (3, 8, 8, 2)
    assert g.valid.shape == (3, 8, 8)
    p = pinhole_bev_grid(grid, yaw, 1.65, KITTI_K, KITTI_HW)
    assert p.uv_px.dtype == dtype and p.uv_px.device == yaw.device
    out = sample_image(torch.rand(3, 5, 32, 64, dtype=dtype), g)
    assert out.shape == (3, 5, 8, 8) and out.dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    grid = BevGrid(16, 16, 0.5)
    yaw = torch.tensor([0.3, -1.2])
    pano = torch.rand(2, 4, 32, 64)
    cpu = sample_image(pano, panorama_bev_grid(grid, yaw, 2.0, (32, 64)))
    gpu = sample_image(pano.cuda(), panorama_bev_grid(grid, yaw.cuda(), 2.0, (32, 64)))
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=1e-5)


def test_rejects_bad_yaw_shape():
    with pytest.raises(ValueError, match='yaw_rad must be a'):
        panorama_bev_grid(BevGrid(4, 4, 1.0), torch.tensor(0.0), 2.0, PANO_HW)


def test_gradcheck_panorama_projection():
    grid = BevGrid(5, 5, 0.7)
    pano = torch.rand(1, 2, 8, 16, dtype=torch.float64, requires_grad=True)
    yaw = torch.tensor([0.37], dtype=torch.float64, requires_grad=True)
    height = torch.tensor([1.9], dtype=torch.float64, requires_grad=True)

    def f(p, y, h):
        return sample_image(p, panorama_bev_grid(grid, y, h, (8, 16)))

    assert torch.autograd.gradcheck(f, (pano, yaw, height), eps=1e-6, atol=1e-5)


def test_gradcheck_pinhole_projection():
    grid = BevGrid(5, 5, 1.0)
    K = torch.tensor([[[20.0, 0, 15.5], [0, 20.0, 5.5], [0, 0, 1]]], dtype=torch.float64)
    img = torch.rand(1, 2, 12, 32, dtype=torch.float64, requires_grad=True)
    yaw = torch.tensor([0.1], dtype=torch.float64, requires_grad=True)
    height = torch.tensor([1.65], dtype=torch.float64, requires_grad=True)

    def f(i, y, h):
        return sample_image(i, pinhole_bev_grid(grid, y, h, K, (12, 32)))

    assert torch.autograd.gradcheck(f, (img, yaw, height), eps=1e-6, atol=1e-5)
