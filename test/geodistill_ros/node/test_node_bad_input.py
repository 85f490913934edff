"""Bad input never stops the node: each case is counted in /diagnostics, named in a warning
on /rosout, and a good frame afterwards is still localized."""
import math

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from sensor_msgs.msg import CompressedImage, Image, NavSatStatus  # noqa: E402
from test_node_harness import (  # noqa: E402
    STAMP_NS,
    NodeHarness,
    ScriptedLocalizer,
    base_overrides,
    en_to_latlon,
    test_image,
    write_geotiff,
)

from geodistill_ros.node.messages import ns_to_stamp  # noqa: E402

pytestmark = pytest.mark.ros
LATER_NS = STAMP_NS + 60 * 10**9


@pytest.fixture(scope='module')
def tif(tmp_path_factory):
    return write_geotiff(tmp_path_factory.mktemp('node_bad_map') / 'map.tif')


def raw_image(encoding='rgb8', height=24, width=48, n_bytes=None):
    msg = Image(height=height, width=width, encoding=encoding, step=width * 3)
    msg.header.stamp = ns_to_stamp(STAMP_NS)
    msg.data = bytes(n_bytes if n_bytes is not None else height * width * 3)
    return msg


def truncated_jpeg():
    msg = test_image(STAMP_NS, compressed=True)
    msg.format = 'jpeg'
    msg.data = b'\xff\xd8\xff\xe0' + bytes(100)  # a jpeg header, no image, no end marker
    return msg


def good_frame_still_localizes(h: NodeHarness) -> None:
    """A valid fix + image after the bad input yields a pose: the node kept running."""
    h.send_camera_info()
    h.send_fix(LATER_NS, *en_to_latlon(0.0, 0.0))
    h.send_image(test_image(LATER_NS))
    h.spin_until(lambda: h.poses, 5.0, 'a pose after the bad input')
    assert h.node.pipeline is not None and h.node._worker.is_alive()


def counted_and_warned(h: NodeHarness, key: str, words: str) -> None:
    h.wait_warning(words)
    diag = h.last_diagnostics(min_count=1)
    assert int(diag.get(key, 0)) >= 1, f'{key} not counted: {diag}'
    return diag


# (name, overrides, action(h), counter key, words in the warning)
CASES = {
    'nan_fix': (
        {}, lambda h: (h.send_fix(STAMP_NS, math.nan, 8.43),
                       h.send_camera_info(), h.send_image(test_image(STAMP_NS))),
        'fixes_rejected_nan_total', 'rejected (nan)'),
    'infinite_fix_pairs_as_nan': (
        {}, lambda h: (h.send_fix(STAMP_NS, 49.0, math.inf),
                       h.send_camera_info(), h.send_image(test_image(STAMP_NS))),
        'rejected_fix_nan_total', 'NaN/inf'),
    'out_of_range_fix': (
        {}, lambda h: h.send_fix(STAMP_NS, 91.0, 8.43),
        'fixes_rejected_out_of_range_total', 'out_of_range'),
    'no_fix_status': (
        {}, lambda h: (h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0),
                                  status=NavSatStatus.STATUS_NO_FIX),
                       h.send_camera_info(), h.send_image(test_image(STAMP_NS))),
        'rejected_fix_no_fix_total', 'NO_FIX'),
    'stale_fix': (
        {}, lambda h: (h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0)), h.send_camera_info(),
                       h.send_image(test_image(STAMP_NS + 3 * 10**9))),
        'rejected_fix_stale_total', 'max_fix_age_s'),
    'no_fix_at_all': (
        {}, lambda h: (h.send_camera_info(), h.send_image(test_image(STAMP_NS))),
        'rejected_fix_no_fix_total', 'no usable NavSatFix'),
    'fix_outside_the_map': (
        {}, lambda h: (h.send_fix(STAMP_NS, *en_to_latlon(500.0, 0.0)), h.send_camera_info(),
                       h.send_image(test_image(STAMP_NS))),
        'rejected_map_coverage_total', 'does not cover'),
    'unknown_encoding': (
        {}, lambda h: (h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0)), h.send_camera_info(),
                       h.send_image(raw_image(encoding='yuv999'))),
        'rejected_image_decode_total', 'unsupported image encoding'),
    'truncated_raw_image': (
        {}, lambda h: (h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0)), h.send_camera_info(),
                       h.send_image(raw_image(n_bytes=100))),
        'rejected_image_decode_total', 'too short'),
    'zero_sized_image': (
        {}, lambda h: (h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0)), h.send_camera_info(),
                       h.send_image(raw_image(height=0, width=0, n_bytes=0))),
        'rejected_image_decode_total', 'zero-sized'),
    'missing_camera_info': (
        {}, lambda h: (h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0)),
                       h.send_image(test_image(STAMP_NS))),
        'rejected_no_camera_info_total', 'no CameraInfo'),
    'camera_info_of_another_size': (
        {}, lambda h: (h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0)),
                       h.send_camera_info(hw=(48, 96)), h.send_image(test_image(STAMP_NS))),
        'rejected_camera_info_mismatch_total', 'remap the matching camera_info'),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_bad_input_is_counted_warned_and_survived(ros_isolation, tif, case):
    overrides, action, key, words = CASES[case]
    with NodeHarness(base_overrides(tif, **overrides), ScriptedLocalizer()) as h:
        action(h)
        counted_and_warned(h, key, words)
        assert not h.poses
        good_frame_still_localizes(h)


def test_stamps_going_backwards_reset_the_fix_cache(ros_isolation, tif):
    with NodeHarness(base_overrides(tif), ScriptedLocalizer()) as h:
        h.send_camera_info()
        h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0))
        h.send_image(test_image(STAMP_NS))
        h.spin_until(lambda: len(h.poses) == 1, 5.0, 'first pose')
        # bag loop: the drive starts again 100 s earlier, with its own fixes
        earlier = STAMP_NS - 100 * 10**9
        h.send_fix(earlier, *en_to_latlon(2.0, 0.0))
        h.send_image(test_image(earlier))
        h.spin_until(lambda: len(h.poses) == 2, 5.0, 'pose after the loop')
        assert h.poses[-1].header.stamp == ns_to_stamp(earlier)
        diag = h.last_diagnostics()
        assert int(diag['time_jumps_total']) >= 2  # fix cache reset + image stamps jumped


def test_unreadable_map_file_refuses_to_start(ros_isolation, tmp_path):
    from geodistill_ros.satellite import MapSourceError
    bad = tmp_path / 'broken.tif'
    bad.write_bytes(b'not a tiff at all')
    with pytest.raises(MapSourceError, match='broken.tif'):
        NodeHarness(base_overrides(bad), ScriptedLocalizer())
    with pytest.raises(FileNotFoundError, match='missing.tif'):
        NodeHarness(base_overrides(tmp_path / 'missing.tif'), ScriptedLocalizer())


def test_compressed_garbage_is_rejected(ros_isolation, tif):
    overrides = base_overrides(tif, image_transport='compressed')
    with NodeHarness(overrides, ScriptedLocalizer(), compressed=True) as h:
        h.send_camera_info()
        h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0))
        h.send_image(truncated_jpeg())
        counted_and_warned(h, 'rejected_image_decode_total', 'truncated jpeg')
        empty = CompressedImage(format='png')
        empty.header.stamp = ns_to_stamp(STAMP_NS)
        h.send_image(empty)
        h.spin_until(lambda: h.node.stats.rejections_total['image_decode'] == 2, 5.0,
                     'second rejection')
        h.send_image(test_image(STAMP_NS, compressed=True))
        h.spin_until(lambda: h.poses, 5.0, 'a pose')


def test_non_finite_localizer_output_is_rejected(ros_isolation, tif):
    scripted = ScriptedLocalizer(covariance_en_m2=np.array([[np.nan, 0.0], [0.0, 1.0]]))
    with NodeHarness(base_overrides(tif), scripted) as h:
        h.send_camera_info()
        h.send_fix(STAMP_NS, *en_to_latlon(0.0, 0.0))
        h.send_image(test_image(STAMP_NS))
        diag = counted_and_warned(h, 'rejected_non_finite_result_total', 'NaN/inf')
        assert diag['_level'] == b'\x02'  # every image rejected: ERROR
        assert not h.poses
