"""The camera of a drive being converted: pinhole (KITTI image_02) or a 360 panorama.

``camera_model='auto'`` takes the drive's ``image_02/camera.json`` marker
(``geodistill_core.data.kitti_camera``; synthetic panorama drives write one) and otherwise
KITTI's pinhole camera. An explicit 'pinhole' or 'panorama' must agree with a marker; a
drive without one may be declared a panorama drive (its camera then sits at KITTI's camera
mount, 1.65 m above the ground).

What the bag carries for each:

- pinhole: ``/camera_info`` from P_rect_02 (``bags.messages.camera_info_msg``);
- panorama: ``/camera_info`` with the panorama's size, distortion_model 'equirectangular'
  and K = R = P = 0, i.e. *uncalibrated* in sensor_msgs' terms (an equirectangular image has
  no pinhole matrix; the node with camera_model 'panorama' does not subscribe to it). The
  camera frame keeps the optical-frame orientation (z = the centre column's direction).

Both write the camera model into the bag's sidecar (``camera_model``), and the mount (from
the marker: forward/right of the OXTS point, height above the ground) into the tf and the
node's camera_offset.
"""
from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path

import numpy as np

from geodistill_core.data.kitti_camera import CAMERA_MARKER, CAMERA_MODELS, read_drive_camera
from geodistill_ros.bags import messages as bm
from geodistill_ros.bags.kitti_drive import KITTI_OXTS_HEIGHT_M, CameraMount

logger = logging.getLogger(__name__)

CAMERA_CHOICES = ('auto', *CAMERA_MODELS)


@dataclass(frozen=True)
class BagCamera:
    """camera_model ('pinhole' | 'panorama'), its mount in base_link, and where the model
    came from ('marker', 'option' or 'default')."""

    camera_model: str
    mount: CameraMount
    source: str

    def camera_info(self, P_rect: np.ndarray, image_hw: tuple[int, int], stamp_ns: int,
                    frame_id: str):
        """The /camera_info message of one image (module doc)."""
        if self.camera_model == 'panorama':
            return bm.panorama_camera_info_msg(image_hw, stamp_ns, frame_id)
        return bm.camera_info_msg(P_rect, image_hw, stamp_ns, frame_id)


def resolve_bag_camera(drive_dir: str | Path, requested: str = 'auto') -> BagCamera:
    """The drive's camera for ``requested`` in CAMERA_CHOICES (module doc)."""
    if requested not in CAMERA_CHOICES:
        raise ValueError(f'camera_model must be one of {CAMERA_CHOICES}, got {requested!r}')
    marker = read_drive_camera(drive_dir)
    if marker is None:
        model = 'pinhole' if requested == 'auto' else requested
        return BagCamera(model, CameraMount(), 'default' if requested == 'auto' else 'option')
    if requested not in ('auto', marker.camera_model):
        path = Path(drive_dir) / CAMERA_MARKER
        raise ValueError(f'camera model {requested!r} requested but {path} says '
                         f'{marker.camera_model!r}: use --camera-model auto (or fix the marker)')
    mount = CameraMount(x_m=marker.forward_m, y_m=-marker.right_m,
                        z_m=round(marker.height_m - KITTI_OXTS_HEIGHT_M, 9))
    logger.info('%s: %s camera (%s)', drive_dir, marker.camera_model, CAMERA_MARKER)
    return BagCamera(marker.camera_model, mount, 'marker')
