"""Teacher updates for GeoDistill (method.md section 4) and the paper's ablations.

- 'ema': theta_t <- alpha theta_t + (1 - alpha) theta_s (alpha = 0.9 in the paper).
  scope 'state' (default): every floating-point parameter and buffer; integer buffers
  (BatchNorm's num_batches_tracked) are copied from the student. scope 'parameters' (the
  reference's): parameters only; the teacher keeps its own buffers (it runs in eval mode,
  so its BatchNorm statistics stay the base model's).
- 'previous_student': theta_t <- theta_s (alpha = 0).
- 'fixed': the teacher never changes.

`TeacherSchedule` decides when: once per epoch (every_steps = 0) or every N optimiser steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def _unwrap(module: nn.Module) -> nn.Module:
    return getattr(module, 'module', module)


EMA_SCOPES = ('state', 'parameters')


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, alpha: float,
               scope: str = 'state') -> None:
    """theta_t <- alpha theta_t + (1 - alpha) theta_s, in place.

    scope 'state': over the state dicts: floating-point entries are blended, other entries
    copied from the student. 'parameters': over named_parameters only (buffers untouched).
    Both modules must have equal keys/shapes.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must lie in [0, 1], got {alpha}')
    if scope not in EMA_SCOPES:
        raise ValueError(f'scope must be one of {EMA_SCOPES}, got {scope!r}')
    if scope == 'parameters':
        t_state = dict(_unwrap(teacher).named_parameters())
        s_state = dict(_unwrap(student).named_parameters())
    else:
        t_state = _unwrap(teacher).state_dict(keep_vars=True)
        s_state = _unwrap(student).state_dict(keep_vars=True)
    if t_state.keys() != s_state.keys():
        diff = sorted(set(t_state) ^ set(s_state))
        raise ValueError(f'teacher and student differ in keys: {diff[:8]}')
    for key, t in t_state.items():
        s = s_state[key]
        if t.shape != s.shape:
            raise ValueError(f'{key}: teacher {tuple(t.shape)} vs student {tuple(s.shape)}')
        if t.is_floating_point():
            t.data.mul_(alpha).add_(s.data.to(t.dtype), alpha=1.0 - alpha)
        else:
            t.data.copy_(s.data)


@torch.no_grad()
def copy_weights(teacher: nn.Module, student: nn.Module) -> None:
    """theta_t <- theta_s (the 'previous_student' teacher)."""
    _unwrap(teacher).load_state_dict(_unwrap(student).state_dict())


@dataclass(frozen=True)
class TeacherSchedule:
    """update: 'ema' | 'fixed' | 'previous_student'; alpha: EMA decay;
    every_steps: 0 = once at the end of every epoch, N > 0 = after every N-th step;
    scope: what the EMA averages ('state' | 'parameters', ema_update)."""

    update: str = 'ema'
    alpha: float = 0.9
    every_steps: int = 0
    scope: str = 'state'

    def __post_init__(self):
        if self.update not in ('ema', 'fixed', 'previous_student'):
            raise ValueError(f'unknown teacher update {self.update!r}')

    def apply(self, teacher: nn.Module, student: nn.Module) -> bool:
        """Update the teacher now; returns whether it changed."""
        if self.update == 'ema':
            ema_update(teacher, student, self.alpha, self.scope)
        elif self.update == 'previous_student':
            copy_weights(teacher, student)
        return self.update != 'fixed'

    def after_step(self, teacher: nn.Module, student: nn.Module, global_step: int) -> bool:
        """Call after optimiser step `global_step` (1-based); updates every N-th step."""
        if self.every_steps > 0 and global_step % self.every_steps == 0:
            return self.apply(teacher, student)
        return False

    def after_epoch(self, teacher: nn.Module, student: nn.Module) -> bool:
        """Call at the end of every epoch; updates when every_steps == 0."""
        return self.apply(teacher, student) if self.every_steps == 0 else False
