"""Inputs a black-box run found slipping through (issue 14), sent to the running node over
DDS: each is rejected before it can do harm, counted in /diagnostics, named in a warning,
and the node keeps localizing."""
import math
import struct
import subprocess
import sys

from builtin_interfaces.msg import Time
import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from geometry_msgs.msg import Quaternion  # noqa: E402
from test_node_harness import (  # noqa: E402
    IMAGE_HW,
    K_PX,
    STAMP_NS,
    NodeHarness,
    ScriptedLocalizer,
    base_overrides,
    camera_info_msg,
    en_to_latlon,
    fix_msg,
    quaternion_stamped,
    test_image,
    write_geotiff,
)

from geodistill_ros.node.messages import rgb_to_compressed_image_msg  # noqa: E402

pytestmark = pytest.mark.ros
YAW_RAD = 0.7


@pytest.fixture(scope='module')
def tif(tmp_path_factory):
    return write_geotiff(tmp_path_factory.mktemp('node_hardening_map') / 'map.tif')


def send_heading(h: NodeHarness, msg) -> None:
    before = h.node.stats.count('heading_prior')
    h.heading_pub.publish(msg)
    h.spin_until(lambda: h.node.stats.count('heading_prior') > before, 5.0, 'heading_prior')


def heading_quaternion(stamp_ns: int, x: float, y: float, z: float, w: float):
    msg = quaternion_stamped(stamp_ns, 0.0)
    msg.quaternion = Quaternion(x=x, y=y, z=z, w=w)
    return msg


def localize(h: NodeHarness, stamp_ns: int = STAMP_NS, image=None) -> None:
    h.send_fix(stamp_ns, *en_to_latlon(0.0, 0.0))
    poses = len(h.poses)
    h.send_image(image if image is not None else test_image(stamp_ns))
    h.spin_until(lambda: len(h.poses) > poses, 5.0, 'a pose')


# --- 1. heading prior quaternions -----------------------------------------------------------

def test_scaled_heading_quaternion_gives_the_unit_quaternions_yaw(ros_isolation, tif):
    scripted = ScriptedLocalizer()
    with NodeHarness(base_overrides(tif), scripted) as h:
        h.send_camera_info()
        q = quaternion_stamped(STAMP_NS, YAW_RAD).quaternion
        send_heading(h, heading_quaternion(STAMP_NS, 0.0, 0.0, 2 * q.z, 2 * q.w))
        localize(h)
        assert scripted.calls[-1]['yaw_prior_rad'] == pytest.approx(YAW_RAD, abs=1e-4)


@pytest.mark.parametrize('xyzw, reason', [((0.0, 0.0, 0.0, 0.0), 'zero_norm'),
                                          ((0.0, 0.0, math.nan, 1.0), 'non_finite'),
                                          ((math.inf, 0.0, 0.0, 1.0), 'non_finite')])
def test_bad_heading_quaternion_is_rejected_counted_and_warned(ros_isolation, tif, xyzw,
                                                               reason):
    scripted = ScriptedLocalizer()
    overrides = base_overrides(tif, default_yaw_deg=30.0)
    with NodeHarness(overrides, scripted) as h:
        h.send_camera_info()
        send_heading(h, quaternion_stamped(STAMP_NS, YAW_RAD))
        send_heading(h, heading_quaternion(STAMP_NS, *xyzw))
        assert 'unit quaternion' in h.wait_warning(f'heading_prior rejected ({reason})')
        diag = h.last_diagnostics()
        assert int(diag[f'heading_prior_rejected_{reason}_total']) == 1
        localize(h)  # the last good heading stays in use
        assert scripted.calls[-1]['yaw_prior_rad'] == pytest.approx(YAW_RAD, abs=1e-4)
        assert not h.node.stats.rejections_total


# --- 2. a clock jump keeps a heading already on the new timeline ----------------------------

def test_clock_jump_keeps_a_heading_stamped_on_the_new_timeline(ros_isolation, tif):
    scripted = ScriptedLocalizer(estimates_yaw=False)
    with NodeHarness(base_overrides(tif, yaw_prior_range_deg=10.0), scripted) as h:
        h.send_camera_info()
        localize(h, STAMP_NS)
        earlier = STAMP_NS - 100 * 10**9  # the bag loops: the drive starts again
        send_heading(h, quaternion_stamped(earlier, YAW_RAD))
        localize(h, earlier)
        assert int(h.last_diagnostics()['time_jumps_total']) >= 1
        assert scripted.calls[-1]['yaw_prior_rad'] == pytest.approx(YAW_RAD, abs=1e-4)
        cov = np.array(h.poses[-1].pose.covariance).reshape(6, 6)
        assert math.degrees(math.sqrt(cov[5, 5])) == pytest.approx(10.0 / math.sqrt(3.0))


# --- 3. compressed images: header size checked before decoding ------------------------------

def jpeg_bytes(hw=IMAGE_HW) -> bytes:
    ramp = np.linspace(0, 255, hw[0] * hw[1] * 3).reshape(hw + (3,)).astype(np.uint8)
    return bytes(rgb_to_compressed_image_msg(ramp, STAMP_NS, 'camera', 'jpeg').data)


def with_declared_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its start-of-frame header declaring width x height."""
    sof = jpeg.index(b'\xff\xc0')
    return jpeg[:sof + 5] + struct.pack('>HH', height, width) + jpeg[sof + 9:]


def compressed(data: bytes, stamp_ns: int = STAMP_NS):
    msg = test_image(stamp_ns, compressed=True)
    msg.format, msg.data = 'jpeg', data
    return msg


def test_huge_declared_jpeg_is_an_image_decode_rejection(ros_isolation, tif):
    overrides = base_overrides(tif, image_transport='compressed')
    with NodeHarness(overrides, ScriptedLocalizer(), compressed=True) as h:
        h.send_camera_info()
        h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0))
        h.send_image(compressed(with_declared_size(jpeg_bytes(), 65500, 65500)))
        assert '65500x65500' in h.wait_warning('max_image_pixels')
        diag = h.last_diagnostics()
        assert int(diag['rejected_image_decode_total']) == 1
        assert 'rejected_internal_error_total' not in diag
        localize(h, image=compressed(jpeg_bytes()))


def test_max_image_pixels_is_a_parameter(ros_isolation, tif):
    overrides = base_overrides(tif, image_transport='compressed', max_image_pixels=1000)
    with NodeHarness(overrides, ScriptedLocalizer(), compressed=True) as h:
        h.send_camera_info()
        h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0))
        h.send_image(compressed(jpeg_bytes()))  # 48 x 24 = 1152 pixels
        assert '1152 pixels' in h.wait_warning('max_image_pixels 1000')
        assert not h.poses
        (described,) = h.node.describe_parameters(['max_image_pixels'])
        assert described.integer_range[0].from_value == 1 and described.description


# --- 4. every CameraInfo validated; the last good one stays in use --------------------------

def bad_camera_infos():
    """(name, CameraInfo, reason) for focal lengths zero, NaN, negative, 1e12, 1e-9 and a
    principal point outside the image."""
    cases = []
    for name, fx, reason in [('zero', 0.0, 'no_focal_length'), ('nan', math.nan, 'non_finite'),
                             ('negative', -40.0, 'no_focal_length'),
                             ('huge', 1e12, 'focal_length'), ('tiny', 1e-9, 'focal_length')]:
        K = K_PX.copy()
        K[0, 0] = K[1, 1] = fx
        cases.append((name, camera_info_msg(K), reason))
    K = K_PX.copy()
    K[0, 2] = 500.0
    cases.append(('principal_point', camera_info_msg(K), 'principal_point'))
    return cases


def test_bad_camera_info_after_a_good_one_is_counted_and_the_good_one_kept(ros_isolation,
                                                                           tif):
    scripted = ScriptedLocalizer()
    with NodeHarness(base_overrides(tif), scripted) as h:
        h.send_camera_info()
        assert 'fx=40 ' in h.last_diagnostics()['camera_info_in_use']
        for name, msg, reason in bad_camera_infos():
            before = h.node.stats.count('camera_info')
            h.info_pub.publish(msg)
            h.spin_until(lambda n=before: h.node.stats.count('camera_info') > n, 5.0, name)
            warning = h.wait_warning(f'rejected ({reason})')
            assert 'last good calibration stays in use' in warning
            localize(h)
            np.testing.assert_allclose(scripted.calls[-1]['K'], K_PX)
        diag = h.last_diagnostics()
        for reason, count in [('no_focal_length', 2), ('non_finite', 1), ('focal_length', 2),
                              ('principal_point', 1)]:
            assert int(diag[f'camera_info_rejected_{reason}_total']) == count, diag
        assert 'fx=40 ' in diag['camera_info_in_use']
        assert 'newer CameraInfo rejected' in diag['camera_info_in_use']


# --- 5. negative stamps, a JPEG cut in half, a bad params file ------------------------------

def test_negative_stamps_are_rejected_before_inference(ros_isolation, tif):
    scripted = ScriptedLocalizer()
    with NodeHarness(base_overrides(tif), scripted) as h:
        h.send_camera_info()
        fix = fix_msg(STAMP_NS, *en_to_latlon(0.0, 0.0))
        fix.header.stamp = Time(sec=-5)
        h.fix_pub.publish(fix)
        h.spin_until(lambda: h.node.stats.count('fix') == 1, 5.0, 'the fix')
        image = test_image(STAMP_NS)
        image.header.stamp = Time(sec=-5)
        h.send_image(image)
        assert 'before 1970' in h.wait_warning('image stamp')
        assert int(h.last_diagnostics()['rejected_bad_stamp_total']) == 1
        assert not scripted.calls
        localize(h)


@pytest.mark.parametrize('keep_end_marker', [False, True])
def test_jpeg_cut_in_half_is_rejected(ros_isolation, tif, keep_end_marker):
    """Cut in the scan data; with the end marker appended libjpeg only warns on stderr and
    fills the missing half with grey."""
    hw = (240, 320)
    rgb = cv2.GaussianBlur(np.random.default_rng(3).integers(0, 256, hw + (3,), np.uint8),
                           (5, 5), 2.0)
    whole = bytes(rgb_to_compressed_image_msg(rgb, STAMP_NS, 'camera', 'jpeg').data)
    half = whole[:len(whole) // 2] + (b'\xff\xd9' if keep_end_marker else b'')
    overrides = base_overrides(tif, image_transport='compressed')
    scripted = ScriptedLocalizer()
    with NodeHarness(overrides, scripted, compressed=True) as h:
        h.send_camera_info(hw=hw)
        h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0))
        h.send_image(compressed(half))
        h.wait_warning('truncated jpeg')
        assert int(h.last_diagnostics()['rejected_image_decode_total']) == 1
        assert not scripted.calls and not h.poses
        localize(h, image=compressed(whole))


@pytest.mark.parametrize('content', [None, '/**:\n  ros__parameters:\n    a: [1.0, "x"\n'],
                         ids=['missing', 'malformed'])
def test_bad_params_file_is_a_one_line_error(ros_isolation, tmp_path, content):
    path = tmp_path / 'params.yaml'
    if content is not None:
        path.write_text(content)
    run = subprocess.run([sys.executable, '-m', 'geodistill_ros.node.localizer_node', '--ros-args',
                          '--params-file', str(path)], env=ros_isolation, capture_output=True,
                         text=True, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert 'Traceback' not in output
    lines = [line for line in output.splitlines() if 'cannot start' in line]
    assert len(lines) == 1 and str(path) in lines[0], output
    assert 'check the --params-file path' in lines[0]
