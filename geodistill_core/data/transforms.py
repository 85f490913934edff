"""Shared reader utilities: image IO, resizing, sub-pixel north-up crops, seeded randomness.

Images cross this module as RGB ``uint8`` arrays (H, W, 3) and leave it as float tensors
(3, H, W) in [0, 1]. Backbone normalisation (ImageNet mean/std, ...) is not applied here:
``geodistill_core.models.backbones.preprocess`` does it, from the weights' own record.

Pixel convention (geodistill_core.geometry.raster): pixel i has its centre at coordinate i,
so an n-pixel axis is centred at (n - 1) / 2; OpenCV's resize and warpAffine use the same.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import torch

T = TypeVar('T')


def read_rgb_uint8(path: str | Path) -> np.ndarray:
    """Read an image file as RGB ``uint8`` (H, W, 3); alpha is dropped, grey is expanded."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'image not found: {path}')
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f'cannot decode image (corrupt or unsupported format): {path}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def resize_rgb(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, C) to ``size_hw``: area averaging when shrinking, bilinear otherwise.

    The image corners stay at the corners (OpenCV half-pixel mapping), which is what
    ``geometry.scale_intrinsics`` and ``NorthUpCrop.resized`` assume.
    """
    height_px, width_px = int(size_hw[0]), int(size_hw[1])
    if height_px <= 0 or width_px <= 0:
        raise ValueError(f'target size must be positive, got {size_hw}')
    if image.shape[:2] == (height_px, width_px):
        return image
    shrink = height_px < image.shape[0] or width_px < image.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (width_px, height_px), interpolation=interpolation)


def rgb_uint8_to_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB ``uint8`` (H, W, 3) -> float32 tensor (3, H, W) in [0, 1]."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected uint8 (H, W, 3), got {image.dtype} {image.shape}')
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0


def crop_centred(image: np.ndarray, centre_row_px: float, centre_col_px: float,
                 size_px: int, what: str = 'image') -> np.ndarray:
    """Square crop of ``size_px`` whose centre ((size - 1) / 2) lies at a sub-pixel point.

    image: (H, W, C). Bilinear resampling; the crop must lie inside the image (a crop
    that would need padding is an error naming ``what``, never a silent black border).
    """
    height_px, width_px = image.shape[:2]
    half = (size_px - 1) / 2.0
    top, left = centre_row_px - half, centre_col_px - half
    eps = 1e-6
    if (top < -eps or left < -eps or top + size_px - 1 > height_px - 1 + eps
            or left + size_px - 1 > width_px - 1 + eps):
        raise ValueError(
            f'{what}: a {size_px} px crop centred at (row, col) = ({centre_row_px:.2f}, '
            f'{centre_col_px:.2f}) leaves the {height_px}x{width_px} image; the image must '
            'cover the crop plus the largest shift')
    src_from_dst = np.array([[1.0, 0.0, left], [0.0, 1.0, top]])
    return cv2.warpAffine(image, src_from_dst, (size_px, size_px),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def item_rng(seed: int, index: int, epoch: int | None = None) -> np.random.Generator:
    """Generator for one dataset item: ``SeedSequence([seed, index])``, or with the epoch.

    With ``epoch=None`` the draw depends only on (seed, index): the saved, reproducible
    test-time noise. Training passes the epoch so each epoch sees new noise.
    """
    entropy = [int(seed), int(index)] if epoch is None else [int(seed), int(index), int(epoch)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def held_out_mask(group_keys: Sequence[Hashable], fraction: float, seed: int) -> np.ndarray:
    """Select whole groups for a validation split: bool (N,), True = held out.

    The groups are sorted by ``str(key)`` and permuted with ``SeedSequence([seed])``; the
    first round(fraction * G) groups (at least 1, at most G - 1) are held out, so the
    result depends only on the set of keys, not on the line order.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f'validation fraction must lie in (0, 1), got {fraction}')
    unique = sorted({str(k) for k in group_keys})
    if len(unique) < 2:
        raise ValueError(f'a validation split needs at least 2 groups, got {len(unique)}; '
                         'set the validation fraction to 0 or add data')
    n_held = min(max(round(fraction * len(unique)), 1), len(unique) - 1)
    order = np.random.default_rng(np.random.SeedSequence([int(seed)])).permutation(len(unique))
    held = {unique[i] for i in order[:n_held]}
    return np.array([str(k) in held for k in group_keys], dtype=bool)


def held_out_split(items: Sequence[T], group_keys: Sequence[Hashable], fraction: float,
                   seed: int, held_out: bool) -> list[T]:
    """The items of the held-out groups (held_out=True, 'val') or of the others ('train'),
    with the groups chosen by held_out_mask(group_keys, fraction, seed)."""
    held = held_out_mask(group_keys, fraction, seed)
    keep = held if held_out else ~held
    return [item for item, k in zip(items, keep, strict=True) if k]
