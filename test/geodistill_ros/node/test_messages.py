"""Message conversions on hand-built messages: every encoding, round trips, layout pins."""
import math

import cv2
from geometry_msgs.msg import Quaternion
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image, NavSatFix, NavSatStatus

from geodistill_ros.node.fix_buffer import FixRejection
from geodistill_ros.node.messages import (
    SUPPORTED_IMAGE_ENCODINGS,
    ImageDecodeError,
    QuaternionError,
    heatmap_to_occupancy_grid,
    image_msg_to_rgb,
    navsatfix_msg,
    navsatfix_to_fix,
    ns_to_stamp,
    pose_with_covariance_msg,
    quaternion_from_yaw,
    rgb_to_compressed_image_msg,
    rgb_to_image_msg,
    stamp_to_ns,
    yaw_from_quaternion,
)

KITTI_NS = 1317046945_123456789
RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(6, 9, 3), dtype=np.uint8)


def raw_msg(pixels: np.ndarray, encoding: str, step_pad: int = 0, bigendian=False) -> Image:
    h, w = pixels.shape[:2]
    row = pixels.reshape(h, -1).view(np.uint8).reshape(h, -1)
    padded = np.concatenate([row, np.full((h, step_pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian),
                step=padded.shape[1])
    msg.data = padded.tobytes()
    return msg


# --- raw images ---------------------------------------------------------------------------

@pytest.mark.parametrize('encoding, make', [
    ('rgb8', lambda rgb: rgb),
    ('bgr8', lambda rgb: rgb[..., ::-1]),
    ('rgba8', lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])),
    ('bgra8', lambda rgb: np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 77, np.uint8)])),
    ('rgb16', lambda rgb: rgb.astype('<u2') * 257),
    ('bgr16', lambda rgb: rgb[..., ::-1].astype('<u2') * 257),
    ('rgba16', lambda rgb: np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)]).astype('<u2')
     * 257),
    ('bgra16', lambda rgb: np.dstack([rgb[..., ::-1], np.zeros(rgb.shape[:2], np.uint8)])
     .astype('<u2') * 257),
])
def test_colour_encodings_decode_to_rgb(encoding, make):
    pixels = np.ascontiguousarray(make(RGB))
    out = image_msg_to_rgb(raw_msg(pixels, encoding))
    assert out.shape == RGB.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, RGB)


def test_mono_encodings_replicate_grey():
    grey = RGB[..., 0]
    np.testing.assert_array_equal(image_msg_to_rgb(raw_msg(grey, 'mono8')),
                                  np.dstack([grey] * 3))
    out16 = image_msg_to_rgb(raw_msg(grey.astype('<u2') * 257, 'mono16'))
    np.testing.assert_array_equal(out16, np.dstack([grey] * 3))


def test_big_endian_16_bit_and_padded_rows():
    big = (RGB.astype(np.uint16) * 257).astype('>u2')
    np.testing.assert_array_equal(image_msg_to_rgb(raw_msg(big, 'rgb16', bigendian=True)), RGB)
    np.testing.assert_array_equal(image_msg_to_rgb(raw_msg(RGB, 'rgb8', step_pad=5)), RGB)
    high_byte_only = RGB.astype('<u2') << 8  # asymmetric bytes: the flag must matter
    little = image_msg_to_rgb(raw_msg(high_byte_only, 'rgb16'))
    misread = image_msg_to_rgb(raw_msg(high_byte_only, 'rgb16', bigendian=True))
    assert np.abs(little.astype(int) - RGB).max() <= 1 and misread.max() == 0


@pytest.mark.parametrize('encoding, layout', [
    ('bayer_rggb8', 'RGGB'), ('bayer_bggr8', 'BGGR'),
    ('bayer_gbrg8', 'GBRG'), ('bayer_grbg8', 'GRBG')])
def test_bayer_encodings_demosaic_a_uniform_colour(encoding, layout):
    colour = {'R': 200, 'G': 100, 'B': 30}
    mosaic = np.zeros((8, 10), np.uint8)
    for k, (dr, dc) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        mosaic[dr::2, dc::2] = colour[layout[k]]
    out = image_msg_to_rgb(raw_msg(mosaic, encoding))
    np.testing.assert_allclose(out[2:-2, 2:-2].reshape(-1, 3).astype(int), [[200, 100, 30]] *
                               ((8 - 4) * (10 - 4)), atol=1)


def test_decoded_image_does_not_alias_the_message():
    msg = raw_msg(RGB, 'rgb8')
    out = image_msg_to_rgb(msg)
    out[:] = 0
    np.testing.assert_array_equal(image_msg_to_rgb(msg), RGB)


@pytest.mark.parametrize('encoding', ['yuv422', '32FC1', '16UC1', 'jpeg', ''])
def test_unsupported_encoding_names_it_and_the_supported_ones(encoding):
    msg = raw_msg(RGB, 'rgb8')
    msg.encoding = encoding
    with pytest.raises(ValueError, match=f"'{encoding}'.*rgb8, bgr8, mono8") as err:
        image_msg_to_rgb(msg)
    assert isinstance(err.value, ImageDecodeError)


def test_truncated_and_zero_sized_images():
    msg = raw_msg(RGB, 'rgb8')
    msg.data = msg.data[:-1]
    with pytest.raises(ImageDecodeError, match='too short'):
        image_msg_to_rgb(msg)
    empty = Image(height=0, width=640, encoding='rgb8', step=1920)
    with pytest.raises(ImageDecodeError, match='zero-sized'):
        image_msg_to_rgb(empty)


def test_rosbags_messages_decode_too():
    store = get_typestore(Stores.ROS2_HUMBLE)
    types = store.types
    header = types['std_msgs/msg/Header'](
        stamp=types['builtin_interfaces/msg/Time'](sec=1, nanosec=2), frame_id='cam')
    msg = types['sensor_msgs/msg/Image'](header=header, height=6, width=9, encoding='bgr8',
                                         is_bigendian=0, step=27,
                                         data=np.ascontiguousarray(RGB[..., ::-1]).ravel())
    np.testing.assert_array_equal(image_msg_to_rgb(msg), RGB)


# --- compressed images and encoding ------------------------------------------------------

def smooth_rgb(h=48, w=64):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([xx * 3, yy * 4, 255 - xx * 2]).astype(np.uint8)


def test_png_round_trip_is_exact_and_jpeg_is_close():
    rgb = smooth_rgb()
    png = rgb_to_compressed_image_msg(rgb, KITTI_NS, 'cam', fmt='png')
    assert png.format == 'png' and stamp_to_ns(png.header.stamp) == KITTI_NS
    np.testing.assert_array_equal(image_msg_to_rgb(png), rgb)
    jpeg = rgb_to_compressed_image_msg(rgb, KITTI_NS, 'cam', fmt='jpeg', jpeg_quality=95)
    decoded = image_msg_to_rgb(jpeg)
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(int) - rgb.astype(int)).mean() < 3.0
    # channel order pin: red stays red
    assert decoded[:, -1, 0].mean() > decoded[:, -1, 2].mean() + 50


def test_compressed_grey_png_and_image_transport_format_string():
    ok, buf = cv2.imencode('.png', RGB[..., 1])
    msg = CompressedImage(format='mono8; png compressed mono8')
    msg.data = buf.tobytes()
    np.testing.assert_array_equal(image_msg_to_rgb(msg), np.dstack([RGB[..., 1]] * 3))


def test_bad_compressed_payloads():
    jpeg = rgb_to_compressed_image_msg(smooth_rgb(), 0, fmt='jpeg')
    jpeg.data = jpeg.data[:len(jpeg.data) // 2]
    with pytest.raises(ImageDecodeError, match='truncated jpeg'):
        image_msg_to_rgb(jpeg)
    png = rgb_to_compressed_image_msg(smooth_rgb(), 0, fmt='png')
    png.data = png.data[:60]
    with pytest.raises(ImageDecodeError, match='png'):
        image_msg_to_rgb(png)
    other = CompressedImage(format='16UC1; compressedDepth')
    other.data = b'\x00\x00\x00\x00garbage'
    with pytest.raises(ImageDecodeError, match='compressedDepth.*jpeg, png'):
        image_msg_to_rgb(other)
    with pytest.raises(ImageDecodeError, match='empty'):
        image_msg_to_rgb(CompressedImage(format='jpeg'))


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_numpy_to_image_round_trip(encoding):
    msg = rgb_to_image_msg(RGB, KITTI_NS, 'camera', encoding=encoding)
    assert (msg.height, msg.width, msg.encoding, msg.header.frame_id) == (6, 9, encoding,
                                                                            'camera')
    assert msg.step == 9 * len(encoding.rstrip('8'))
    assert stamp_to_ns(msg.header.stamp) == KITTI_NS
    np.testing.assert_array_equal(image_msg_to_rgb(msg), RGB)


def test_numpy_to_mono8_and_bad_inputs():
    msg = rgb_to_image_msg(RGB, 0, encoding='mono8')
    grey = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(image_msg_to_rgb(msg)[..., 0], grey)
    with pytest.raises(ValueError, match=r'\(6, 9\)'):
        rgb_to_image_msg(RGB[..., 0], 0)
    with pytest.raises(ValueError, match='yuv422'):
        rgb_to_image_msg(RGB, 0, encoding='yuv422')


# --- NavSatFix ----------------------------------------------------------------------------

def make_navsatfix(lat=49.015, lon=8.43, alt=116.4, status=NavSatStatus.STATUS_FIX):
    msg = NavSatFix(latitude=lat, longitude=lon, altitude=alt)
    msg.header.stamp = ns_to_stamp(KITTI_NS)
    msg.status.status = status
    msg.position_covariance = [4.0, 0.5, 0.0, 0.5, 9.0, 0.0, 0.0, 0.0, 16.0]
    msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_KNOWN
    return msg


def test_navsatfix_to_fix_fields():
    fix = navsatfix_to_fix(make_navsatfix())
    assert fix.stamp_ns == KITTI_NS and fix.ok
    assert (fix.lat_deg, fix.lon_deg, fix.alt_m) == (49.015, 8.43, 116.4)
    np.testing.assert_array_equal(fix.covariance_enu_m2, [[4, 0.5, 0], [0.5, 9, 0], [0, 0, 16]])
    assert fix.covariance_type == 3 and fix.has_covariance


@pytest.mark.parametrize('kwargs, reason', [
    (dict(lat=math.nan), FixRejection.NAN),
    (dict(lon=math.inf), FixRejection.NAN),
    (dict(lat=95.0), FixRejection.OUT_OF_RANGE),
    (dict(status=NavSatStatus.STATUS_NO_FIX), FixRejection.NO_FIX),
])
def test_navsatfix_problems(kwargs, reason):
    assert navsatfix_to_fix(make_navsatfix(**kwargs)).problem() is reason


def test_default_navsatfix_is_not_a_fix():
    """A default-constructed message has STATUS_UNKNOWN (-2 on Kilted): never usable."""
    assert navsatfix_to_fix(NavSatFix()).problem() is FixRejection.NO_FIX


def test_navsatfix_msg_layout_and_round_trip():
    msg = navsatfix_msg(KITTI_NS, 'gps', 49.0151, 8.4301, 115.0,
                        cov_en_m2=[[0.25, 0.05], [0.05, 0.36]], var_up_m2=100.0)
    assert msg.position_covariance_type == NavSatFix.COVARIANCE_TYPE_KNOWN
    assert msg.status.status == NavSatStatus.STATUS_FIX and msg.header.frame_id == 'gps'
    np.testing.assert_array_equal(msg.position_covariance,
                                  [0.25, 0.05, 0, 0.05, 0.36, 0, 0, 0, 100.0])
    fix = navsatfix_to_fix(msg)
    assert (fix.lat_deg, fix.lon_deg, fix.alt_m, fix.stamp_ns) == (49.0151, 8.4301, 115.0,
                                                                    KITTI_NS)
    with pytest.raises(ValueError, match='symmetric'):
        navsatfix_msg(0, 'gps', 49.0, 8.0, 0.0, cov_en_m2=[[1.0, 0.5], [0.0, 1.0]])


# --- poses --------------------------------------------------------------------------------

def test_pose_covariance_layout_pins():
    msg = pose_with_covariance_msg(KITTI_NS, 'map', 12.5, -3.25, 0.7, 0.3,
                                   cov_xy=[[2.0, 0.4], [0.4, 3.0]], var_yaw=0.01, big=1e3)
    cov = np.asarray(msg.pose.covariance)
    assert cov.shape == (36,)
    assert (cov[0], cov[1], cov[6], cov[7]) == (2.0, 0.4, 0.4, 3.0)  # xx, xy, yx, yy
    assert cov[35] == 0.01  # yaw-yaw
    assert (cov[14], cov[21], cov[28]) == (1e3, 1e3, 1e3)  # z, roll, pitch
    assert np.count_nonzero(cov) == 8
    m = cov.reshape(6, 6)
    assert np.allclose(m, m.T) and np.linalg.eigvalsh(m).min() > 0
    assert msg.header.frame_id == 'map' and stamp_to_ns(msg.header.stamp) == KITTI_NS
    p = msg.pose.pose.position
    assert (p.x, p.y, p.z) == (12.5, -3.25, 0.7)
    assert yaw_from_quaternion(msg.pose.pose.orientation) == pytest.approx(0.3)


@pytest.mark.parametrize('cov_xy, match', [
    ([[1.0, 2.0], [2.0, 1.0]], 'positive semi-definite'),
    ([[1.0, 0.1], [0.0, 1.0]], 'symmetric'),
    ([[1.0, 0.0, 0.0]], 'shape'),
    ([[math.nan, 0.0], [0.0, 1.0]], 'non-finite'),
])
def test_pose_covariance_is_validated(cov_xy, match):
    with pytest.raises(ValueError, match=match):
        pose_with_covariance_msg(0, 'map', 0, 0, 0, 0, cov_xy, 0.1)


def test_pose_rejects_bad_yaw_variance():
    with pytest.raises(ValueError, match='var_yaw'):
        pose_with_covariance_msg(0, 'map', 0, 0, 0, 0, np.eye(2), -1.0)


def test_quaternion_yaw_round_trip_and_convention():
    for yaw in np.linspace(-math.pi + 1e-6, math.pi, 25):
        assert yaw_from_quaternion(quaternion_from_yaw(yaw)) == pytest.approx(yaw, abs=1e-12)
    q = quaternion_from_yaw(math.pi / 2)  # north in ENU: +90 deg about +z
    assert (q.z, q.w) == pytest.approx((math.sqrt(0.5), math.sqrt(0.5)))


def test_yaw_of_a_scaled_quaternion_is_the_unit_quaternions():
    """A quaternion scaled by 2 is normalised (unnormalised, the formula is 44 deg off)."""
    for yaw in (0.3, 1.2, -2.5):
        q = quaternion_from_yaw(yaw)
        scaled = Quaternion(x=2 * q.x, y=2 * q.y, z=2 * q.z, w=2 * q.w)
        assert yaw_from_quaternion(scaled) == pytest.approx(yaw, abs=1e-12)
    tilted = Quaternion(x=0.1, y=-0.2, z=0.5, w=0.8)
    small = Quaternion(x=1e-3 * 0.1, y=-1e-3 * 0.2, z=1e-3 * 0.5, w=1e-3 * 0.8)
    assert yaw_from_quaternion(small) == pytest.approx(yaw_from_quaternion(tilted))


@pytest.mark.parametrize('xyzw, reason', [((0.0, 0.0, 0.0, 0.0), 'zero_norm'),
                                          ((0.0, 0.0, 1e-9, 1e-9), 'zero_norm'),
                                          ((0.0, 0.0, math.nan, 1.0), 'non_finite'),
                                          ((0.0, 0.0, 0.0, -math.inf), 'non_finite')])
def test_quaternions_that_are_no_rotation_are_refused(xyzw, reason):
    x, y, z, w = xyzw
    with pytest.raises(QuaternionError) as err:
        yaw_from_quaternion(Quaternion(x=x, y=y, z=z, w=w))
    assert err.value.reason == reason


def test_yaw_from_a_tilted_quaternion_matches_the_rotation_matrix():
    """Independent reference: yaw = atan2(R[1, 0], R[0, 0]) of the full rotation."""
    q = np.array([0.1, -0.2, 0.5, 0.8])
    x, y, z, w = q / np.linalg.norm(q)
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    yaw = yaw_from_quaternion(Quaternion(x=x, y=y, z=z, w=w))
    assert yaw == pytest.approx(math.atan2(R[1, 0], R[0, 0]))


# --- heatmap as OccupancyGrid -------------------------------------------------------------

def test_occupancy_grid_flips_rows_and_puts_origin_at_south_west():
    rows, cols, mpc = 5, 7, 0.5
    prob = np.full((rows, cols), 0.01)
    prob[0, 5] = 0.5  # satellite row 0 = NORTH edge, column 5
    grid = heatmap_to_occupancy_grid(prob, mpc, 100.0, 200.0, 'map', KITTI_NS)
    assert (grid.info.width, grid.info.height) == (cols, rows)
    assert grid.info.resolution == pytest.approx(mpc)
    assert grid.header.frame_id == 'map' and stamp_to_ns(grid.header.stamp) == KITTI_NS
    data = np.asarray(grid.data, np.int8).reshape(rows, cols)
    assert data[rows - 1, 5] == 100  # the LAST OccupancyGrid row is the north edge
    assert data[0, 5] != 100  # counter-example: unflipped would put it in row 0
    assert data.min() == 2 and data.max() == 100
    origin = grid.info.origin.position
    assert (origin.x, origin.y) == (100.0 - 3.5 * mpc * 1, 200.0 - 2.5 * mpc)  # SW corner
    # the peak cell's centre in the map equals the crop pixel -> map convention
    og_row, og_col = np.unravel_index(np.argmax(data), data.shape)
    x_cell = origin.x + (og_col + 0.5) * mpc
    y_cell = origin.y + (og_row + 0.5) * mpc
    assert x_cell == pytest.approx(100.0 + (5 - (cols - 1) / 2) * mpc)
    assert y_cell == pytest.approx(200.0 - (0 - (rows - 1) / 2) * mpc)


def test_occupancy_grid_values_nan_and_rotation():
    prob = np.array([[0.0, 0.25], [math.nan, 1.0]])
    grid = heatmap_to_occupancy_grid(prob, 1.0, 0.0, 0.0, 'map', 0, scale_to_peak=False)
    np.testing.assert_array_equal(np.asarray(grid.data), [-1, 100, 0, 25])
    turned = heatmap_to_occupancy_grid(np.ones((2, 4)), 1.0, 10.0, 0.0, 'map', 0,
                                       yaw_rad=math.pi / 2)
    # rotated 90 deg CCW about the centre: SW corner (-2, -1) goes to (1, -2)
    assert (turned.info.origin.position.x, turned.info.origin.position.y) == pytest.approx(
        (11.0, -2.0))
    assert yaw_from_quaternion(turned.info.origin.orientation) == pytest.approx(math.pi / 2)
    with pytest.raises(ValueError, match=r'\(3,\)'):
        heatmap_to_occupancy_grid(np.ones(3), 1.0, 0, 0, 'map', 0)


# --- stamps -------------------------------------------------------------------------------

def test_stamp_helpers():
    stamp = ns_to_stamp(KITTI_NS)
    assert (stamp.sec, stamp.nanosec) == (1317046945, 123456789)
    assert stamp_to_ns(stamp) == KITTI_NS
    assert stamp_to_ns(ns_to_stamp(0)) == 0
    with pytest.raises(ValueError, match='1970'):
        ns_to_stamp(-1)
    from rclpy.time import Time as RclpyTime
    assert stamp_to_ns(RclpyTime(nanoseconds=KITTI_NS)) == KITTI_NS


def test_supported_encodings_are_all_tested():
    tested = {'rgb8', 'bgr8', 'rgba8', 'bgra8', 'rgb16', 'bgr16', 'rgba16', 'bgra16', 'mono8',
              'mono16', 'bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8', 'bayer_grbg8'}
    assert set(SUPPORTED_IMAGE_ENCODINGS) == tested
