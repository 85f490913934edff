"""Horizontal circular padding for panorama encoders.

`make_width_circular_(encoder)` turns every zero-padded convolution of an encoder into one
that wraps around horizontally (the panorama's column W - 1 neighbours column 0) and keeps
zero padding vertically. It changes no parameter and no state_dict key: each Conv2d keeps
its weights, its horizontal padding is set to 0 and a forward pre-hook pads the input
circularly instead. With it, a stride-s encoder is exactly equivariant to rolling the
input by multiples of s columns (for convolutions, per-channel normalisation and global
pooling; pooling layers with horizontal padding are refused).
"""
from __future__ import annotations

from torch import nn
import torch.nn.functional as F

_MARK = '_geodistill_circular_width_px'


def _pad_width_circular(module: nn.Module, args: tuple) -> tuple:
    pad_px = getattr(module, _MARK)
    x = args[0]
    if x.shape[-1] < pad_px:
        raise ValueError(f'{type(module).__name__}: input width {x.shape[-1]} is smaller '
                         f'than its circular padding {pad_px}; use a wider panorama')
    return (F.pad(x, (pad_px, pad_px, 0, 0), mode='circular'), *args[1:])


def make_width_circular_(encoder: nn.Module) -> nn.Module:
    """Make encoder's convolutions pad circularly along the width, in place; returns it.

    Idempotent. Raises for convolutions whose padding is not symmetric zero padding given
    as integers (string 'same' padding, TF-style dynamic padding, other padding modes) and
    for pooling layers that pad horizontally.
    """
    for name, module in encoder.named_modules():
        if isinstance(module, nn.Conv2d):
            if hasattr(module, _MARK):
                continue
            if isinstance(module.padding, str) or module.padding_mode != 'zeros':
                raise ValueError(f'{name}: cannot make padding {module.padding!r} '
                                 f'({module.padding_mode}) circular; use integer zero padding')
            if type(module) is not nn.Conv2d:
                raise ValueError(f'{name}: {type(module).__name__} may pad dynamically; '
                                 'only plain nn.Conv2d is supported')
            pad_h, pad_w = module.padding
            setattr(module, _MARK, pad_w)
            if pad_w:
                module.padding = (pad_h, 0)
                module.register_forward_pre_hook(_pad_width_circular)
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            padding = module.padding
            pad_w = padding if isinstance(padding, int) else padding[-1]
            if pad_w:
                raise ValueError(f'{name}: pooling with horizontal padding {padding} cannot '
                                 'be made circular')
    return encoder


def is_width_circular(encoder: nn.Module) -> bool:
    """True when every Conv2d of encoder went through make_width_circular_."""
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    return bool(convs) and all(hasattr(m, _MARK) for m in convs)

