"""The generic training loop: AdamW, clipping, AMP, DDP, logging, validation, resume.

`Trainer(config, objective, train_set, val_set, run_dir, context, save_model).fit()`:

- AdamW (lr, weight decay, betas) with optional warm-up then constant or cosine decay;
  grad-norm clipping; optional AMP (CUDA: bf16, or fp16 with a GradScaler; CPU: bf16 where
  the CPU has native bfloat16); channels-last networks and images; optional activation
  checkpointing of the trained model's backbones (geodistill_core.precision).
- DistributedDataParallel when the context has several processes (torchrun); every rank
  draws its share of the same global batch list; rank 0 alone logs and writes files.
- Per-step randomness is reseeded from (seed, rank, step) and the global RNG state is
  saved, so a resumed run continues bit-for-bit on the CPU.
- The training state (`<run>/state`) is written atomically every checkpoint_every_steps
  steps and at each epoch end; a killed run resumes from it, losing fewer than N steps.
- Each epoch ends with the objective's hook (teacher update), validation on the
  validation split, and the best model checkpoint (`<run>/best`, by the validation
  metric, lower is better) plus the latest (`<run>/last`).
- tqdm progress bars and TensorBoard scalars (`<run>/tensorboard`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from geodistill_core.models.frozen_batchnorm import FROZEN_CLASSES, freeze_batchnorm
from geodistill_core.precision import (
    AMP_DTYPES,
    autocast,
    autocast_supported,
    images_channels_last,
    native_bf16,
    to_channels_last,
)
from geodistill_core.training.adapter import move_batch
from geodistill_core.training.config import TrainConfig
from geodistill_core.training.data import batches_per_epoch, epoch_loader, make_batch_sampler
from geodistill_core.training.distributed import (
    DistributedContext,
    all_reduce_sums,
    barrier,
    broadcast_module,
    step_seed,
)
from geodistill_core.training.objective import Objective
from geodistill_core.training.state import load_training_state, save_training_state
from geodistill_core.training.validation import validation_errors

logger = logging.getLogger(__name__)

STATE_DIR, BEST_DIR, LAST_DIR, TENSORBOARD_DIR = 'state', 'best', 'last', 'tensorboard'
SaveModel = Callable[[Path, nn.Module, dict[str, Any]], Path]


@dataclass(frozen=True)
class FitResult:
    """best_path: checkpoint chosen on validation (None without a validation split);
    last_path: the model after the last epoch; history: per-epoch metrics; steps: total."""

    best_path: Path | None
    last_path: Path
    history: list[dict[str, Any]]
    steps: int


def lr_lambda(optim_config, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate at scheduler step s (0-based)."""
    warmup = optim_config.warmup_steps

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if optim_config.schedule == 'constant':
            return 1.0
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        floor = optim_config.min_lr_ratio
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    return factor


def enable_activation_checkpointing(module: nn.Module) -> int:
    """Switch on backbone activation checkpointing in every estimator of `module` that
    offers it (attribute `activation_checkpointing`); returns how many. Raises ValueError
    when none does, or when a backbone holds BatchNorm layers (recomputing their forward
    would update the running statistics twice)."""
    estimators = [m for m in module.modules() if hasattr(m, 'activation_checkpointing')]
    if not estimators:
        raise ValueError('activation_checkpointing: this model has no estimator that '
                         'supports it (the correlation estimator does)')
    for estimator in estimators:
        norms = [name for name, m in estimator.named_modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 and not isinstance(m, FROZEN_CLASSES)]
        if norms:
            raise ValueError(f'activation_checkpointing with BatchNorm layers ({norms[0]}, ...'
                             f' {len(norms)} in all) would update their running statistics '
                             'twice per step; use it for VGG16 or DINOv2 backbones, or with '
                             "loop.batchnorm='frozen'")
        estimator.activation_checkpointing = True
    return len(estimators)


class Trainer:
    """Train `objective` on `train_set`, select on `val_set` (None: keep the last)."""

    def __init__(self, config: TrainConfig, objective: Objective, train_set, val_set,
                 run_dir: str | Path, context: DistributedContext, save_model: SaveModel,
                 provenance: dict[str, Any] | None = None) -> None:
        self.config, self.objective, self.context = config, objective, context
        self.train_set, self.val_set = train_set, val_set
        self.run_dir = Path(run_dir)
        self.save_model = save_model
        self.provenance = dict(provenance or {})
        self.device = context.device
        loop = config.loop
        self.amp_dtype = (native_bf16(self.device) if loop.amp == 'auto'
                          else AMP_DTYPES[loop.amp])
        if not autocast_supported(self.device, self.amp_dtype):
            logger.warning('amp=%s is not supported on %s (CPU: bf16 only, with native '
                           'bfloat16); training in float32', loop.amp, self.device)
            self.amp_dtype = None
        objective.to(self.device)
        if loop.batchnorm == 'frozen':  # teachers too: the same function in both
            for module in objective.state_modules().values():
                freeze_batchnorm(module)
        if loop.channels_last:
            for module in objective.state_modules().values():
                to_channels_last(module)
        if loop.activation_checkpointing:
            enable_activation_checkpointing(objective.train_module)
        params = [p for p in objective.train_module.parameters() if p.requires_grad]
        if not params:
            raise ValueError('the objective has no trainable parameters')
        self.params = params
        o = config.optim
        self.optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay,
                                           betas=tuple(o.betas))
        self.train_sampler = make_batch_sampler(train_set, config.data, context,
                                                seed=config.data.seed, drop_last=True)
        self.val_sampler = None if val_set is None else make_batch_sampler(
            val_set, config.data, context, seed=config.data.seed, drop_last=False)
        per_epoch = batches_per_epoch(self.train_sampler, 0, loop.steps_per_epoch)
        if per_epoch == 0:
            raise ValueError(f'no full training batch of {config.data.batch_size} per rank '
                             f'({len(train_set)} items, {context.world_size} ranks)')
        self.total_steps = per_epoch * loop.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           lr_lambda(o, self.total_steps))
        self.scaler = (torch.amp.GradScaler('cuda') if self.amp_dtype == torch.float16
                       else None)
        self.module = objective.train_module
        if context.distributed:
            for module in objective.state_modules().values():  # teachers too: one start
                broadcast_module(module, context)
            self.module = DistributedDataParallel(
                objective.train_module,
                device_ids=[self.device.index] if self.device.type == 'cuda' else None,
                find_unused_parameters=loop.find_unused_parameters)
        self.progress = {'step': 0, 'epoch': 0, 'batch_in_epoch': 0, 'best_value': None,
                         'best_epoch': None, 'history': [], 'epoch_loss_sum': 0.0}
        self.writer = None

    # ------------------------------------------------------------------ state

    @property
    def state_path(self) -> Path:
        return self.run_dir / STATE_DIR

    def save_state(self) -> None:
        if self.context.is_main:
            save_training_state(self.state_path, self.objective.state_modules(),
                                self.optimizer, self.progress, self.scheduler, self.scaler)
        barrier(self.context)

    def maybe_resume(self) -> bool:
        """Load `<run>/state` when present; returns whether it did."""
        if not (self.state_path / 'meta.json').is_file():
            return False
        self.progress = load_training_state(self.state_path, self.objective.state_modules(),
                                            self.optimizer, self.scheduler, self.scaler)
        logger.info('resumed %s at step %d (epoch %d, batch %d)', self.run_dir,
                    self.progress['step'], self.progress['epoch'],
                    self.progress['batch_in_epoch'])
        return True

    # ------------------------------------------------------------------ steps

    def _autocast(self):
        return autocast(self.device, self.amp_dtype)

    def _prepare_batch(self, batch: dict) -> dict:
        batch = move_batch(batch, self.device)
        return images_channels_last(batch) if self.config.loop.channels_last else batch

    def train_step(self, batch: dict) -> dict[str, float]:
        """One optimiser step on `batch`; returns the logged scalars."""
        step = self.progress['step']
        seed = step_seed(self.config.loop.seed, self.context.rank, step)
        torch.manual_seed(seed)
        self.objective.train_module.train()
        batch = self._prepare_batch(batch)
        with self._autocast():
            terms = self.module(batch, seed)
        loss = terms['loss']
        if self.scaler is None and not torch.isfinite(loss):
            raise FloatingPointError(f'non-finite loss {loss.item()} at step {step}; lower '
                                     'the learning rate or check the inputs')
        self.optimizer.zero_grad(set_to_none=True)
        clip = self.config.optim.grad_clip_norm
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            norm = nn.utils.clip_grad_norm_(self.params, clip or float('inf'))
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            norm = nn.utils.clip_grad_norm_(self.params, clip or float('inf'))
            self.optimizer.step()
        self.scheduler.step()
        self.progress['step'] = step + 1
        self.progress['batch_in_epoch'] += 1
        self.objective.after_step(self.progress['step'])
        logged = {k: float(v.detach()) for k, v in terms.items()}
        logged['grad_norm'] = float(norm)
        logged['lr'] = self.scheduler.get_last_lr()[0]
        return logged

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, float]:
        """Validation metrics (summed over ranks) of the exported model."""
        loop = self.config.loop
        sums: dict[str, float] = {}
        need_labels = loop.select_metric == 'mean_error_m' or loop.report_val_error
        strip = self.objective.strip_labels and not need_labels
        loader = epoch_loader(self.val_set, self.val_sampler, 0, self.config.data.num_workers,
                              strip_labels=strip, max_batches=loop.val_steps)
        for module in self.objective.state_modules().values():
            module.eval()
        for batch in loader:
            batch = self._prepare_batch(batch)
            with self._autocast():
                parts = self.objective.validation_step(batch)
                if need_labels:
                    parts.update(validation_errors(self.objective.export_module(), batch,
                                                   self.config.data.yaw_key))
            for name, (total, count) in parts.items():
                sums[f'{name}.sum'] = sums.get(f'{name}.sum', 0.0) + total
                sums[f'{name}.count'] = sums.get(f'{name}.count', 0.0) + count
        sums = all_reduce_sums(sums, self.context, self.device)
        names = sorted({k.rsplit('.', 1)[0] for k in sums})
        return {n: sums[f'{n}.sum'] / sums[f'{n}.count'] for n in names
                if sums[f'{n}.count'] > 0}

    # ------------------------------------------------------------------ loop

    def _log(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f'{prefix}/{key}', value, step)

    def _save_model(self, name: str, epoch: int, metrics: dict[str, float]) -> Path:
        path = self.run_dir / name
        if self.context.is_main:
            provenance = {**self.provenance, 'epoch': epoch + 1, 'step': self.progress['step'],
                          'validation': metrics, 'training_config': self.config.name}
            self.save_model(path, self.objective.export_module(), provenance)
        return path

    def _open_writer(self) -> None:
        if self.context.is_main and self.config.loop.tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.run_dir / TENSORBOARD_DIR),
                                        purge_step=self.progress['step'] or None)

    def fit(self) -> FitResult:
        """Train to the configured number of epochs (resuming from `<run>/state`)."""
        loop = self.config.loop
        self.maybe_resume()
        self._open_writer()
        try:
            while self.progress['epoch'] < loop.epochs:
                epoch = self.progress['epoch']
                self._train_epoch(epoch)
                self._end_epoch(epoch)
        finally:
            if self.writer is not None:
                self.writer.close()
        best = self.progress['best_epoch']
        return FitResult(self.run_dir / BEST_DIR if best is not None else None,
                         self.run_dir / LAST_DIR, list(self.progress['history']),
                         self.progress['step'])

    def _train_epoch(self, epoch: int) -> None:
        """Run the rest of `epoch` (all of it unless resuming inside it)."""
        loop = self.config.loop
        skip = self.progress['batch_in_epoch']
        total = batches_per_epoch(self.train_sampler, epoch, loop.steps_per_epoch)
        loader = epoch_loader(self.train_set, self.train_sampler, epoch,
                              self.config.data.num_workers, self.objective.strip_labels,
                              skip_batches=skip, max_batches=loop.steps_per_epoch,
                              pin_memory=self.device.type == 'cuda')
        bar = tqdm(total=total, initial=skip, desc=f'epoch {epoch + 1}/{loop.epochs}',
                   disable=not (loop.progress and self.context.is_main), leave=False)
        with bar:
            for batch in loader:
                logged = self.train_step(batch)
                self.progress['epoch_loss_sum'] += logged['loss']
                step = self.progress['step']
                bar.update(1)
                bar.set_postfix(loss=f'{logged["loss"]:.4f}')
                if step % loop.log_every_steps == 0:
                    self._log('train', logged, step)
                if step % loop.checkpoint_every_steps == 0:
                    self.save_state()

    def _end_epoch(self, epoch: int) -> None:
        self.objective.after_epoch(epoch)
        metrics = self.validate(epoch) if self.val_set is not None else {}
        done = max(1, self.progress['batch_in_epoch'])
        record: dict[str, Any] = {'epoch': epoch + 1, 'step': self.progress['step'],
                                  'train_loss': self.progress['epoch_loss_sum'] / done, **metrics}
        key = self.config.loop.select_metric
        if key == 'last':  # a fixed schedule: the chosen checkpoint is the latest epoch
            self.progress['best_epoch'] = epoch + 1
            self._save_model(BEST_DIR, epoch, metrics)
        elif self.val_set is not None:
            if key not in metrics:
                raise ValueError(f'validation produced no {key!r} (got {sorted(metrics)}); '
                                 'is the validation split large enough for one batch?')
            best = self.progress['best_value']
            if best is None or metrics[key] < best:
                self.progress['best_value'], self.progress['best_epoch'] = metrics[key], epoch + 1
                self._save_model(BEST_DIR, epoch, metrics)
                record['best'] = True
        self._log('val', metrics, self.progress['step'])
        if self.context.is_main:
            logger.info('epoch %d: %s', epoch + 1, ', '.join(
                f'{k}={v:.4g}' for k, v in metrics.items()) or 'no validation')
        self.progress['history'].append(record)
        self.progress['epoch'] = epoch + 1
        self.progress['batch_in_epoch'] = 0
        self.progress['epoch_loss_sum'] = 0.0
        self._save_model(LAST_DIR, epoch, metrics)
        self.save_state()
