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


def native_bf16(device: torch.device | str) -> torch.dtype | None:
    """bfloat16 where `device` computes it natively (CUDA with bf16 support, a CPU with
    AVX512-BF16 or AMX), else None (float32): LoopConfig.amp='auto'."""
    return torch.bfloat16 if autocast_supported(device, torch.bfloat16) else None


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """torch.autocast on `device` to `dtype`, or a null context for dtype None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def to_channels_last(module: nn.Module) -> nn.Module:
    """Every 4-D parameter and buffer of `module` in channels-last format (in place)."""
    return module.to(memory_format=torch.channels_last)


def images_channels_last(batch: dict) -> dict:
    """A batch whose 4-D floating-point tensors (images) are channels-last; other values
    unchanged."""
    return {k: v.contiguous(memory_format=torch.channels_last)
            if torch.is_tensor(v) and v.dim() == 4 and v.is_floating_point() else v
            for k, v in batch.items()}
