"""launch/localize.launch.py and config/localize.yaml agree with the package and the node.

`launch` and `launch_ros` are not installable here, so the launch file runs against small
fake modules that record every constructor call; the checks are what a real
`ros2 launch geodistill_ros localize.launch.py` depends on: the package name, the
executable in setup.py console_scripts, the params file installed to share/, remappings
onto the node's real topic names and use_sim_time as a typed launch argument.
"""
import ast
import importlib.util
from pathlib import Path
import sys
import types
import xml.etree.ElementTree as ET

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / 'launch' / 'localize.launch.py'
CONFIG_FILE = ROOT / 'config' / 'localize.yaml'
PACKAGE = ET.parse(ROOT / 'package.xml').getroot().findtext('name')


class Recorded:
    """A fake launch object: remembers its positional and keyword arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __repr__(self):
        return f'{type(self).__name__}{self.args}{self.kwargs}'


def fake_launch_modules() -> dict:
    classes = {name: type(name, (Recorded,), {}) for name in (
        'LaunchDescription', 'DeclareLaunchArgument', 'LaunchConfiguration',
        'PathJoinSubstitution', 'Node', 'ParameterValue', 'FindPackageShare')}
    layout = {
        'launch': ['LaunchDescription'],
        'launch.actions': ['DeclareLaunchArgument'],
        'launch.substitutions': ['LaunchConfiguration', 'PathJoinSubstitution'],
        'launch_ros': [],
        'launch_ros.actions': ['Node'],
        'launch_ros.parameter_descriptions': ['ParameterValue'],
        'launch_ros.substitutions': ['FindPackageShare'],
    }
    modules = {}
    for name, members in layout.items():
        module = types.ModuleType(name)
        for member in members:
            setattr(module, member, classes[member])
        modules[name] = module
    return modules


@pytest.fixture
def description(monkeypatch):
    """The LaunchDescription the launch file returns, built from the fakes."""
    for name, module in fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location('localize_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def console_scripts() -> dict:
    tree = ast.parse((ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    entries = [ast.literal_eval(e) for e in value.elts]
                    return dict((s.strip() for s in e.split('=', 1)) for e in entries)
    raise AssertionError('setup.py has no console_scripts')


def flatten(tree: dict, prefix: str = '') -> dict:
    flat = {}
    for key, value in tree.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(flatten(value, name + '.'))
        else:
            flat[name] = value
    return flat


def yaml_parameters() -> dict:
    document = yaml.safe_load(CONFIG_FILE.read_text())
    assert list(document) == ['/**'], 'params file must apply to any node name: /**'
    return flatten(document['/**']['ros__parameters'])


# --- the launch file as source --------------------------------------------------------------

def test_launch_file_is_python_that_imports_only_launch_modules():
    tree = ast.parse(LAUNCH_FILE.read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported and all(m.split('.')[0] in {'launch', 'launch_ros'} for m in imported)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions


def test_executable_exists_in_console_scripts_and_resolves():
    scripts = console_scripts()
    assert 'localizer_node' in scripts
    module_name, function = scripts['localizer_node'].split(':')
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function))
    installed = Path(sys.executable).parent / 'localizer_node'
    assert installed.exists(), 'run `make setup` (pip install -e .) to create the script'


# --- the launch description -------------------------------------------------------------------

def declared_arguments(description) -> dict:
    return {a.args[0]: a.kwargs for a in description.args[0]
            if type(a).__name__ == 'DeclareLaunchArgument'}


def the_node(description):
    nodes = [a for a in description.args[0] if type(a).__name__ == 'Node']
    assert len(nodes) == 1
    return nodes[0].kwargs


def test_node_action_names_this_package_executable_and_node(description):
    from geodistill_ros.node.localizer_node import NODE_NAME
    node = the_node(description)
    assert node['package'] == PACKAGE == 'geodistill_ros'
    assert node['executable'] == 'localizer_node'
    assert node['name'] == NODE_NAME


def test_params_file_defaults_to_the_installed_config(description):
    args = declared_arguments(description)
    default = args['params_file']['default_value']
    assert type(default).__name__ == 'PathJoinSubstitution'
    share, *relative = default.args[0]
    assert type(share).__name__ == 'FindPackageShare' and share.args == (PACKAGE,)
    assert (ROOT.joinpath(*relative)) == CONFIG_FILE and CONFIG_FILE.is_file()
    setup = (ROOT / 'setup.py').read_text()
    assert "'share/' + PACKAGE_NAME + '/config', glob('config/*.yaml')" in setup
    parameters = the_node(description)['parameters']
    assert type(parameters[0]).__name__ == 'LaunchConfiguration'
    assert parameters[0].args == ('params_file',)


def test_use_sim_time_is_a_bool_launch_argument(description):
    args = declared_arguments(description)
    assert args['use_sim_time']['default_value'] == 'false'
    overrides = the_node(description)['parameters'][1]
    value = overrides['use_sim_time']
    assert type(value).__name__ == 'ParameterValue' and value.kwargs['value_type'] is bool
    assert value.args[0].args == ('use_sim_time',)


def test_autostart_is_a_bool_launch_argument_for_the_node_parameter(description):
    from geodistill_ros.node.params import SPECS
    args = declared_arguments(description)
    assert args['autostart']['default_value'] == 'true' and SPECS['autostart'].default is True
    value = the_node(description)['parameters'][1]['autostart']
    assert type(value).__name__ == 'ParameterValue' and value.kwargs['value_type'] is bool
    assert value.args[0].args == ('autostart',)


def test_every_launch_configuration_is_declared(description):
    declared = set(declared_arguments(description))
    node = the_node(description)
    used = []

    def collect(value):
        if type(value).__name__ == 'LaunchConfiguration':
            used.append(value.args[0])
        elif isinstance(value, Recorded):
            for item in list(value.args) + list(value.kwargs.values()):
                collect(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    collect(list(node.values()))
    assert used and set(used) <= declared


def test_remappings_target_the_node_topics(description, ros_isolation, tmp_path):
    remappings = dict(the_node(description)['remappings'])
    assert set(remappings) == {'image', 'image/compressed', 'camera_info', 'fix',
                               'heading_prior', 'gnss_velocity', 'twist', 'odom'}
    for target in remappings.values():
        assert type(target).__name__ == 'LaunchConfiguration'
    subscribed = set()
    for transport, odometry in (('raw', 'twist'), ('compressed', 'odometry')):
        with started_node(tmp_path, image_transport=transport,
                          **{'fusion.odometry': odometry}) as node:
            subscribed |= {s.topic_name for s in node.subscriptions}
            outputs = {p.topic_name for p in node.publishers}
    assert {'/' + name for name in remappings} <= subscribed
    assert {'/pose', '/pose_single', '/fix_corrected', '/heatmap', '/diagnostics'} <= outputs


# --- config/localize.yaml ---------------------------------------------------------------------

def test_every_yaml_parameter_is_declared_and_valid():
    from geodistill_ros.node.params import SPECS, unknown_parameters
    values = yaml_parameters()
    assert not unknown_parameters(values), 'params file keys the node does not declare'
    for name, value in values.items():
        assert SPECS[name].check(value) is None, SPECS[name].check(value)
    # documented keys: everything except the required datum, which users set
    missing = set(SPECS) - set(values)
    assert missing == {'datum.latitude_deg', 'datum.longitude_deg'}


def test_yaml_floats_are_written_as_floats():
    from geodistill_ros.node.params import SPECS
    for name, value in yaml_parameters().items():
        if isinstance(SPECS[name].default, float):
            assert isinstance(value, float), f'{name}: write {value}.0'


def node_test_harness():
    """test/geodistill_ros/node/test_node_harness.py (tiny GeoTIFF, scripted localizer)."""
    if 'test_node_harness' in sys.modules:
        return sys.modules['test_node_harness']
    path = ROOT / 'test' / 'geodistill_ros' / 'node' / 'test_node_harness.py'
    spec = importlib.util.spec_from_file_location('test_node_harness', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules['test_node_harness'] = module
    spec.loader.exec_module(module)
    return module


class started_node:
    """A LocalizerNode started with ``--params-file config/localize.yaml`` and -p style
    overrides, through rcl's own argument and YAML parsing (not python's)."""

    def __init__(self, tmp_path, **overrides):
        import rclpy

        harness = node_test_harness()
        self.rclpy = rclpy
        tif = harness.write_geotiff(tmp_path / 'map.tif')
        values = {'datum.latitude_deg': harness.CENTRE_LAT_DEG,
                  'datum.longitude_deg': harness.CENTRE_LON_DEG, 'map_source.path': str(tif),
                  **overrides}
        cli = ['--ros-args', '--params-file', str(CONFIG_FILE)]
        for name, value in values.items():
            cli += ['-p', f'{name}:={value}']
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        from geodistill_ros.node.localizer_node import LocalizerNode
        self.node = LocalizerNode(localizer=harness.ScriptedLocalizer(), context=self.context,
                                  cli_args=cli)

    def __enter__(self):
        return self.node

    def __exit__(self, *exc):
        self.node.destroy_node()
        self.rclpy.shutdown(context=self.context)


def test_node_starts_from_the_yaml_with_its_values(ros_isolation, tmp_path):
    values = yaml_parameters()
    with started_node(tmp_path) as node:
        for name, value in values.items():
            if name != 'map_source.path':  # overridden with -p
                assert node.get_parameter(name).value == value, name
        assert node.get_parameter('map_source.path').value.endswith('map.tif')
        assert node.config.datum is not None and not node.config.publish_tf
