"""GeoDistill: FoV-masked self-distillation of a location model (method.md section 4).

Teacher and student are copies of a trained base model. Per step, the teacher (eval
mode, under no_grad) scores the full ground image; the student scores a masked copy (the
mask blanks the image before the backbone and, as ground_visible_cols, removes the hidden
BEV cells from the correlation); the loss is the cross-entropy from the teacher's to the
student's sharpened softmax (tau 0.06 on cosine scores; estimators whose scores are logits,
CCVPE, use loss.logits_tau, 1 by default: losses.DistillationLossConfig) averaged over all
heatmap levels. Only the student
is optimised; the teacher follows it by EMA (alpha 0.9, once per epoch or every N steps).
Inference, validation and the exported checkpoint use the teacher.

Every ablation of the paper is a DistillConfig flag: mask ('fov' | 'random_patch' |
'max_activation' | 'none'), fov_range_deg, mode='augment' (no teacher: the student
trained with the weak loss on masked images; augment_start 'scratch': a new base trained
with the augmentation from the initial weights), loss.sharpen, loss.target='single_mode',
teacher_update ('ema' | 'fixed' | 'previous_student'), ema_scope and loss.divergence
('ce' | 'kl').

Only the LocationScores interface of the model is used, so any estimator works.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn

from geodistill_core.losses import distillation_loss
from geodistill_core.training.adapter import (
    batch_to_location_inputs,
    location_scores,
    supports_all_pairs,
)
from geodistill_core.training.config import DistillConfig, WeakConfig
from geodistill_core.training.ema import TeacherSchedule
from geodistill_core.training.ground_masks import draw_ground_mask
from geodistill_core.training.objective import Objective, batch_sums
from geodistill_core.training.weak import WeakLossModule


class DistillLossModule(nn.Module):
    """forward(batch, step_seed) -> {'loss', ...}: teacher (full image) -> student (masked).

    student: the trained location model (a registered submodule).
    teacher: held by reference, NOT a submodule (DDP and the optimiser never see it).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, config: DistillConfig,
                 camera_model: str = 'panorama', yaw_key: str = 'yaw_rad') -> None:
        super().__init__()
        self.student = student
        self._teacher = (teacher,)
        self.config = config
        self.camera_model = camera_model
        self.yaw_key = yaw_key
        estimator = getattr(student, 'estimator', student)
        self.loss_config = (replace(config.loss, tau=config.loss.logits_tau)
                            if getattr(estimator, 'scores_are_logits', False) else config.loss)

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def forward(self, batch: dict, step_seed: int = 0) -> dict[str, torch.Tensor]:
        inputs = batch_to_location_inputs(batch, self.yaw_key)
        with torch.no_grad():
            self.teacher.eval()
            teacher_scores = location_scores(self.teacher, inputs).scores
        generator = torch.Generator().manual_seed(step_seed)
        mask = draw_ground_mask(self.config, self.camera_model, inputs['ground_images'],
                                generator, self.teacher)
        masked = {**inputs, 'ground_images': mask.model_input(inputs['ground_images'])}
        student_scores = location_scores(self.student, masked, mask.visible_cols).scores
        loss = distillation_loss([t.detach().float() for t in teacher_scores],
                                 [s.float() for s in student_scores], self.loss_config)
        visible = (mask.visible.float().mean() if mask.visible is not None
                   else loss.new_ones(()))
        return {'loss': loss, 'visible_fraction': visible}


class DistillObjective(Objective):
    """GeoDistill (mode 'distill') or the masked-augmentation control (mode 'augment').

    base_model: the trained base location model; the student is it, the teacher a deep
    copy (mode 'distill' only). weak_config: the weak objective used by 'augment' training
    and by the label-free validation loss: the exported model's weak triplet loss on the
    full validation images when the estimator has an all-pairs mode (correlation), else
    (CCVPE) the distillation loss itself; select such models on 'mean_error_m' instead.
    """

    def __init__(self, base_model: nn.Module, config: DistillConfig, weak_config: WeakConfig,
                 camera_model: str = 'panorama', yaw_key: str = 'yaw_rad') -> None:
        self.config = config
        self.student = base_model
        self.teacher = None
        if config.mode == 'distill':
            self.teacher = copy.deepcopy(base_model)
            for p in self.teacher.parameters():
                p.requires_grad_(False)
            self.teacher.eval()
            self.train_module = DistillLossModule(self.student, self.teacher, config,
                                                  camera_model, yaw_key)
            self.schedule = TeacherSchedule(config.teacher_update, config.ema_alpha,
                                            config.ema_every_steps, config.ema_scope)
        else:
            if not supports_all_pairs(base_model):
                raise ValueError(
                    "mode 'augment' trains with the weak in-batch loss, which needs an "
                    'estimator with an all-pairs mode (correlation). The descriptor (CCVPE) '
                    'base is trained with position labels, so its augmentation control would '
                    'be the supervised loss on masked images, a different experiment from '
                    "the paper's weak-base control; it is not offered")
            self.train_module = WeakLossModule(self.student, weak_config, yaw_key, mask=config,
                                               camera_model=camera_model)
        self._validator = (WeakLossModule(self.export_module(), weak_config, yaw_key)
                           if supports_all_pairs(base_model) else None)

    def state_modules(self) -> dict[str, nn.Module]:
        modules = {'student': self.student}
        if self.teacher is not None:
            modules['teacher'] = self.teacher
        return modules

    def export_module(self) -> nn.Module:
        return self.teacher if self.teacher is not None else self.student

    def after_step(self, global_step: int) -> None:
        if self.teacher is not None:
            self.schedule.after_step(self.teacher, self.student, global_step)

    def after_epoch(self, epoch: int) -> None:
        if self.teacher is not None:
            self.schedule.after_epoch(self.teacher, self.student)

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict[str, tuple[float, int]]:
        B = batch['ground'].shape[0]
        out = {}
        if self.teacher is not None:
            distill = float(self.train_module(batch, 0)['loss'])
            out['distill_loss'] = (distill * B, B)
            if self._validator is None:
                out['loss'] = (distill * B, B)
        if self._validator is not None and B >= 2:
            out.update(batch_sums(self._validator(batch, 0), B))
        return out
