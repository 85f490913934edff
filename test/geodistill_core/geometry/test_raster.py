"""North-up raster convention: row grows south, column grows east, centre (n-1)/2."""
import numpy as np
import pytest

from geodistill_core.geometry import NorthUpCrop


def test_centre_and_axes():
    crop = NorthUpCrop(rows=640, cols=640, meters_per_px=0.1, centre_east_m=100.0,
                       centre_north_m=-50.0)
    assert crop.pixel_to_map(319.5, 319.5) == pytest.approx((100.0, -50.0))
    # One pixel down (row + 1) is south, one pixel right (col + 1) is east.
    e, n = crop.pixel_to_map(320.5, 320.5)
    assert e == pytest.approx(100.1) and n == pytest.approx(-50.1)
    # Counter-example: row 0 is the NORTH edge, not the south.
    _, n_top = crop.pixel_to_map(0.0, 319.5)
    assert n_top > -50.0


def test_round_trip_vectorised():
    crop = NorthUpCrop(rows=300, cols=200, meters_per_px=0.19583, centre_east_m=3.0,
                       centre_north_m=7.0)
    rng = np.random.default_rng(1)
    r, c = rng.uniform(-5, 305, 100), rng.uniform(-5, 205, 100)
    r2, c2 = crop.map_to_pixel(*crop.pixel_to_map(r, c))
    np.testing.assert_allclose(r2, r, atol=1e-9)
    np.testing.assert_allclose(c2, c, atol=1e-9)


def test_resized_keeps_footprint():
    crop = NorthUpCrop(640, 640, 0.1)
    small = crop.resized(512, 512)
    assert small.meters_per_px == pytest.approx(0.125)
    # The corners' outer edges coincide: edge of pixel 0 is at -0.5.
    assert crop.pixel_to_map(-0.5, -0.5) == pytest.approx(small.pixel_to_map(-0.5, -0.5))
    with pytest.raises(ValueError, match='non-square'):
        crop.resized(512, 256)


def test_rejects_invalid():
    with pytest.raises(ValueError):
        NorthUpCrop(0, 10, 0.1)
    with pytest.raises(ValueError):
        NorthUpCrop(10, 10, 0.0)
