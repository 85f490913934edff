"""What the generic Trainer trains: an Objective.

An objective owns the networks of a task and exposes:
- `train_module`: the nn.Module the Trainer optimises (and wraps in DDP);
  forward(batch, step_seed) -> dict of scalar tensors with 'loss' (the rest is logged).
  step_seed seeds any per-step randomness (masks, random rotations), so a resumed run
  draws exactly what the uninterrupted run drew.
- `state_modules()`: name -> module saved in training states (student, teacher, ...).
- `export_module()`: the network saved as the model checkpoint (GeoDistill: the teacher).
- `validation_step(batch)`: label-free sums {'name': (sum, count)} on a validation batch.
- `after_step(global_step)`, `after_epoch(epoch)`: hooks (teacher updates).
- `strip_labels`: whether training batches lose the evaluation position label (True for
  every objective but the supervised one).
"""
from __future__ import annotations

import torch
from torch import nn

from geodistill_core.training.weak import WeakLossModule


class Objective:
    """Base class; see the module docstring."""

    strip_labels = True
    train_module: nn.Module

    def state_modules(self) -> dict[str, nn.Module]:
        return {'model': self.train_module}

    def export_module(self) -> nn.Module:
        return self.train_module

    def validation_step(self, batch: dict) -> dict[str, tuple[float, int]]:
        return {}

    def after_step(self, global_step: int) -> None:
        """Called after each optimiser step (1-based global step)."""

    def after_epoch(self, epoch: int) -> None:
        """Called once at the end of each epoch (0-based), before validation."""

    def to(self, device: torch.device) -> Objective:
        for module in self.state_modules().values():
            module.to(device)
        return self


def batch_sums(terms: dict[str, torch.Tensor],
               batch_size: int) -> dict[str, tuple[float, int]]:
    """Validation sums {'name': (mean term * batch_size, batch_size)} of scalar terms."""
    return {k: (float(v) * batch_size, batch_size) for k, v in terms.items()}


class ModelObjective(Objective):
    """One model trained through a loss module wrapping it; saved and exported as 'model'."""

    def __init__(self, model: nn.Module, train_module: nn.Module) -> None:
        self.model = model
        self.train_module = train_module

    def state_modules(self) -> dict[str, nn.Module]:
        return {'model': self.model}

    def export_module(self) -> nn.Module:
        return self.model


class WeakObjective(ModelObjective):
    """The weakly supervised base model (method.md section 3) for a location model."""

    def __init__(self, model: nn.Module, weak_config, yaw_key: str = 'yaw_rad') -> None:
        super().__init__(model, WeakLossModule(model, weak_config, yaw_key))

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict[str, tuple[float, int]]:
        B = batch['ground'].shape[0]
        if B < 2:  # the in-batch triplet needs a negative
            return {}
        return batch_sums(self.train_module(batch, 0), B)
