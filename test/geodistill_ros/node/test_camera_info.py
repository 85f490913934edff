"""CameraInfo -> intrinsics: P or K, ROI and binning, and every implausible message refused
with its reason key (the node counts them in /diagnostics)."""
import math

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from geodistill_ros.node.camera_info import (
    CameraInfoError,
    camera_info_to_pinhole,
    describe_calibration,
)


def kitti_camera_info():
    msg = CameraInfo(height=375, width=1242)
    msg.k = [700.0, 0.0, 600.0, 0.0, 705.0, 180.0, 0.0, 0.0, 1.0]
    msg.p = [721.5377, 0.0, 609.5593, 44.85728, 0.0, 721.5377, 172.854, 0.2163791,
             0.0, 0.0, 1.0, 0.002745884]
    return msg


def test_camera_info_uses_p_for_rectified_images_and_k_otherwise():
    calib = camera_info_to_pinhole(kitti_camera_info())
    np.testing.assert_allclose(calib.K_px, [[721.5377, 0, 609.5593], [0, 721.5377, 172.854],
                                            [0, 0, 1]])
    assert (calib.height_px, calib.width_px) == (375, 1242)
    raw = camera_info_to_pinhole(kitti_camera_info(), rectified=False)
    np.testing.assert_allclose(raw.K_px, [[700, 0, 600], [0, 705, 180], [0, 0, 1]])


def test_camera_info_roi_and_binning():
    msg = kitti_camera_info()
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 100, 50, 800, 300
    msg.binning_x = msg.binning_y = 2
    calib = camera_info_to_pinhole(msg)
    np.testing.assert_allclose(calib.K_px, [[721.5377 / 2, 0, (609.5593 - 100) / 2],
                                            [0, 721.5377 / 2, (172.854 - 50) / 2], [0, 0, 1]])
    assert (calib.height_px, calib.width_px) == (150, 400)


def test_uncalibrated_camera_info_is_an_error():
    with pytest.raises(ValueError, match='focal length'):
        camera_info_to_pinhole(CameraInfo(height=10, width=10))
    msg = kitti_camera_info()
    msg.width = 0
    with pytest.raises(ValueError, match='size'):
        camera_info_to_pinhole(msg)


@pytest.mark.parametrize('fx, reason', [(0.0, 'no_focal_length'), (-721.5, 'no_focal_length'),
                                        (math.nan, 'non_finite'), (math.inf, 'non_finite'),
                                        (1e12, 'focal_length'), (1e-9, 'focal_length'),
                                        (0.04 * 1242, 'focal_length'),
                                        (21.0 * 1242, 'focal_length')])
def test_implausible_focal_lengths_are_refused(fx, reason):
    msg = kitti_camera_info()
    p = list(msg.p)
    p[0] = fx
    msg.p = p
    with pytest.raises(CameraInfoError, match='camera_info P') as err:
        camera_info_to_pinhole(msg)
    assert err.value.reason == reason


@pytest.mark.parametrize('fx_widths', [0.05, 0.3, 20.0])
def test_focal_lengths_inside_the_plausible_range_are_accepted(fx_widths):
    msg = kitti_camera_info()
    p = list(msg.p)
    p[0] = p[5] = fx_widths * 1242
    msg.p = p
    assert camera_info_to_pinhole(msg).K_px[0, 0] == pytest.approx(fx_widths * 1242)


@pytest.mark.parametrize('index, value', [(2, -1.0), (2, 1243.0), (6, 376.0), (6, -0.5)])
def test_principal_point_outside_the_image_is_refused(index, value):
    msg = kitti_camera_info()
    p = list(msg.p)
    p[index] = value
    msg.p = p
    with pytest.raises(CameraInfoError, match='outside the 1242x375 image') as err:
        camera_info_to_pinhole(msg)
    assert err.value.reason == 'principal_point'


def test_description_names_the_calibration_in_use():
    calib = camera_info_to_pinhole(kitti_camera_info())
    text = describe_calibration(calib, 1317046945_500000000)
    assert text.startswith('fx=721.538 fy=721.538 cx=609.559 cy=172.854 1242x375')
    assert '1317046945.500 s' in text
    assert 'rejected' in describe_calibration(calib, 0, 'fx=0')
    assert describe_calibration(None, 0) == 'none'
