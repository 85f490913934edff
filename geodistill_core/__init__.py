"""geodistill_core: cross-view localization (GeoDistill) in pure PyTorch, no ROS import.

Conventions (docs: ../shared/docs/method.md section 6, pinned by tests):
map frame ENU in metres, yaw in radians with 0 = east and counter-clockwise positive,
satellite rasters north-up (row grows south, column grows east), equirectangular
panoramas with the forward axis at the centre column and azimuth growing clockwise to
the right.
"""
from geodistill_core.version import __version__

__all__ = ['__version__']
