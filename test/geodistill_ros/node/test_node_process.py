"""The console script as users start it: `localizer_node --ros-args --params-file ...`.

A separate process over DDS (isolated domain), the tiny random-weight checkpoint, the
shipped config/localize.yaml with -p overrides; start-up refusals exit 1 with the reason.
"""
from pathlib import Path
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseWithCovarianceStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, NavSatFix  # noqa: E402
from test_node_harness import (  # noqa: E402
    CENTRE_LAT_DEG,
    CENTRE_LON_DEG,
    STAMP_NS,
    camera_info_msg,
    en_to_latlon,
    fix_msg,
    test_image,
    write_geotiff,
)
from test_node_model import save_tiny_checkpoint  # noqa: E402

from geodistill_ros.node.topics import FIX_QOS, IMAGE_QOS, POSE_QOS  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(sys.executable).parent / 'localizer_node'


def command(**params) -> list[str]:
    cli = [str(SCRIPT), '--ros-args', '--params-file', str(ROOT / 'config' / 'localize.yaml')]
    for name, value in params.items():
        cli += ['-p', f'{name}:={value}']
    return cli


def run_to_exit(env, **params) -> tuple[int, str]:
    proc = subprocess.run(command(**params), env=env, capture_output=True, text=True,
                          timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('node_process')
    return write_geotiff(root / 'map.tif'), save_tiny_checkpoint(root / 'tiny_pinhole')


def test_console_script_localizes_over_dds_and_stops_cleanly(ros_isolation, files):
    assert SCRIPT.exists(), 'run `make setup` to install the console script'
    tif, checkpoint = files
    proc = subprocess.Popen(
        command(**{'datum.latitude_deg': CENTRE_LAT_DEG, 'datum.longitude_deg': CENTRE_LON_DEG,
                   'map_source.path': tif, 'location_checkpoint': checkpoint,
                   'crop_size_m': 32.0, 'crop_size_px': 64, 'device': 'cpu',
                   'diagnostics_period_s': 0.2}),
        env=ros_isolation, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    got = {'pose': [], 'diagnostics': []}
    try:
        node = rclpy.create_node('process_tester', context=context)
        image_pub = node.create_publisher(Image, 'image', IMAGE_QOS)
        info_pub = node.create_publisher(CameraInfo, 'camera_info',
                                         QoSProfile(depth=1,
                                                    reliability=ReliabilityPolicy.RELIABLE))
        fix_pub = node.create_publisher(NavSatFix, 'fix', FIX_QOS)
        node.create_subscription(PoseWithCovarianceStamped, 'pose', got['pose'].append,
                                 POSE_QOS)
        node.create_subscription(DiagnosticArray, '/diagnostics', got['diagnostics'].append,
                                 POSE_QOS)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 40.0
        stamp = STAMP_NS
        while not got['pose'] and time.monotonic() < deadline and proc.poll() is None:
            if image_pub.get_subscription_count():
                # keep sending: best-effort inputs and a node that may still be warming up
                stamp += 10**8
                info_pub.publish(camera_info_msg())
                fix_pub.publish(fix_msg(stamp, *en_to_latlon(2.0, 1.0)))
                executor.spin_once(timeout_sec=0.05)
                image_pub.publish(test_image(stamp))
            executor.spin_once(timeout_sec=0.1)
        while not got['diagnostics'] and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            output = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
    assert got['pose'], f'no pose from the node process; it said:\n{output}'
    pose = got['pose'][0]
    assert pose.header.frame_id == 'map'
    assert pose.header.stamp.sec >= STAMP_NS // 10**9  # the image stamp (2011), not now
    cov = np.array(pose.pose.covariance).reshape(6, 6)
    assert np.linalg.eigvalsh(cov).min() > 0.0
    assert got['diagnostics'][-1].status[0].name == 'geodistill_localizer: localization'
    assert output.count('ready:') == 1 and 'model on cpu' in output
    assert proc.returncode == 0, output


def test_console_script_refuses_to_start_with_the_reason(ros_isolation, files, tmp_path):
    tif, _ = files
    code, output = run_to_exit(ros_isolation, **{'map_source.path': tif})
    assert code == 1
    assert 'cannot start' in output and 'the map datum is not set' in output
    assert 'Traceback' not in output
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'config.json').write_text('{not json')
    (broken / 'model.safetensors').write_bytes(b'\x00' * 16)
    code, output = run_to_exit(
        ros_isolation, **{'datum.latitude_deg': CENTRE_LAT_DEG,
                          'datum.longitude_deg': CENTRE_LON_DEG, 'map_source.path': tif,
                          'location_checkpoint': broken, 'device': 'cpu'})
    assert code == 1 and 'cannot start' in output and str(broken) in output, output
