"""Tests for VIGOR split lines, file names and offset conventions."""
import numpy as np
import pytest
import torch

from geodistill_core.data.vigor_labels import (
    VIGOR_METERS_PER_PX_640,
    VigorSatOffset,
    east_north_m_to_vigor_offset,
    parse_vigor_pano_name,
    parse_vigor_sat_name,
    parse_vigor_split_line,
    pixel_index_to_vigor_offset,
    vigor_meters_per_px,
    vigor_offset_to_east_north_m,
    vigor_offset_to_pixel_index,
)
from geodistill_core.geodesy import LocalEnu

# Two real lines of VIGOR's corrected labels, Chicago/same_area_balanced_test__corrected.txt
# (github.com/tudelft-iv/SliceMatch, VIGOR_corrected_labels/splits__corrected).
CHICAGO_LINES = (
    'L-1poX8YZAmBZVLMqBu-4w,41.877949,-87.689396,.jpg '
    'satellite_41.877971796211014_-87.68943505304125.png 23.0 -29.0 '
    'satellite_41.877971796211014_-87.68899446364951.png 20.0 300.0 '
    'satellite_41.877643723758375_-87.68943505304125.png -304.0 -32.0 '
    'satellite_41.877643723758375_-87.68899446364951.png -307.0 297.0',
    'fdbS6SU2YFJSxwxwbNI0CQ,41.882558,-87.686052,.jpg '
    'satellite_41.88256481054794_-87.68591033790726.png 6.0 106.0 '
    'satellite_41.88256481054794_-87.68635092729902.png 9.0 -223.0 '
    'satellite_41.8822367380953_-87.68591033790726.png -321.0 103.0 '
    'satellite_41.8822367380953_-87.68635092729902.png -319.0 -225.0',
)


def test_parse_split_line():
    line = parse_vigor_split_line(CHICAGO_LINES[0] + '\n')
    assert line.pano_name == 'L-1poX8YZAmBZVLMqBu-4w,41.877949,-87.689396,.jpg'
    assert line.positive == VigorSatOffset(
        'satellite_41.877971796211014_-87.68943505304125.png', 23.0, -29.0)
    assert len(line.semi_positives) == 3
    assert [(s.dr_px, s.dc_px) for s in line.semi_positives] == [
        (20.0, 300.0), (-304.0, -32.0), (-307.0, 297.0)]


def test_split_line_errors():
    tokens = CHICAGO_LINES[0].split()
    with pytest.raises(ValueError, match='13 tokens, got 12'):
        parse_vigor_split_line(' '.join(tokens[:-1]))
    shifted = [tokens[0]] + tokens[2:4] + [tokens[1]] + tokens[4:]  # offsets before the name
    with pytest.raises(ValueError, match='satellite'):
        parse_vigor_split_line(' '.join(shifted))
    bad = tokens.copy()
    bad[3] = 'west'
    with pytest.raises(ValueError, match="dc 'west'"):
        parse_vigor_split_line(' '.join(bad))


@pytest.mark.parametrize('text', CHICAGO_LINES)
def test_offsets_agree_with_file_name_coordinates(text):
    """Independent check of the sign convention: ENU of the pano from the tile centre."""
    line = parse_vigor_split_line(text)
    pano = parse_vigor_pano_name(line.pano_name)
    mpp = VIGOR_METERS_PER_PX_640['Chicago']
    # Positive: rounding of the labels (0.5 px) and of the pano coordinates (1e-6 deg).
    # Semi-positives (up to ~35 m away): their labels are ~3 px less consistent.
    tolerances_m = (0.1, 0.5, 0.5, 0.5)
    for sat_offset, tol_m in zip((line.positive, *line.semi_positives), tolerances_m, strict=True):
        sat = parse_vigor_sat_name(sat_offset.sat_name)
        east_ref, north_ref, _ = LocalEnu(sat.lat_deg, sat.lon_deg).to_enu(
            pano.lat_deg, pano.lon_deg)
        east, north = vigor_offset_to_east_north_m(sat_offset.dr_px, sat_offset.dc_px, mpp)
        assert abs(east - east_ref) < tol_m and abs(north - north_ref) < tol_m


def test_offset_direction_pin():
    mpp = VIGOR_METERS_PER_PX_640['NewYork']
    east, north = vigor_offset_to_east_north_m(10.0, 20.0, mpp)
    assert north < 0 and east < 0  # dr > 0 south, dc > 0 west: south-west
    assert north == pytest.approx(-10 * mpp) and east == pytest.approx(-20 * mpp)
    assert not (north > 0 and east > 0)  # counter-example: not north-east
    assert (east, north) != pytest.approx((-10 * mpp, -20 * mpp))  # and not row/col swapped
    dr, dc = east_north_m_to_vigor_offset(east, north, mpp)
    assert (dr, dc) == pytest.approx((10.0, 20.0))


def test_offset_helpers_vectorise_over_numpy_and_torch():
    dr, dc = np.array([10.0, -5.0]), np.array([20.0, 7.0])
    east, north = vigor_offset_to_east_north_m(dr, dc, 0.1)
    np.testing.assert_allclose(east, [-2.0, -0.7])
    np.testing.assert_allclose(north, [-1.0, 0.5])
    east_t, north_t = vigor_offset_to_east_north_m(torch.tensor(dr), torch.tensor(dc), 0.1)
    np.testing.assert_allclose(east_t.numpy(), east)
    np.testing.assert_allclose(north_t.numpy(), north)


def test_pixel_index_convention_and_round_trip():
    # The centre of a 640-px tile is index 319.5; VIGOR's continuous 320 + dr is index +0.5.
    assert vigor_offset_to_pixel_index(0.0, 0.0) == (319.5, 319.5)
    row, col = vigor_offset_to_pixel_index(10.0, 20.0)
    assert (row, col) == (319.5 + 10.0, 319.5 - 20.0)  # south = larger row, west = smaller col
    assert (row, col) == (320 + 10.0 - 0.5, 320 - 20.0 - 0.5)
    # Rescaled tile: the south-east border of 640 (dr=320, dc=-320) is the border of 320.
    assert vigor_offset_to_pixel_index(320.0, -320.0, tile_size_px=320) == (319.5, 319.5)
    rng = np.random.default_rng(0)
    dr, dc = rng.uniform(-320, 320, (2, 50))
    for size in (640, 512, 320):
        back = pixel_index_to_vigor_offset(*vigor_offset_to_pixel_index(dr, dc, size), size)
        np.testing.assert_allclose(back, (dr, dc), atol=1e-9)


def test_meters_per_px_table_and_rescale():
    assert dict(VIGOR_METERS_PER_PX_640) == {
        'NewYork': 0.113248, 'Seattle': 0.100817, 'SanFrancisco': 0.118141,
        'Chicago': 0.111262}
    assert vigor_meters_per_px('Chicago') == 0.111262
    assert vigor_meters_per_px('Chicago', 512) == pytest.approx(0.111262 * 1.25)
    assert vigor_meters_per_px('Seattle', 320) == pytest.approx(0.201634)
    with pytest.raises(ValueError, match='unknown VIGOR city'):
        vigor_meters_per_px('Boston')
    with pytest.raises(TypeError):
        VIGOR_METERS_PER_PX_640['Boston'] = 0.1


def test_parse_pano_name():
    pano = parse_vigor_pano_name(
        'Chicago/panorama/L-1poX8YZAmBZVLMqBu-4w,41.877949,-87.689396,.jpg')
    assert pano.file_name == 'L-1poX8YZAmBZVLMqBu-4w,41.877949,-87.689396,.jpg'
    assert pano.pano_id == 'L-1poX8YZAmBZVLMqBu-4w'
    assert (pano.lat_deg, pano.lon_deg) == (41.877949, -87.689396)


@pytest.mark.parametrize(('name', 'message'), [
    ('abc.jpg', 'panorama name'), ('x,1.0,2.0.jpg', 'panorama name'),
    (',1.0,2.0,.jpg', 'panorama name'), ('x,north,2.0,.jpg', "latitude 'north'")])
def test_parse_pano_name_errors(name, message):
    with pytest.raises(ValueError, match=message):
        parse_vigor_pano_name(name)


def test_parse_sat_name():
    sat = parse_vigor_sat_name('satellite/satellite_41.877971796211014_-87.68943505304125.png')
    assert sat.file_name == 'satellite_41.877971796211014_-87.68943505304125.png'
    assert (sat.lat_deg, sat.lon_deg) == (41.877971796211014, -87.68943505304125)


@pytest.mark.parametrize(('name', 'message'), [
    ('satellite_41.8_-87.6.jpg', 'satellite name'), ('sat_41.8_-87.6.png', 'satellite name'),
    ('satellite_41.8.png', 'satellite name'), ('satellite_x_-87.6.png', "latitude 'x'")])
def test_parse_sat_name_errors(name, message):
    with pytest.raises(ValueError, match=message):
        parse_vigor_sat_name(name)
