"""load_localizer: which errors name yaw_search and which pass through unchanged."""
import json
import shutil

import pytest

pytest.importorskip('rclpy')
from test_node_harness import CENTRE_LAT_DEG, CENTRE_LON_DEG  # noqa: E402

from geodistill_core.localizer import ASSETS_DIR, YawSearchUnsupported  # noqa: E402
from geodistill_ros.node import model_loading  # noqa: E402
from geodistill_ros.node.config import config_from_values  # noqa: E402
from geodistill_ros.node.params import ParameterError  # noqa: E402

DATUM = {'datum.latitude_deg': CENTRE_LAT_DEG, 'datum.longitude_deg': CENTRE_LON_DEG,
         'map_source.path': 'map.tif', 'camera_model': 'pinhole'}


@pytest.fixture
def broken_checkpoint(tmp_path):
    """The default pinhole model with a truncated config.json."""
    path = tmp_path / 'broken'
    shutil.copytree(ASSETS_DIR / 'default_pinhole_location', path)
    (path / 'config.json').write_text((path / 'config.json').read_text()[:200])
    return path


@pytest.mark.parametrize('yaw_search', ['rotation', 'none', 'auto'])
def test_a_broken_checkpoint_is_reported_as_such_in_every_yaw_search_mode(broken_checkpoint,
                                                                          yaw_search):
    config = config_from_values({**DATUM, 'location_checkpoint': str(broken_checkpoint),
                                 'yaw_search': yaw_search})
    with pytest.raises(ValueError) as info:
        model_loading.load_localizer(config, 'cpu', log=lambda m: None)
    assert not isinstance(info.value, ParameterError)
    assert 'yaw_search' not in str(info.value)   # not blamed on an unrelated parameter
    with pytest.raises(json.JSONDecodeError):
        json.loads((broken_checkpoint / 'config.json').read_text())


def _refusing_build(calls):
    real = model_loading._build

    def build(Localizer, config, device, precision, search):
        calls.append(dict(search))
        if search.get('yaw_search') == 'rotation':
            raise YawSearchUnsupported("yaw_search='rotation' needs a correlation model")
        return real(Localizer, config, device, precision, search)
    return build


def test_an_unsupported_rotation_search_names_the_parameter_when_asked_for(monkeypatch):
    calls = []
    monkeypatch.setattr(model_loading, '_build', _refusing_build(calls))
    config = config_from_values({**DATUM, 'yaw_search': 'rotation'})
    with pytest.raises(ParameterError, match="yaw_search 'rotation': .*set yaw_search to "
                                             "'none' or 'model'"):
        model_loading.load_localizer(config, 'cpu', log=lambda m: None)
    assert calls == [{'yaw_search': 'rotation'}]


def test_auto_falls_back_to_the_prior_and_says_so(monkeypatch):
    calls, logged = [], []
    monkeypatch.setattr(model_loading, '_build', _refusing_build(calls))
    config = config_from_values({**DATUM, 'yaw_search': 'auto'})
    localizer = model_loading.load_localizer(config, 'cpu', log=logged.append)
    assert localizer.yaw_search == 'none'
    assert calls == [{'yaw_search': 'rotation'}, {'yaw_search': 'none'}]
    assert any("no rotation search for this model" in m for m in logged)
