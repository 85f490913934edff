"""Shared fixtures. ROS tests run on a random domain with localhost-only discovery."""
import os
import random

import pytest


@pytest.fixture
def ros_isolation(monkeypatch):
    """Isolate DDS traffic: a random ROS_DOMAIN_ID and localhost-only discovery.

    Set before rclpy.init (rmw reads the environment there) and inherited by any
    subprocess the test starts. Returns the environment dict for subprocesses.
    """
    domain = str(random.SystemRandom().randint(1, 100))
    monkeypatch.setenv('ROS_DOMAIN_ID', domain)
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    monkeypatch.setenv('ROS_LOCALHOST_ONLY', '1')  # pre-Jazzy spelling, harmless on Kilted
    monkeypatch.setenv('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    return dict(os.environ)
