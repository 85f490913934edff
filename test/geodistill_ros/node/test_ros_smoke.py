"""The ROS 2 stack works from the venv: two processes exchange messages over DDS."""
import math
import subprocess
import sys
import textwrap
import time

import pytest

rclpy = pytest.importorskip('rclpy')
from geometry_msgs.msg import PoseWithCovarianceStamped  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import NavSatFix, NavSatStatus  # noqa: E402

pytestmark = pytest.mark.ros

PUBLISHER = textwrap.dedent('''
    import time
    import rclpy
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import NavSatFix, NavSatStatus

    rclpy.init()
    node = rclpy.create_node('smoke_publisher')
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    fix_pub = node.create_publisher(NavSatFix, 'fix', qos)
    pose_pub = node.create_publisher(PoseWithCovarianceStamped, 'pose', qos)
    deadline = time.monotonic() + 30.0
    seq = 0
    while time.monotonic() < deadline:
        fix = NavSatFix()
        fix.header.frame_id = 'gps'
        fix.header.stamp.sec = 1317046945
        fix.header.stamp.nanosec = seq
        fix.status.status = NavSatStatus.STATUS_FIX
        fix.latitude, fix.longitude, fix.altitude = 49.015, 8.43, 116.4
        fix.position_covariance = [4.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 9.0]
        fix.position_covariance_type = NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
        fix_pub.publish(fix)
        pose = PoseWithCovarianceStamped()
        pose.header.frame_id = 'map'
        pose.header.stamp = fix.header.stamp
        pose.pose.pose.position.x, pose.pose.pose.position.y = 12.5, -3.25
        pose.pose.pose.orientation.z, pose.pose.pose.orientation.w = 0.5 ** 0.5, 0.5 ** 0.5
        pose.pose.covariance = [float(i) for i in range(36)]
        pose_pub.publish(pose)
        seq += 1
        time.sleep(0.05)
    node.destroy_node()
    rclpy.shutdown()
''')


def receive_from_publisher_process(publisher_env: dict, wait_s: float):
    """Run PUBLISHER in a subprocess; subscribe here until both topics arrived or wait_s."""
    proc = subprocess.Popen([sys.executable, '-c', PUBLISHER], env=publisher_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    context = rclpy.Context()
    rclpy.init(context=context)
    got = {}
    try:
        node = rclpy.create_node('smoke_subscriber', context=context)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(NavSatFix, 'fix', lambda m: got.setdefault('fix', m), qos)
        node.create_subscription(PoseWithCovarianceStamped, 'pose',
                                 lambda m: got.setdefault('pose', m), qos)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + wait_s
        while len(got) < 2 and time.monotonic() < deadline and proc.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
        proc.kill()
        output = proc.communicate()[0].decode(errors='replace')
    return got, output


def test_navsatfix_and_pose_cross_process_over_dds(ros_isolation):
    got, output = receive_from_publisher_process(ros_isolation, wait_s=25.0)
    assert set(got) == {'fix', 'pose'}, f'no DDS traffic received; publisher said:\n{output}'
    fix, pose = got['fix'], got['pose']
    assert fix.status.status == NavSatStatus.STATUS_FIX
    assert (fix.latitude, fix.longitude, fix.altitude) == (49.015, 8.43, 116.4)
    assert list(fix.position_covariance) == [4.0, 0, 0, 0, 4.0, 0, 0, 0, 9.0]
    assert fix.header.stamp.sec == 1317046945
    assert pose.header.frame_id == 'map'
    assert (pose.pose.pose.position.x, pose.pose.pose.position.y) == (12.5, -3.25)
    assert pose.pose.pose.orientation.z == pytest.approx(math.sqrt(0.5))
    assert list(pose.pose.covariance) == [float(i) for i in range(36)]


def test_isolation_environment_is_set(ros_isolation):
    assert 1 <= int(ros_isolation['ROS_DOMAIN_ID']) <= 100
    assert ros_isolation['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'


def test_other_domain_receives_nothing(ros_isolation):
    """Counter-example: the isolation is real, a publisher on another domain is unheard."""
    other = dict(ros_isolation)
    other['ROS_DOMAIN_ID'] = str(int(ros_isolation['ROS_DOMAIN_ID']) % 100 + 1)
    got, _ = receive_from_publisher_process(other, wait_s=3.0)
    assert got == {}
