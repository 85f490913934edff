"""ROS 2 messages as rosbags typestore objects, for writing bags without rclpy.

Same conventions as ``geodistill_ros.node.messages`` (which builds rclpy messages for the node):
stamps are integer nanoseconds, covariances metres^2 in ENU row-major, yaw 0 = east CCW.
Every builder returns an instance of ``TYPESTORE.types[<msgtype>]``; serialize it with
``serialize(msg)``.
"""
from __future__ import annotations

import cv2
import numpy as np
from rosbags.typesys import Stores, get_typestore

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
_T = TYPESTORE.types
_NS_PER_S = 1_000_000_000

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
NAV_SAT_FIX = 'sensor_msgs/msg/NavSatFix'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
POSE_STAMPED = 'geometry_msgs/msg/PoseStamped'
TWIST_WITH_COVARIANCE_STAMPED = 'geometry_msgs/msg/TwistWithCovarianceStamped'
COMPRESSED_FORMAT = 'rgb8; jpeg compressed bgr8'
"""CompressedImage.format as compressed_image_transport writes it for an rgb8 source."""
PANORAMA_DISTORTION_MODEL = 'equirectangular'
"""CameraInfo.distortion_model of panorama drives (not a ROS model: K = 0, uncalibrated)."""

STATUS_FIX = _T['sensor_msgs/msg/NavSatStatus'].STATUS_FIX
SERVICE_GPS = _T['sensor_msgs/msg/NavSatStatus'].SERVICE_GPS
COVARIANCE_TYPE_DIAGONAL_KNOWN = _T[NAV_SAT_FIX].COVARIANCE_TYPE_DIAGONAL_KNOWN


def serialize(msg) -> bytes:
    """CDR bytes of a typestore message."""
    return TYPESTORE.serialize_cdr(msg, msg.__msgtype__)


def header(stamp_ns: int, frame_id: str):
    stamp_ns = int(stamp_ns)
    if stamp_ns < 0:
        raise ValueError(f'stamps before 1970 are not representable, got {stamp_ns} ns')
    stamp = _T['builtin_interfaces/msg/Time'](sec=stamp_ns // _NS_PER_S,
                                              nanosec=stamp_ns % _NS_PER_S)
    return _T['std_msgs/msg/Header'](stamp=stamp, frame_id=frame_id)


def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3
            and rgb.shape[2] == 3 and min(rgb.shape[:2]) > 0):
        raise ValueError('expected an (H, W, 3) uint8 RGB array, got '
                         f'{getattr(rgb, "shape", type(rgb))} {getattr(rgb, "dtype", "")}')


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str):
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image rgb8 (rows unpadded)."""
    _check_rgb(rgb)
    height, width = rgb.shape[:2]
    return _T[IMAGE](header=header(stamp_ns, frame_id), height=height, width=width,
                     encoding='rgb8', is_bigendian=0, step=3 * width,
                     data=np.ascontiguousarray(rgb).reshape(-1))


def compressed_image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str,
                         jpeg_quality: int = 90):
    """(H, W, 3) uint8 RGB -> sensor_msgs/CompressedImage (JPEG)."""
    _check_rgb(rgb)
    ok, buffer = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                              [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise ValueError(f'OpenCV failed to encode a {rgb.shape} image as JPEG')
    return _T[COMPRESSED_IMAGE](header=header(stamp_ns, frame_id), format=COMPRESSED_FORMAT,
                                data=np.asarray(buffer, np.uint8).reshape(-1))


def camera_info_msg(P_rect: np.ndarray, image_hw: tuple[int, int], stamp_ns: int,
                    frame_id: str):
    """Rectified pinhole camera: p = P_rect (3, 4), k = P[:, :3], d = [], r = identity."""
    P = np.asarray(P_rect, np.float64)
    if P.shape != (3, 4):
        raise ValueError(f'P_rect must be (3, 4), got {P.shape}')
    roi = _T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False)
    return _T[CAMERA_INFO](
        header=header(stamp_ns, frame_id), height=int(image_hw[0]), width=int(image_hw[1]),
        distortion_model='plumb_bob', d=np.zeros(0), k=P[:, :3].reshape(-1).copy(),
        r=np.eye(3).reshape(-1), p=P.reshape(-1).copy(), binning_x=0, binning_y=0, roi=roi)


def panorama_camera_info_msg(image_hw: tuple[int, int], stamp_ns: int, frame_id: str):
    """An equirectangular panorama: no pinhole projection, so an *uncalibrated* CameraInfo
    (sensor_msgs: K, R, P all zero; clients take k[0] == 0 as uncalibrated) with the image
    size and distortion_model 'equirectangular'."""
    roi = _T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False)
    return _T[CAMERA_INFO](
        header=header(stamp_ns, frame_id), height=int(image_hw[0]), width=int(image_hw[1]),
        distortion_model=PANORAMA_DISTORTION_MODEL, d=np.zeros(0), k=np.zeros(9),
        r=np.zeros(9), p=np.zeros(12), binning_x=0, binning_y=0, roi=roi)


def nav_sat_fix_msg(stamp_ns: int, frame_id: str, lat_deg: float, lon_deg: float,
                    alt_m: float, cov_enu_m2: np.ndarray):
    """sensor_msgs/NavSatFix with a diagonal (3, 3) ENU covariance (type DIAGONAL_KNOWN)."""
    cov = np.asarray(cov_enu_m2, np.float64)
    if cov.shape != (3, 3) or not np.isfinite(cov).all() or (np.diag(cov) < 0).any():
        raise ValueError(f'cov_enu_m2 must be a finite (3, 3) with diagonal >= 0, got {cov}')
    status = _T['sensor_msgs/msg/NavSatStatus'](status=STATUS_FIX, service=SERVICE_GPS)
    return _T[NAV_SAT_FIX](header=header(stamp_ns, frame_id), status=status,
                           latitude=float(lat_deg), longitude=float(lon_deg),
                           altitude=float(alt_m), position_covariance=cov.reshape(-1).copy(),
                           position_covariance_type=COVARIANCE_TYPE_DIAGONAL_KNOWN)


def _vector3(xyz):
    return _T['geometry_msgs/msg/Vector3'](x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def _quaternion(xyzw):
    x, y, z, w = (float(v) for v in xyzw)
    return _T['geometry_msgs/msg/Quaternion'](x=x, y=y, z=z, w=w)


def transform_stamped(stamp_ns: int, parent: str, child: str, xyz, quaternion_xyzw):
    """geometry_msgs/TransformStamped: the child frame's pose in the parent frame."""
    transform = _T['geometry_msgs/msg/Transform'](translation=_vector3(xyz),
                                                  rotation=_quaternion(quaternion_xyzw))
    return _T['geometry_msgs/msg/TransformStamped'](header=header(stamp_ns, parent),
                                                    child_frame_id=child, transform=transform)


def tf_message(transforms: list):
    return _T[TF_MESSAGE](transforms=list(transforms))


def pose_stamped_msg(stamp_ns: int, frame_id: str, xyz, quaternion_xyzw):
    point = _T['geometry_msgs/msg/Point'](x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))
    pose = _T['geometry_msgs/msg/Pose'](position=point, orientation=_quaternion(quaternion_xyzw))
    return _T[POSE_STAMPED](header=header(stamp_ns, frame_id), pose=pose)


def twist_with_covariance_stamped_msg(stamp_ns: int, frame_id: str, v_forward_mps: float,
                                      v_left_mps: float, yaw_rate_rps: float,
                                      cov_6x6: np.ndarray):
    """geometry_msgs/TwistWithCovarianceStamped of a planar vehicle in frame_id (base_link):
    linear (v_forward, v_left, 0), angular (0, 0, yaw_rate), row-major (6, 6) covariance."""
    cov = np.asarray(cov_6x6, np.float64)
    if cov.shape != (6, 6) or not np.isfinite(cov).all():
        raise ValueError(f'cov_6x6 must be a finite (6, 6), got {cov.shape}')
    twist = _T['geometry_msgs/msg/Twist'](linear=_vector3((v_forward_mps, v_left_mps, 0.0)),
                                          angular=_vector3((0.0, 0.0, yaw_rate_rps)))
    body = _T['geometry_msgs/msg/TwistWithCovariance'](twist=twist,
                                                       covariance=cov.reshape(-1).copy())
    return _T[TWIST_WITH_COVARIANCE_STAMPED](header=header(stamp_ns, frame_id), twist=body)
