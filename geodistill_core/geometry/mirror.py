"""The east-west mirror of a cross-view pair: the same scene reflected about the north axis.

Reflecting the world about the north-south line through the satellite crop's centre
(east -> -east) turns a cross-view pair into another valid pair:
- the satellite crop (north-up, columns west -> east) flips its columns;
- the ground image flips its columns: a pinhole camera's principal point moves to
  cx' = (W - 1) - cx (pixel centres at integer coordinates, cameras.py) and its skew changes
  sign; an equirectangular panorama keeps its forward axis at the centre column and its
  relative azimuth changes sign (phi' = -phi);
- a map-frame yaw psi (0 = east, counter-clockwise) becomes pi - psi; an east/north offset
  (e, n) becomes (-e, n).
The mirrored pair is a second, different input for a model that is not mirror-equivariant
(a CNN): averaging its answer with the original's (test-time augmentation) averages two
partly independent errors. Shapes: images (..., H, W); K (..., 3, 3).
"""
from __future__ import annotations

import math

import torch


def mirror_images(images: torch.Tensor) -> torch.Tensor:
    """(..., H, W) ground image or north-up satellite crop -> its east-west mirror."""
    return images.flip(-1)


def mirror_intrinsics(K: torch.Tensor, width_px: int) -> torch.Tensor:
    """(..., 3, 3) pinhole intrinsics of an image width_px wide -> those of its mirror."""
    out = K.clone()
    out[..., 0, 2] = (width_px - 1) - K[..., 0, 2]
    out[..., 0, 1] = -K[..., 0, 1]
    return out


def mirror_yaw_rad(yaw_rad: torch.Tensor) -> torch.Tensor:
    """Map-frame yaw (any shape) -> the mirrored scene's yaw, pi - yaw (an involution)."""
    return math.pi - yaw_rad
