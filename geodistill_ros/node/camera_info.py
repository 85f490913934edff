"""sensor_msgs/CameraInfo -> pinhole intrinsics of the published images, validated.

Every CameraInfo is checked (finite, positive focal lengths, focal lengths and principal
point plausible for the image size); a message that fails raises CameraInfoError with a
reason key the node counts in /diagnostics (``camera_info_rejected_<reason>_total``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class PinholeCalibration:
    """Intrinsics of the images a camera publishes.

    K_px: (3, 3) float64 [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels of the published
    image (ROI and binning applied). height_px, width_px: that image's size.
    """

    K_px: np.ndarray
    height_px: int
    width_px: int


FOCAL_PER_WIDTH_RANGE = (0.05, 20.0)
"""Plausible focal lengths in image widths (fisheye ~0.15, telephoto ~10)."""


class CameraInfoError(ValueError):
    """CameraInfo without usable intrinsics; ``reason`` is the diagnostics key
    ('non_finite', 'no_focal_length', 'size', 'focal_length', 'principal_point')."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def camera_info_to_pinhole(msg, rectified: bool = True) -> PinholeCalibration:
    """sensor_msgs/CameraInfo -> PinholeCalibration.

    rectified: the images are rectified (KITTI image_02, image_proc output), so the
    intrinsics are P[:, :3] (REP-104: K belongs to the raw, distorted image); otherwise K.
    ROI and binning are applied as image_geometry's PinholeCameraModel does.
    Raises CameraInfoError (a ValueError) when the message holds no usable intrinsics:
    non-finite, non-positive focal lengths, focal lengths outside FOCAL_PER_WIDTH_RANGE
    image widths, or a principal point outside the image.
    """
    P = np.asarray(msg.p, np.float64).reshape(3, 4)
    K = P[:, :3].copy() if rectified else np.asarray(msg.k, np.float64).reshape(3, 3).copy()
    which = 'P' if rectified else 'K'
    height, width = int(msg.height), int(msg.width)
    if not np.isfinite(K).all():
        raise CameraInfoError('non_finite', f'camera_info {which} has NaN/inf entries: '
                              f'{K.tolist()}')
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise CameraInfoError('no_focal_length', f'camera_info {which} has no focal length '
                              f'(fx={K[0, 0]}, fy={K[1, 1]}); is the camera calibrated?')
    if height <= 0 or width <= 0:
        raise CameraInfoError('size', f'camera_info image size is {width}x{height}')
    roi = msg.roi
    if roi.width > 0 and roi.height > 0 and (roi.width, roi.height) != (width, height):
        K[0, 2] -= roi.x_offset
        K[1, 2] -= roi.y_offset
        width, height = int(roi.width), int(roi.height)
    bin_x, bin_y = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
    K[0] /= bin_x
    K[1] /= bin_y
    calib = PinholeCalibration(K_px=K, height_px=height // bin_y, width_px=width // bin_x)
    _check_plausible(calib, which)
    return calib


def _check_plausible(calib: PinholeCalibration, which: str) -> None:
    K, width, height = calib.K_px, calib.width_px, calib.height_px
    low, high = (f * width for f in FOCAL_PER_WIDTH_RANGE)
    if not (low <= K[0, 0] <= high and low <= K[1, 1] <= high):
        raise CameraInfoError(
            'focal_length', f'camera_info {which} focal lengths fx={K[0, 0]:.6g}, '
            f'fy={K[1, 1]:.6g} px are implausible for a {width} px wide image (expected '
            f'{FOCAL_PER_WIDTH_RANGE[0]}-{FOCAL_PER_WIDTH_RANGE[1]} widths: {low:.4g}-'
            f'{high:.4g} px); check the calibration file')
    if not (0.0 <= K[0, 2] <= width and 0.0 <= K[1, 2] <= height):
        raise CameraInfoError(
            'principal_point', f'camera_info {which} principal point ({K[0, 2]:.6g}, '
            f'{K[1, 2]:.6g}) px lies outside the {width}x{height} image; check the '
            'calibration file')


def describe_calibration(calibration: PinholeCalibration | None, stamp_ns: int,
                         rejected: str = '') -> str:
    """One line naming the calibration in use (diagnostics ``camera_info_in_use``).

    rejected: why the newest CameraInfo was rejected ('' when it was accepted).
    """
    if calibration is None:
        return f'none (rejected: {rejected})' if rejected else 'none'
    K = calibration.K_px
    text = (f'fx={K[0, 0]:.6g} fy={K[1, 1]:.6g} cx={K[0, 2]:.6g} cy={K[1, 2]:.6g} '
            f'{calibration.width_px}x{calibration.height_px} from the CameraInfo stamped '
            f'{stamp_ns * 1e-9:.3f} s')
    return text + (' (newer CameraInfo rejected)' if rejected else '')
