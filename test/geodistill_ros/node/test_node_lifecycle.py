"""The managed (lifecycle) node over DDS, driven through its lifecycle_msgs services.

``autostart: false``: nothing is loaded, subscribed or published until a lifecycle
manager calls ~/change_state (configure, then activate); deactivate stops the outputs,
cleanup releases model, map and publishers, and the node configures and activates again.
"""
import pytest

rclpy = pytest.importorskip('rclpy')
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from test_node_harness import (  # noqa: E402
    STAMP_NS,
    NodeHarness,
    ScriptedLocalizer,
    base_overrides,
    camera_info_msg,
    en_to_latlon,
    fix_msg,
    test_image,
    write_geotiff,
)

pytestmark = pytest.mark.ros
FIX_LATLON = en_to_latlon(5.0, -3.0)


@pytest.fixture(scope='module')
def tif(tmp_path_factory):
    return write_geotiff(tmp_path_factory.mktemp('lifecycle_map') / 'map.tif')


class Lifecycle:
    """A lifecycle manager's view of the node: ~/get_state and ~/change_state clients."""

    def __init__(self, harness):
        self.h = harness
        name = harness.node.get_fully_qualified_name()
        self.change = harness.tester.create_client(ChangeState, f'{name}/change_state')
        self.get = harness.tester.create_client(GetState, f'{name}/get_state')
        harness.spin_until(lambda: self.change.service_is_ready()
                           and self.get.service_is_ready(), 10.0, 'the lifecycle services')

    def _call(self, client, request):
        future = client.call_async(request)
        self.h.spin_until(future.done, 15.0, f'{client.srv_name} to answer')
        return future.result()

    def state(self) -> str:
        return self._call(self.get, GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self._call(self.change, request).success


def send_frame(h, stamp_ns: int) -> None:
    """A fix and an image at stamp_ns, published without waiting for the node."""
    h.info_pub.publish(camera_info_msg())
    h.fix_pub.publish(fix_msg(stamp_ns, *FIX_LATLON))
    h.spin_for(0.1)
    h.image_pub.publish(test_image(stamp_ns))




def localize(h, stamp_ns: int):
    """A frame through an active node: its pose arrives."""
    before = len(h.poses)
    h.send_camera_info()
    h.send_fix(stamp_ns, *FIX_LATLON)
    h.send_image(test_image(stamp_ns))
    h.spin_until(lambda: len(h.poses) > before, 5.0, 'a pose')
    return h.poses[-1]


def assert_silent(h, seconds: float = 0.6) -> None:
    """Inputs sent during ``seconds`` give no pose and are not even received."""
    poses, images = len(h.poses), h.node.stats.count('image')
    send_frame(h, STAMP_NS + 7)
    h.spin_for(seconds)
    assert len(h.poses) == poses
    assert h.node.stats.count('image') == images


def test_autostart_false_waits_for_configure_and_activate(ros_isolation, tif):
    scripted = ScriptedLocalizer(offset_en_m=(1.0, 2.0))
    overrides = base_overrides(tif, autostart=False)
    with NodeHarness(overrides, scripted, discover=False) as h:
        lifecycle = Lifecycle(h)
        assert lifecycle.state() == 'unconfigured'
        assert h.node.config is None and h.node.map_source is None
        assert not scripted.warmed_up  # nothing loaded before configure
        assert h.tester.count_publishers('pose') == 0
        assert h.tester.count_subscribers('image') == 0
        assert_silent(h)

        assert lifecycle.transition(Transition.TRANSITION_CONFIGURE)
        assert lifecycle.state() == 'inactive'
        assert scripted.warmed_up and h.node.map_source is not None
        h.spin_until(lambda: h.tester.count_publishers('pose') > 0, 5.0, 'the pose publisher')
        assert h.tester.count_subscribers('image') == 0  # inactive: no input yet
        assert_silent(h)

        assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
        assert lifecycle.state() == 'active'
        h.wait_for_discovery()
        pose = localize(h, STAMP_NS + 100)
        assert (pose.header.stamp.sec, pose.header.stamp.nanosec) == (1317046945, 100)
        assert any('ready:' in log.msg for log in h.logs)


def test_deactivate_cleanup_and_reactivation(ros_isolation, tif):
    scripted = ScriptedLocalizer(offset_en_m=(1.0, 2.0))
    with NodeHarness(base_overrides(tif), scripted) as h:  # autostart: active at once
        lifecycle = Lifecycle(h)
        assert lifecycle.state() == 'active'
        localize(h, STAMP_NS + 1)

        assert lifecycle.transition(Transition.TRANSITION_DEACTIVATE)
        assert lifecycle.state() == 'inactive'
        h.spin_until(lambda: h.image_pub.get_subscription_count() == 0, 5.0, 'unsubscribing')
        assert_silent(h)
        h.spin_for(0.3)
        diagnostics = len(h.diagnostics)
        h.spin_for(0.6)  # three diagnostics periods
        assert len(h.diagnostics) == diagnostics, 'diagnostics published while inactive'

        source = h.node.map_source
        assert lifecycle.transition(Transition.TRANSITION_CLEANUP)
        assert lifecycle.state() == 'unconfigured'
        assert h.node.localizer is None and h.node.map_source is None
        assert h.node.config is None and h.node.io is None
        assert source._dataset.closed  # the GeoTIFF the node opened is closed
        h.spin_until(lambda: h.tester.count_publishers('pose') == 0, 5.0,
                     'the pose publisher to go')

        calls = len(scripted.calls)
        assert lifecycle.transition(Transition.TRANSITION_CONFIGURE)
        assert lifecycle.transition(Transition.TRANSITION_ACTIVATE)
        h.wait_for_discovery()
        localize(h, STAMP_NS + 2)
        assert len(scripted.calls) == calls + 1

        assert lifecycle.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
        assert lifecycle.state() == 'finalized'
        assert h.node.localizer is None and h.node.io is None


def test_failed_configure_stays_unconfigured_with_one_error(ros_isolation, tif, tmp_path):
    missing = tmp_path / 'missing.tif'
    overrides = base_overrides(tif, autostart=False)
    overrides = [p for p in overrides if p.name != 'map_source.path']
    overrides.append(Parameter('map_source.path', value=str(missing)))
    with NodeHarness(overrides, ScriptedLocalizer(), discover=False) as h:
        lifecycle = Lifecycle(h)
        assert not lifecycle.transition(Transition.TRANSITION_CONFIGURE)
        assert lifecycle.state() == 'unconfigured'
        error = h.wait_warning('cannot configure')
        assert str(missing) in error and '\n' not in error
        assert len([w for w in h.warnings() if 'cannot configure' in w]) == 1
        assert h.node.map_source is None and h.tester.count_publishers('pose') == 0
