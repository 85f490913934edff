"""Reduced-precision autocast and memory format: what a device supports, in one place.

Used by the training loop (LoopConfig.amp, channels_last) and the Localizer (precision).
Autocast lowers the backbones' convolutions and matrix products; the estimators keep
geometry, correlation and softmax in float32 (they disable autocast around them), and the
losses run on float32 scores.

- CUDA: bfloat16 (when the GPU supports it) and float16.
- CPU: bfloat16 only, and only where the CPU has native bfloat16 arithmetic (AVX512-BF16
  or AMX): elsewhere oneDNN emulates it and it is slower than float32.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn
import torch.nn.functional as F

AMP_DTYPES = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles)."""
    checks = ('_is_avx512_bf16_supported', '_is_amx_tile_supported')
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast_supported(device: torch.device | str, dtype: torch.dtype | None) -> bool:
    """Whether autocast to `dtype` (None: float32, always) is worthwhile on `device`."""
    if dtype is None:
        return True
    device = torch.device(device)
    if device.type == 'cuda':
        return dtype != torch.bfloat16 or torch.cuda.is_bf16_supported()
    if device.type == 'cpu':
        return dtype == torch.bfloat16 and cpu_has_native_bf16()
    return False


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """torch.autocast on `device` to `dtype`, or a null context for dtype None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


class PointwiseConv2d(nn.Conv2d):
    """A 1x1 Conv2d (stride 1, no padding, one group) that runs a channels-last input as
    one matrix product over the (B, H, W, C) view: no layout copies, and on one CPU thread
    PyTorch would otherwise take its unfused 1x1 path (slow_conv2d), which copies channels-
    last tensors to contiguous and back. Same parameters and state dict as nn.Conv2d; other
    inputs take nn.Conv2d's path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
                and not x.is_contiguous():
            y = F.linear(x.permute(0, 2, 3, 1), self.weight.flatten(1), self.bias)
            return y.permute(0, 3, 1, 2)
        return super().forward(x)


def _pointwise(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding in ((0, 0), 'valid')
            and conv.padding_mode == 'zeros')


def to_channels_last(module: nn.Module) -> nn.Module:
    """Every 4-D parameter and buffer of `module` in channels-last format, and its 1x1
    convolutions as PointwiseConv2d (in place; the state dict is unchanged)."""
    for conv in module.modules():
        if _pointwise(conv):
            conv.__class__ = PointwiseConv2d
    return module.to(memory_format=torch.channels_last)


def images_channels_last(batch: dict) -> dict:
    """A batch whose 4-D floating-point tensors (images) are channels-last; other values
    unchanged."""
    return {k: v.contiguous(memory_format=torch.channels_last)
            if torch.is_tensor(v) and v.dim() == 4 and v.is_floating_point() else v
            for k, v in batch.items()}
