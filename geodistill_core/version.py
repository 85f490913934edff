"""The package version, read from the one place it is written: package.xml."""
from importlib import metadata
from pathlib import Path
import xml.etree.ElementTree as ET


def _version() -> str:
    package_xml = Path(__file__).resolve().parent.parent / 'package.xml'
    if package_xml.is_file():  # source checkout or editable install
        return ET.parse(package_xml).getroot().findtext('version').strip()
    return metadata.version('geodistill_ros')  # installed wheel / colcon install


__version__ = _version()
