"""The course over ground of a GNSS velocity as the yaw prior: math, messages, order."""
import math

import pytest

pytest.importorskip('rclpy')
from geometry_msgs.msg import TwistStamped, TwistWithCovarianceStamped  # noqa: E402

from geodistill_ros.node.config import config_from_values  # noqa: E402
from geodistill_ros.node.heading import (  # noqa: E402
    HeadingSample,
    VelocityHeading,
    choose_yaw_prior,
    next_velocity_heading,
    velocity_heading,
    velocity_heading_from_msg,
)
from geodistill_ros.node.messages import ns_to_stamp  # noqa: E402

CONFIG = config_from_values({'datum.latitude_deg': 49.0, 'datum.longitude_deg': 8.4,
                             'map_source.path': 'x.tif'})
T = 10**18


@pytest.mark.parametrize('east, north, yaw_deg', [(8.0, 0.0, 0.0), (0.0, 8.0, 90.0),
                                                  (-5.0, 0.0, 180.0), (3.0, -3.0, -45.0)])
def test_course_is_the_direction_of_the_velocity_in_enu(east, north, yaw_deg):
    sample = velocity_heading(T, east, north, None, 2.0, 0.1)
    assert math.degrees(sample.yaw_rad) == pytest.approx(yaw_deg)
    assert sample.stamp_ns == T


def test_course_std_is_the_cross_track_sigma_over_the_speed():
    # driving east at 10 m/s: the cross-track axis is north (sigma 0.3), not east (2.0)
    sample = velocity_heading(T, 10.0, 0.0, [[4.0, 0.0], [0.0, 0.09]], 2.0, 0.1)
    assert sample.std_rad == pytest.approx(0.3 / 10.0)
    # driving north-east: u = (-1, 1)/sqrt(2): var = (cee - 2 cen + cnn) / 2
    cov = [[0.04, 0.01], [0.01, 0.09]]
    sample = velocity_heading(T, 4.0, 4.0, cov, 2.0, 0.1)
    var = (0.04 - 2 * 0.01 + 0.09) / 2
    assert sample.std_rad == pytest.approx(math.sqrt(var) / math.hypot(4.0, 4.0))
    # no covariance (or all zero): the configured sigma per axis
    for unknown in (None, [[0.0, 0.0], [0.0, 0.0]]):
        assert velocity_heading(T, 0.0, 5.0, unknown, 2.0, 0.2).std_rad == pytest.approx(0.04)


@pytest.mark.parametrize('east, north, cov, reason', [
    (1.0, 1.0, None, 'slow'),  # 1.41 m/s below 2 m/s: the course is noise
    (math.nan, 5.0, None, 'non_finite'),
    (5.0, 0.0, [[math.inf, 0.0], [0.0, 1.0]], 'non_finite'),
    (5.0, 0.0, [[-1.0, 0.0], [0.0, 1.0]], 'negative_variance'),
])
def test_no_course_from_slow_or_bad_velocities(east, north, cov, reason):
    assert velocity_heading(T, east, north, cov, 2.0, 0.1) == reason


def test_both_message_types_are_read():
    with_cov = TwistWithCovarianceStamped()
    with_cov.header.stamp = ns_to_stamp(T + 5)
    with_cov.twist.twist.linear.x, with_cov.twist.twist.linear.y = 0.0, -6.0
    cov = [0.0] * 36
    cov[0], cov[7] = 0.36, 0.01
    with_cov.twist.covariance = cov
    sample = velocity_heading_from_msg(with_cov, 2.0, 0.1)
    assert (sample.stamp_ns, math.degrees(sample.yaw_rad)) == (T + 5, pytest.approx(-90.0))
    assert sample.std_rad == pytest.approx(0.6 / 6.0)  # cross-track = east
    plain = TwistStamped()
    plain.header.stamp = ns_to_stamp(T)
    plain.twist.linear.x = 6.0
    assert velocity_heading_from_msg(plain, 2.0, 0.3).std_rad == pytest.approx(0.05)


def test_prior_order_topic_velocity_track_and_age():
    velocity = VelocityHeading(T - 10**8, 0.5, 0.01)
    heading = HeadingSample(T - 10**8, 1.0)
    assert choose_yaw_prior(CONFIG, T, heading, 2.0, velocity).source == 'topic'
    prior = choose_yaw_prior(CONFIG, T, None, 2.0, velocity)
    # searched within +-4 stated stds (fusion.yaw_window_sigmas), at least 3 deg
    # (fusion.yaw_min_range_deg): 4 x 0.57 deg is below that floor
    assert (prior.source, prior.yaw_rad, prior.range_deg, prior.std_rad) == (
        'velocity', 0.5, 3.0, 0.01)
    stale = VelocityHeading(T - 5 * 10**9, 0.5, 0.01)  # older than heading_max_age_s
    assert choose_yaw_prior(CONFIG, T, None, 2.0, stale).source == 'track'
    forced = config_from_values({'datum.latitude_deg': 49.0, 'datum.longitude_deg': 8.4,
                                 'map_source.path': 'x.tif', 'heading_source': 'velocity'})
    assert choose_yaw_prior(forced, T, heading, 2.0, velocity).source == 'velocity'
    assert choose_yaw_prior(forced, T, heading, 2.0, None).source == 'fixed'


def test_the_course_kept_after_each_message():
    good = VelocityHeading(T, 0.5, 0.01)
    newer = VelocityHeading(T + 10**8, 0.6, 0.01)
    assert next_velocity_heading(good, newer) is newer
    assert next_velocity_heading(good, 'slow') is None  # standing: the next source
    for reason in ('non_finite', 'negative_variance'):  # rejected: the last good one stays
        assert next_velocity_heading(good, reason) is good


@pytest.mark.parametrize('sigma_deg, range_deg', [(0.0, 20.0), (0.5, 3.0), (3.0, 12.0),
                                                  (10.0, 20.0)])
def test_a_stated_heading_accuracy_sets_the_topics_std_and_search_range(sigma_deg, range_deg):
    """heading_prior_sigma_deg: 0 = no stated accuracy (the configured range, no std);
    otherwise std = the sigma and the range 4 sigma within [3, yaw_prior_range_deg] deg."""
    config = config_from_values({'datum.latitude_deg': 49.0, 'datum.longitude_deg': 8.4,
                                 'map_source.path': 'x.tif',
                                 'heading_prior_sigma_deg': sigma_deg})
    prior = choose_yaw_prior(config, T, HeadingSample(T, 1.0), 2.0)
    assert prior.source == 'topic' and prior.range_deg == pytest.approx(range_deg)
    if sigma_deg == 0.0:
        assert prior.std_rad is None
    else:
        assert prior.std_rad == pytest.approx(math.radians(sigma_deg))
