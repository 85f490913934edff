"""Parameters: descriptors, start-up validation with clear reasons, run-time changes."""
import math

import pytest

rclpy = pytest.importorskip('rclpy')
from rcl_interfaces.msg import ParameterType  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from test_node_harness import (  # noqa: E402
    CENTRE_LAT_DEG,
    CENTRE_LON_DEG,
    ScriptedLocalizer,
    base_overrides,
    write_geotiff,
)

from geodistill_ros.node.config import config_from_values  # noqa: E402
from geodistill_ros.node.localizer_node import LocalizerNode  # noqa: E402
from geodistill_ros.node.model_loading import resolve_device  # noqa: E402
from geodistill_ros.node.params import PARAMETERS, SPECS, ParameterError, check_value  # noqa: E402

pytestmark = pytest.mark.ros
DATUM = {'datum.latitude_deg': CENTRE_LAT_DEG, 'datum.longitude_deg': CENTRE_LON_DEG,
         'map_source.path': 'map.tif'}


@pytest.fixture(scope='module')
def tif(tmp_path_factory):
    return write_geotiff(tmp_path_factory.mktemp('node_params_map') / 'map.tif')


@pytest.fixture
def context(ros_isolation):
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def make_node(context, tif, localizer=None, **overrides):
    return LocalizerNode(localizer=localizer or ScriptedLocalizer(), context=context,
                         parameter_overrides=base_overrides(tif, **overrides))


# --- pure validation ----------------------------------------------------------------------

@pytest.mark.parametrize('name, value, words', [
    ('crop_size_px', 0, 'crop_size_px must be in [16, 8192], got 0'),
    ('crop_size_px', -5, 'crop_size_px must be in'),
    ('crop_size_m', 100, 'write 100.0, not 100'),
    ('crop_size_m', math.nan, 'must be finite'),
    ('device', 'tpu', "device must be one of ['auto', 'cuda', 'cpu'], got 'tpu'"),
    ('precision', 'int8', 'precision must be one of'),
    ('low_confidence_policy', 'ignore', 'low_confidence_policy must be one of'),
    ('min_confidence', 1.5, 'min_confidence must be in [0.0, 1.0]'),
    ('publish_tf', 'yes', 'publish_tf must be a bool'),
    ('map_source.zoom', True, 'map_source.zoom must be a int'),
    ('camera_model', 'fisheye', 'camera_model must be one of'),
])
def test_bad_values_are_rejected_with_the_reason(name, value, words):
    assert words in check_value(name, value)
    with pytest.raises(ParameterError, match='invalid parameter'):
        config_from_values({**DATUM, name: value})


def test_defaults_are_valid_and_in_range():
    for spec in PARAMETERS:
        if not spec.required:
            assert spec.check(spec.default) is None, spec.name
    config = config_from_values(DATUM)
    assert config.device == 'auto' and not config.publish_tf
    assert config.datum.lat_deg == CENTRE_LAT_DEG


def test_the_camera_weight_distance_reaches_the_filter():
    assert config_from_values(DATUM).fusion.camera_weight_distance_m == 0.8
    config = config_from_values({**DATUM, 'fusion.camera_weight_distance_m': 0.0})
    assert config.fusion.camera_weight_distance_m == 0.0
    assert 'must be in [0.0, 100.0]' in check_value('fusion.camera_weight_distance_m', -1.0)


def test_missing_datum_is_a_clear_error_unless_from_first_fix():
    with pytest.raises(ParameterError, match='datum is not set.*datum.from_first_fix'):
        config_from_values({'map_source.path': 'map.tif'})
    config = config_from_values({'map_source.path': 'map.tif', 'datum.from_first_fix': True})
    assert config.datum is None and config.datum_from_first_fix


def test_descriptors_carry_ranges_choices_and_read_only():
    crop = SPECS['crop_size_px'].descriptor()
    assert (crop.integer_range[0].from_value, crop.integer_range[0].to_value) == (16, 8192)
    assert not crop.read_only
    device = SPECS['device'].descriptor()
    assert device.read_only and 'auto, cuda, cpu' in device.additional_constraints
    for name in ('location_checkpoint', 'orientation_checkpoint', 'device', 'precision',
                 'map_source.kind', 'map_source.path', 'camera_model', 'datum.latitude_deg'):
        assert SPECS[name].read_only, name
    assert SPECS['min_confidence'].descriptor().floating_point_range[0].to_value == 1.0
    assert all(spec.description for spec in PARAMETERS)


@pytest.mark.parametrize('requested, cuda, expected, words', [
    ('auto', False, 'cpu', "device 'auto': CUDA is not available, running on CPU"),
    ('auto', True, 'cuda', None),
    ('cuda', False, 'cpu', 'falling back to CPU'),
    ('cuda', True, 'cuda', None),
    ('cpu', True, 'cpu', None),
])
def test_device_resolution_and_fallback_message(requested, cuda, expected, words):
    device, message = resolve_device(requested, cuda_available=cuda)
    assert device == expected
    assert (message is None) if words is None else (words in message)


# --- on a node ------------------------------------------------------------------------------

def test_node_declares_every_parameter_with_its_descriptor(context, tif):
    node = make_node(context, tif)
    try:
        for spec in PARAMETERS:
            assert node.has_parameter(spec.name), spec.name
            descriptor = node.describe_parameter(spec.name)
            assert descriptor.description == spec.description
            assert descriptor.read_only == spec.read_only
        assert node.describe_parameter('datum.latitude_deg').type == ParameterType.PARAMETER_DOUBLE
        assert node.get_parameter('crop_size_m').value == 32.0  # the override
        assert node.get_parameter('warning_throttle_s').value == 0.0
    finally:
        node.destroy_node()


@pytest.mark.parametrize('overrides, words', [
    ({'crop_size_px': 0}, 'crop_size_px must be in [16, 8192], got 0'),
    ({'device': 'tpu'}, "device must be one of ['auto', 'cuda', 'cpu'], got 'tpu'"),
    ({'crop_size_m': 50}, 'write 50.0, not 50'),
    ({'map_source.path': ''}, 'map_source.path is empty'),
    ({'map_source.kind': 'xyz'}, 'map_source.root is empty'),
])
def test_node_refuses_to_start_on_bad_overrides(context, tif, overrides, words):
    with pytest.raises(ParameterError) as info:
        LocalizerNode(context=context, parameter_overrides=base_overrides(tif, **overrides))
    assert words in str(info.value)


def test_node_refuses_a_model_for_another_camera(context, tif):
    with pytest.raises(ParameterError, match="camera_model is 'pinhole' but .* 'panorama'"):
        make_node(context, tif, localizer=ScriptedLocalizer(camera_model='panorama'))


def test_run_time_changes_are_validated(context, tif):
    node = make_node(context, tif)
    try:
        results = node.set_parameters([
            Parameter('crop_size_px', value=0), Parameter('device', value='cpu'),
            Parameter('low_confidence_policy', value='maybe'),
            Parameter('crop_size_m', value=40), Parameter('min_confidence', value=0.25)])
        failed = {r.reason for r in results if not r.successful}
        assert any('crop_size_px' in r and '16' in r for r in failed)
        assert any('read-only' in r and 'device' in r for r in failed)
        assert any("low_confidence_policy must be one of ['drop', 'inflate']" in r
                   for r in failed)
        assert any('Wrong parameter type' in r for r in failed)  # 40 is not a double
        assert results[-1].successful
        assert node.config.min_confidence == 0.25
        assert node.config.crop_size_px == 64 and node.config.device == 'cpu'
    finally:
        node.destroy_node()


def test_datum_from_first_fix_places_the_map_origin(context, tif):
    import test_node_harness as harness
    node = LocalizerNode(localizer=ScriptedLocalizer(), context=context, parameter_overrides=[
        Parameter('datum.from_first_fix', value=True),
        Parameter('map_source.path', value=str(tif))])
    try:
        assert node.datum is None
        node.on_fix(harness.fix_msg(harness.STAMP_NS, math.nan, 8.0))  # rejected: no datum
        assert node.datum is None
        node.on_fix(harness.fix_msg(harness.STAMP_NS, CENTRE_LAT_DEG, CENTRE_LON_DEG,
                                    alt=112.5))
        assert (node.datum.lat_deg, node.datum.lon_deg, node.datum.alt_m) == (
            CENTRE_LAT_DEG, CENTRE_LON_DEG, 112.5)
    finally:
        node.destroy_node()
