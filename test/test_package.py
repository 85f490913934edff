"""Package layout: what a ROS 2 engineer and colcon expect, version in one place."""
import ast
import configparser
from pathlib import Path
import xml.etree.ElementTree as ET

import geodistill_core
import geodistill_ros

ROOT = Path(__file__).resolve().parents[1]


def test_version_comes_from_package_xml():
    xml_version = ET.parse(ROOT / 'package.xml').getroot().findtext('version').strip()
    assert geodistill_core.__version__ == xml_version == geodistill_ros.__version__
    setup_src = (ROOT / 'setup.py').read_text()
    assert "version=package_xml_version()" in setup_src


def test_package_xml_format3_ament_python_and_depends():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.get('format') == '3'
    assert root.findtext('name') == 'geodistill_ros'
    assert root.find('export/build_type').text == 'ament_python'
    deps = {e.text for e in root.findall('exec_depend')}
    for msg in ('rclpy', 'sensor_msgs', 'geometry_msgs', 'nav_msgs', 'diagnostic_msgs',
                'std_msgs', 'lifecycle_msgs'):
        assert msg in deps


def test_setup_cfg_script_dirs_for_ros2_run():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'setup.cfg')
    assert cfg['develop']['script_dir'] == '$base/lib/geodistill_ros'
    assert cfg['install']['install_scripts'] == '$base/lib/geodistill_ros'


def test_setup_installs_resource_marker_launch_and_config():
    assert (ROOT / 'resource' / 'geodistill_ros').is_file()
    tree = ast.parse((ROOT / 'setup.py').read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, str)}
    assert 'share/ament_index/resource_index/packages' in strings
    assert any('launch/*.launch.py' in s for s in strings)
    assert any('config/*.yaml' in s for s in strings)


def test_core_never_imports_ros():
    for path in (ROOT / 'geodistill_core').rglob('*.py'):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split('.')[0]
                assert top not in {'rclpy', 'sensor_msgs', 'geometry_msgs', 'nav_msgs',
                                   'std_msgs', 'diagnostic_msgs', 'geodistill_ros'}, \
                    f'{path} imports {name}: geodistill_core must stay ROS-free'
