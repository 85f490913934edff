"""The node's `backend` parameter: declared read-only with its choices, validated, and the
Localizer the node loads runs on it (onnxruntime: the default model's cached export)."""
import pytest

pytest.importorskip('rclpy')
from test_node_harness import CENTRE_LAT_DEG, CENTRE_LON_DEG  # noqa: E402

from geodistill_core.export import runtime  # noqa: E402
from geodistill_ros.node.config import config_from_values  # noqa: E402
from geodistill_ros.node.model_loading import load_localizer  # noqa: E402
from geodistill_ros.node.params import SPECS, ParameterError, check_value  # noqa: E402

DATUM = {'datum.latitude_deg': CENTRE_LAT_DEG, 'datum.longitude_deg': CENTRE_LON_DEG,
         'map_source.path': 'map.tif'}


def test_backend_is_a_read_only_choice_defaulting_to_torch():
    spec = SPECS['backend']
    assert spec.default == 'torch' and spec.read_only
    assert spec.choices == ('torch', 'onnxruntime')
    assert config_from_values(DATUM).backend == 'torch'
    assert config_from_values({**DATUM, 'backend': 'onnxruntime'}).backend == 'onnxruntime'
    assert 'backend must be one of' in check_value('backend', 'tensorrt')
    with pytest.raises(ParameterError, match='invalid parameter'):
        config_from_values({**DATUM, 'backend': 'tensorrt'})


def test_node_loads_the_localizer_on_the_configured_backend(tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path))
    config = config_from_values({**DATUM, 'backend': 'onnxruntime', 'camera_model': 'pinhole'})
    localizer = load_localizer(config, 'cpu')
    assert localizer.backend == 'onnxruntime'
    assert localizer.onnx_runner.providers == ['CPUExecutionProvider']
    assert any(p.name == 'location.onnx' for p in tmp_path.rglob('*'))  # exported once
    torch_config = config_from_values({**DATUM, 'camera_model': 'pinhole'})
    assert load_localizer(torch_config, 'cpu').backend == 'torch'
