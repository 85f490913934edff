"""ament_python package `geodistill_ros`: installs geodistill_core and geodistill_ros.

The version lives only in package.xml; this file reads it from there.
"""
from glob import glob
from pathlib import Path
import xml.etree.ElementTree as ET

from setuptools import find_packages, setup

PACKAGE_NAME = 'geodistill_ros'
HERE = Path(__file__).resolve().parent


def package_xml_version() -> str:
    return ET.parse(HERE / 'package.xml').getroot().findtext('version').strip()


setup(
    name=PACKAGE_NAME,
    version=package_xml_version(),
    packages=find_packages(include=['geodistill_core', 'geodistill_core.*',
                                    'geodistill_ros', 'geodistill_ros.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE_NAME]),
        ('share/' + PACKAGE_NAME, ['package.xml']),
        ('share/' + PACKAGE_NAME + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE_NAME + '/config', glob('config/*.yaml')),
    ],
    package_data={'geodistill_core': ['assets/*/*']},
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='geodistill developers',
    maintainer_email='geodistill@example.org',
    description='GeoDistill cross-view localization: PyTorch library and ROS 2 node',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [
            'localizer_node = geodistill_ros.node.localizer_node:main',
            'geodistill-kitti2bag = geodistill_ros.bags.kitti2bag:main',
            'geodistill-replay = geodistill_ros.replay.evaluate:main',
            'geodistill-demo = geodistill_ros.replay.demo:main',
            'geodistill-export = geodistill_core.export.cli:main',
        ],
    },
)
