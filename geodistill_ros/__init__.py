"""geodistill_ros: the ROS 2 adapter around geodistill_core (node, satellite, bags, replay)."""
from geodistill_core.version import __version__

__all__ = ['__version__']
