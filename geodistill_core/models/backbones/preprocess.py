"""Preprocess: the input normalisation a backbone's weights were trained with."""
from __future__ import annotations

from dataclasses import dataclass

import torch

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
# TensorFlow EfficientNet-Lite: (x - 127) / 128 on 0..255 images.
TF_LITE_MEAN_RGB = (127.0 / 255.0,) * 3
TF_LITE_STD_RGB = (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class Preprocess:
    """Normalisation record: x_net = (x_rgb01 - mean_rgb) / std_rgb.

    mean_rgb, std_rgb: per channel, for RGB images scaled to [0, 1].
    input_multiple_px: H and W must be multiples of it (the coarsest output stride).
    """

    mean_rgb: tuple[float, float, float]
    std_rgb: tuple[float, float, float]
    input_multiple_px: int

    def __post_init__(self) -> None:
        if len(self.mean_rgb) != 3 or len(self.std_rgb) != 3:
            raise ValueError(f'mean_rgb and std_rgb need 3 values, got {self.mean_rgb}, '
                             f'{self.std_rgb}')
        if min(self.std_rgb) <= 0:
            raise ValueError(f'std_rgb must be positive, got {self.std_rgb}')
        if self.input_multiple_px < 1:
            raise ValueError(f'input_multiple_px must be >= 1, got {self.input_multiple_px}')


def preprocess_images(images_rgb01: torch.Tensor, preprocess: Preprocess,
                      check_range: bool = True) -> torch.Tensor:
    """Normalise RGB images in [0, 1] for a backbone.

    images_rgb01: (B, 3, H, W) floating point, values in [0, 1] (not 0..255); H and W
        multiples of `preprocess.input_multiple_px`.
    check_range: verify the value range (one reduction; catches raw 0..255 input).
    Returns (B, 3, H, W), same dtype and device.
    """
    if images_rgb01.ndim != 4 or images_rgb01.shape[1] != 3:
        raise ValueError(f'images must be (B, 3, H, W), got {tuple(images_rgb01.shape)}')
    if not images_rgb01.is_floating_point():
        raise TypeError(f'images must be floating point in [0, 1], got {images_rgb01.dtype}; '
                        'convert uint8 with images.float() / 255')
    height_px, width_px = images_rgb01.shape[-2:]
    multiple = preprocess.input_multiple_px
    if height_px % multiple or width_px % multiple:
        raise ValueError(f'image size (H, W) = ({height_px}, {width_px}) is not a multiple of '
                         f'{multiple} px; crop or resize first')
    if check_range and images_rgb01.numel():
        low, high = torch.aminmax(images_rgb01.detach())
        if low.item() < -1e-3 or high.item() > 1 + 1e-3:
            raise ValueError(f'images must lie in [0, 1], got values in '
                             f'[{low.item():.3g}, {high.item():.3g}] (0..255 input?)')
    mean = images_rgb01.new_tensor(preprocess.mean_rgb).view(1, 3, 1, 1)
    std = images_rgb01.new_tensor(preprocess.std_rgb).view(1, 3, 1, 1)
    return (images_rgb01 - mean) / std
