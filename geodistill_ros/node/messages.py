"""ROS message <-> array conversions, as pure functions (no node, no rclpy.init needed).

Images decode through rosbags-image (raw ``sensor_msgs/Image``: every encoding it knows,
byte order, row padding) and OpenCV (``CompressedImage``: jpeg and png), always to RGB
uint8. Frames and units follow REP-103 and docs/method.md section 6: map ENU metres, yaw
radians with 0 = east and counter-clockwise positive, covariances in metres^2 / rad^2.
Stamps are integer nanoseconds inside the package and ``builtin_interfaces/Time`` on the
wire. Decoders accept rclpy messages and rosbags messages alike (duck-typed fields).
"""
from __future__ import annotations

import math
from types import SimpleNamespace

from builtin_interfaces.msg import Time
import cv2
from geometry_msgs.msg import PoseWithCovarianceStamped, Quaternion
from nav_msgs.msg import OccupancyGrid
import numpy as np
from rosbags.image import ImageError, image_to_cvimage
from rosbags.image.image import to_cvtype
from sensor_msgs.msg import CompressedImage, Image, NavSatFix, NavSatStatus

from geodistill_ros.node.fix_buffer import GnssFix
from geodistill_ros.node.image_header import JPEG_SOI, HeaderError, jpeg_ends_early, read_header

SUPPORTED_IMAGE_ENCODINGS = (
    'rgb8', 'bgr8', 'mono8', 'rgba8', 'bgra8', 'rgb16', 'bgr16', 'mono16', 'rgba16', 'bgra16',
    'bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8', 'bayer_grbg8')
"""Raw ``sensor_msgs/Image`` encodings decoded to RGB (through rosbags-image)."""
SUPPORTED_COMPRESSED_FORMATS = ('jpeg', 'png')
"""``CompressedImage`` payloads decoded (recognised by their signature bytes)."""
_OUTPUT_CONVERSIONS = {'rgb8': None, 'bgr8': cv2.COLOR_RGB2BGR, 'mono8': cv2.COLOR_RGB2GRAY,
                       'rgba8': cv2.COLOR_RGB2RGBA, 'bgra8': cv2.COLOR_RGB2BGRA}
_NS_PER_S = 1_000_000_000


class ImageDecodeError(ValueError):
    """An image message that cannot be turned into pixels; the message says why."""


# --- stamps -------------------------------------------------------------------------------

def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time (or rclpy.time.Time) -> integer nanoseconds."""
    if hasattr(stamp, 'nanoseconds'):
        return int(stamp.nanoseconds)
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(stamp_ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> builtin_interfaces/Time."""
    stamp_ns = int(stamp_ns)
    if stamp_ns < 0:
        raise ValueError(f'stamps before 1970 are not representable, got {stamp_ns} ns')
    return Time(sec=stamp_ns // _NS_PER_S, nanosec=stamp_ns % _NS_PER_S)


def _as_stamp(stamp) -> Time:
    return ns_to_stamp(stamp) if isinstance(stamp, (int, np.integer)) else stamp


# --- images -------------------------------------------------------------------------------

def image_msg_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """sensor_msgs/Image or CompressedImage -> (H, W, 3) uint8 RGB (a new array).

    max_pixels: reject images declaring more pixels (width x height; compressed images:
    from the header, before decoding). Raises ImageDecodeError (a ValueError) for
    unsupported encodings or formats, truncated or corrupt data, zero-sized and too large
    images.
    """
    if hasattr(msg, 'format'):
        return compressed_image_to_rgb(msg, max_pixels)
    return raw_image_to_rgb(msg, max_pixels)


def _check_pixels(width: int, height: int, max_pixels: int | None, what: str) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageDecodeError(f'{what} declares {width}x{height} = {width * height} pixels, '
                               f'more than max_image_pixels {max_pixels}: not decoded')


def raw_image_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """sensor_msgs/Image (any SUPPORTED_IMAGE_ENCODINGS, padded rows) -> (H, W, 3) uint8."""
    encoding = str(msg.encoding)
    if encoding not in SUPPORTED_IMAGE_ENCODINGS:
        raise ImageDecodeError(f'unsupported image encoding {encoding!r}; supported: '
                               f'{", ".join(SUPPORTED_IMAGE_ENCODINGS)} (raw) and '
                               f'{", ".join(SUPPORTED_COMPRESSED_FORMATS)} (compressed)')
    height, width = int(msg.height), int(msg.width)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'zero-sized image: {width}x{height} ({encoding})')
    _check_pixels(width, height, max_pixels, f'{encoding} image')
    _, _, typestr, channels = to_cvtype(encoding)
    row_bytes = width * channels * np.dtype(typestr).itemsize
    step = int(msg.step) or row_bytes
    data = np.frombuffer(msg.data, np.uint8)
    if step < row_bytes or data.size < step * height:
        raise ImageDecodeError(
            f'image data too short: {width}x{height} {encoding} needs step >= {row_bytes} '
            f'and {step * height} bytes, got step {msg.step} and {data.size} bytes')
    rows = data[:step * height].reshape(height, step)[:, :row_bytes]
    packed = SimpleNamespace(height=height, width=width, encoding=encoding,
                             is_bigendian=bool(msg.is_bigendian),
                             data=np.ascontiguousarray(rows))
    try:
        rgb = image_to_cvimage(packed, 'rgb8')
    except (ImageError, cv2.error) as err:
        raise ImageDecodeError(f'cannot convert {encoding} to rgb8: {err}') from err
    return rgb.copy() if rgb.base is not None else rgb


def compressed_image_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png payload) -> (H, W, 3) uint8 RGB.

    The size in the header is checked against max_pixels before decoding; a JPEG whose
    scan data stops early (cut, even with an end-of-image marker appended) is rejected.
    """
    raw = bytes(msg.data)
    fmt = str(msg.format)
    if raw.startswith(JPEG_SOI) and not raw.rstrip(b'\x00').endswith(b'\xff\xd9'):
        raise ImageDecodeError(f'truncated jpeg ({len(raw)} bytes, no end-of-image '
                               f'marker), format {fmt!r}')
    try:
        header = read_header(raw)
    except HeaderError as err:
        raise ImageDecodeError(f'{err}, format {fmt!r}') from err
    if header is None:
        what = 'empty payload' if not raw else f'payload starting {raw[:4]!r}'
        raise ImageDecodeError(f'unsupported compressed image (format {fmt!r}, {what}); '
                               f'supported: {", ".join(SUPPORTED_COMPRESSED_FORMATS)}')
    kind = header.kind
    if header.pixels == 0:
        raise ImageDecodeError(f'zero-sized {kind}: {header.width_px}x{header.height_px}')
    _check_pixels(header.width_px, header.height_px, max_pixels, kind)
    try:
        bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as err:
        raise ImageDecodeError(f'cannot decode {kind} ({len(raw)} bytes): {err}') from err
    if bgr is None or bgr.size == 0:
        raise ImageDecodeError(f'corrupt or truncated {kind} ({len(raw)} bytes), '
                               f'format {fmt!r}')
    if kind == 'jpeg' and jpeg_ends_early(bgr, header.mcu_hw_px):
        raise ImageDecodeError(f'truncated jpeg ({len(raw)} bytes): the image data ends '
                               'before the last block (decodes as flat grey), format '
                               f'{fmt!r}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_image_msg(rgb: np.ndarray, stamp, frame_id: str = '',
                     encoding: str = 'rgb8') -> Image:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image in rgb8 | bgr8 | mono8 | rgba8 | bgra8."""
    _check_rgb(rgb)
    if encoding not in _OUTPUT_CONVERSIONS:
        raise ValueError(f'cannot encode {encoding!r}; use one of {list(_OUTPUT_CONVERSIONS)}')
    code = _OUTPUT_CONVERSIONS[encoding]
    pixels = np.ascontiguousarray(rgb if code is None else cv2.cvtColor(rgb, code))
    msg = Image()
    msg.header.stamp = _as_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = pixels.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = pixels.strides[0]
    msg.data = pixels.tobytes()
    return msg


def rgb_to_compressed_image_msg(rgb: np.ndarray, stamp, frame_id: str = '',
                                fmt: str = 'jpeg', jpeg_quality: int = 90) -> CompressedImage:
    """(H, W, 3) uint8 RGB -> sensor_msgs/CompressedImage ('jpeg' or 'png')."""
    _check_rgb(rgb)
    if fmt not in SUPPORTED_COMPRESSED_FORMATS:
        raise ValueError(f'cannot compress to {fmt!r}; use one of '
                         f'{SUPPORTED_COMPRESSED_FORMATS}')
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if fmt == 'jpeg' else []
    ok, buffer = cv2.imencode('.jpg' if fmt == 'jpeg' else '.png',
                              cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f'OpenCV failed to encode a {rgb.shape} image as {fmt}')
    msg = CompressedImage()
    msg.header.stamp = _as_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.format = fmt
    msg.data = buffer.tobytes()
    return msg


def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3
            and rgb.shape[2] == 3 and rgb.shape[0] > 0 and rgb.shape[1] > 0):
        raise ValueError('expected an (H, W, 3) uint8 RGB array, got '
                         f'{getattr(rgb, "shape", type(rgb))} {getattr(rgb, "dtype", "")}')


# --- camera info and GNSS fixes ---------------------------------------------------------

def navsatfix_to_fix(msg) -> GnssFix:
    """sensor_msgs/NavSatFix -> GnssFix (use ``.problem()`` for the NaN/NO_FIX verdict)."""
    return GnssFix(stamp_ns=stamp_to_ns(msg.header.stamp), lat_deg=float(msg.latitude),
                   lon_deg=float(msg.longitude), alt_m=float(msg.altitude),
                   covariance_enu_m2=np.asarray(msg.position_covariance, np.float64),
                   covariance_type=int(msg.position_covariance_type),
                   status=int(msg.status.status))


def navsatfix_msg(stamp, frame_id: str, lat_deg: float, lon_deg: float, alt_m: float,
                  cov_en_m2, var_up_m2: float = 1e3, status: int = NavSatStatus.STATUS_FIX,
                  service: int = NavSatStatus.SERVICE_GPS) -> NavSatFix:
    """A corrected fix: position_covariance (east, north, up) row-major, type KNOWN.

    cov_en_m2: (2, 2) east-north covariance (m^2) or a full (3, 3) ENU covariance (then
    var_up_m2 is ignored).
    """
    cov = np.asarray(cov_en_m2, np.float64)
    if cov.shape == (2, 2):
        cov = np.block([[cov, np.zeros((2, 1))], [np.zeros((1, 2)), np.array([[var_up_m2]])]])
    _check_covariance(cov, (3, 3), 'cov_en_m2')
    msg = NavSatFix()
    msg.header.stamp = _as_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.status.status, msg.status.service = int(status), int(service)
    msg.latitude, msg.longitude, msg.altitude = float(lat_deg), float(lon_deg), float(alt_m)
    msg.position_covariance = cov.ravel()
    msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_KNOWN
    return msg


def _check_covariance(cov: np.ndarray, shape: tuple, name: str) -> None:
    if cov.shape != shape:
        raise ValueError(f'{name} must have shape {shape}, got {cov.shape}')
    if not np.isfinite(cov).all():
        raise ValueError(f'{name} has non-finite entries: {cov.tolist()}')
    if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-9):
        raise ValueError(f'{name} is not symmetric: {cov.tolist()}')
    if np.linalg.eigvalsh(cov).min() < -1e-9 * max(1.0, np.abs(cov).max()):
        raise ValueError(f'{name} is not positive semi-definite: {cov.tolist()}')


# --- poses and heatmaps -------------------------------------------------------------------

def quaternion_from_yaw(yaw_rad: float) -> Quaternion:
    """Rotation about +z (up) by yaw_rad (0 = east, CCW) as geometry_msgs/Quaternion."""
    half = 0.5 * float(yaw_rad)
    return Quaternion(x=0.0, y=0.0, z=math.sin(half), w=math.cos(half))


QUATERNION_MIN_NORM = 1e-6
"""Quaternions shorter than this carry no rotation (e.g. an all-zero default message)."""


class QuaternionError(ValueError):
    """A quaternion that is no rotation; ``reason``: 'non_finite' | 'zero_norm'."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def yaw_from_quaternion(q) -> float:
    """Yaw (rad, (-pi, pi]) of any quaternion (x, y, z, w fields): ZYX heading about +z.

    Quaternions of any length are normalised (the formula is scale-invariant). Raises
    QuaternionError for NaN/inf components or a norm below QUATERNION_MIN_NORM.
    """
    x, y, z, w = float(q.x), float(q.y), float(q.z), float(q.w)
    if not all(math.isfinite(v) for v in (x, y, z, w)):
        raise QuaternionError('non_finite', f'quaternion has NaN/inf components '
                              f'(x={x}, y={y}, z={z}, w={w})')
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if norm < QUATERNION_MIN_NORM:
        raise QuaternionError('zero_norm', f'quaternion has (near) zero norm {norm:.3g} '
                              f'(x={x}, y={y}, z={z}, w={w}); a rotation needs norm 1')
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def pose_with_covariance_msg(stamp, frame_id: str, x: float, y: float, z: float,
                             yaw_rad: float, cov_xy, var_yaw: float,
                             big: float = 1e3) -> PoseWithCovarianceStamped:
    """geometry_msgs/PoseWithCovarianceStamped of a planar pose estimate.

    covariance: 6x6 row-major over (x, y, z, roll, pitch, yaw): the (x, y) block is
    ``cov_xy`` (2, 2) m^2, [5, 5] (index 35) is ``var_yaw`` rad^2, z/roll/pitch variances are
    ``big`` (not estimated; robot_localization: pose0_config x, y, yaw only).
    """
    cov_xy = np.asarray(cov_xy, np.float64)
    _check_covariance(cov_xy, (2, 2), 'cov_xy')
    if not (math.isfinite(var_yaw) and var_yaw >= 0.0):
        raise ValueError(f'var_yaw must be finite and >= 0, got {var_yaw}')
    cov = np.zeros((6, 6))
    cov[:2, :2] = 0.5 * (cov_xy + cov_xy.T)
    cov[2, 2] = cov[3, 3] = cov[4, 4] = float(big)
    cov[5, 5] = float(var_yaw)
    msg = PoseWithCovarianceStamped()
    msg.header.stamp = _as_stamp(stamp)
    msg.header.frame_id = frame_id
    position = msg.pose.pose.position
    position.x, position.y, position.z = float(x), float(y), float(z)
    msg.pose.pose.orientation = quaternion_from_yaw(yaw_rad)
    msg.pose.covariance = cov.ravel()
    return msg


def heatmap_to_occupancy_grid(prob: np.ndarray, meters_per_cell: float, centre_x_m: float,
                              centre_y_m: float, frame_id: str, stamp,
                              yaw_rad: float = 0.0, scale_to_peak: bool = True
                              ) -> OccupancyGrid:
    """A north-up heatmap (H, W) (row 0 = north, like the satellite crop) -> OccupancyGrid.

    OccupancyGrid row 0 is the SOUTH edge, so rows are flipped; ``info.origin`` is the
    south-west corner of the crop (corner of cell (0, 0)), rotated by ``yaw_rad`` about
    the centre (the crop -> map yaw, normally ~0). Values 0..100: 100 * prob / max(prob)
    with ``scale_to_peak`` (probabilities per cell are tiny), else 100 * prob clipped;
    non-finite cells are -1 (unknown). The cell (r, c) centre is at
    (c - (W - 1) / 2, (H - 1) / 2 - r) * meters_per_cell from the centre.
    """
    prob = np.asarray(prob, np.float64)
    if prob.ndim != 2 or 0 in prob.shape:
        raise ValueError(f'heatmap must be (H, W), got {prob.shape}')
    if not meters_per_cell > 0:
        raise ValueError(f'meters_per_cell must be > 0, got {meters_per_cell}')
    finite = np.isfinite(prob)
    clean = np.where(finite, np.clip(prob, 0.0, None), 0.0)
    peak = clean.max()
    scaled = clean / peak if scale_to_peak and peak > 0 else np.clip(clean, 0.0, 1.0)
    values = np.where(finite, np.rint(100.0 * scaled), -1).astype(np.int8)
    rows, cols = prob.shape
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    dx, dy = -0.5 * cols * meters_per_cell, -0.5 * rows * meters_per_cell
    msg = OccupancyGrid()
    msg.header.stamp = _as_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.info.map_load_time = msg.header.stamp
    msg.info.resolution = float(meters_per_cell)
    msg.info.width, msg.info.height = cols, rows
    msg.info.origin.position.x = float(centre_x_m + c * dx - s * dy)
    msg.info.origin.position.y = float(centre_y_m + s * dx + c * dy)
    msg.info.origin.orientation = quaternion_from_yaw(yaw_rad)
    msg.data = np.ascontiguousarray(values[::-1]).ravel()
    return msg
