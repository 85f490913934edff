"""Camera models: panorama azimuth/elevation convention and pinhole vs OpenCV."""
import math

import cv2
import numpy as np
import pytest
import torch

from geodistill_core.geometry import (
    panorama_azimuth_from_column,
    panorama_column_from_azimuth,
    panorama_elevation_from_row,
    panorama_row_from_elevation,
    project_pinhole,
    scale_intrinsics,
)

W, H = 640, 320


def test_forward_is_centre_column_and_right_is_clockwise():
    u = panorama_column_from_azimuth(torch.tensor([0.0, math.pi / 2, -math.pi / 2]), W)
    assert u[0].item() == pytest.approx((W - 1) / 2)
    # 90 deg clockwise (to the right) is a quarter turn to the right of the centre ...
    assert u[1].item() == pytest.approx((W - 1) / 2 + W / 4)
    # ... and the counter-example: it is not to the left.
    assert u[2].item() == pytest.approx((W - 1) / 2 - W / 4)
    assert u[1] > u[0] > u[2]


def test_behind_wraps_to_the_edges():
    u = panorama_column_from_azimuth(torch.tensor([math.pi - 1e-6, -math.pi + 1e-6]), W)
    assert u[0].item() == pytest.approx(W - 0.5, abs=1e-3)
    assert u[1].item() == pytest.approx(-0.5, abs=1e-3)


def test_azimuth_column_round_trip():
    phi = torch.linspace(-math.pi + 1e-3, math.pi - 1e-3, 101, dtype=torch.float64)
    back = panorama_azimuth_from_column(panorama_column_from_azimuth(phi, W), W)
    torch.testing.assert_close(back, phi)


def test_horizon_row_and_up_down():
    v = panorama_row_from_elevation(torch.tensor([0.0, math.pi / 2, -math.pi / 2]), H)
    assert v[0].item() == pytest.approx((H - 1) / 2)  # horizon between H/2-1 and H/2
    assert v[1].item() == pytest.approx(-0.5)  # zenith at the top edge
    assert v[2].item() == pytest.approx(H - 0.5)  # nadir at the bottom edge
    theta = torch.linspace(-1.5, 1.5, 31, dtype=torch.float64)
    torch.testing.assert_close(panorama_elevation_from_row(
        panorama_row_from_elevation(theta, H), H), theta)


def test_pinhole_projection_matches_opencv():
    rng = np.random.default_rng(0)
    K = np.array([[721.5377, 0.0, 609.5593], [0.0, 721.5377, 172.854], [0.0, 0.0, 1.0]])
    pts = np.stack([rng.uniform(-20, 20, 200), rng.uniform(-3, 3, 200),
                    rng.uniform(1, 60, 200)], axis=1)
    expected, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K, None)
    uv, in_front = project_pinhole(torch.from_numpy(pts)[None], torch.from_numpy(K)[None])
    assert in_front.all()
    np.testing.assert_allclose(uv[0].numpy(), expected[:, 0, :], atol=1e-6)


def test_pinhole_flags_points_behind():
    K = torch.eye(3, dtype=torch.float64)[None]
    _, in_front = project_pinhole(torch.tensor([[[0.0, 0.0, -1.0], [0.0, 0.0, 2.0]]],
                                               dtype=torch.float64), K)
    assert in_front.tolist() == [[False, True]]


def test_scale_intrinsics_agrees_with_cv2_resize():
    """A bright pixel at (u, v) lands where the scaled K says after cv2.resize."""
    K = torch.tensor([[721.5377, 0.0, 609.5593], [0.0, 721.5377, 172.854], [0, 0, 1.0]],
                     dtype=torch.float64)
    K2 = scale_intrinsics(K, (375, 1242), (256, 1024))
    assert K2[0, 0].item() == pytest.approx(721.5377 * 1024 / 1242)
    assert K2[1, 1].item() == pytest.approx(721.5377 * 256 / 375)
    # The principal point follows the pixel-centre convention of cv2.resize.
    img = np.zeros((375, 1242), np.float64)
    img[100:110, 600:620] = 1.0  # blob centred at (609.5, 104.5)
    small = cv2.resize(img, (1024, 256), interpolation=cv2.INTER_AREA)
    vs, us = np.nonzero(small > 0)
    wts = small[vs, us]
    centre_small = (np.sum(us * wts) / wts.sum(), np.sum(vs * wts) / wts.sum())
    K_point = torch.tensor([[609.5, 0, 609.5], [0, 104.5, 104.5], [0, 0, 1.0]],
                           dtype=torch.float64)  # abuse cx/cy columns to map two points
    mapped = scale_intrinsics(K_point, (375, 1242), (256, 1024))
    assert centre_small[0] == pytest.approx(mapped[0, 2].item(), abs=0.02)
    assert centre_small[1] == pytest.approx(mapped[1, 2].item(), abs=0.02)


def test_scale_intrinsics_rejects_bad_shape():
    with pytest.raises(ValueError, match=r'\(\.\.\., 3, 3\)'):
        scale_intrinsics(torch.eye(4), (1, 1), (2, 2))
