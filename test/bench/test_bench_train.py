"""bench_train's reference-structure variant: same model and loss, the reference's autograd
through the teacher (the memory the comparison measures)."""
from dataclasses import replace

from bench_module import load_bench
import torch

from geodistill_core.training.distill import DistillObjective
from geodistill_core.training.models import build_model
from geodistill_core.training.presets import preset


def _objective():
    conf = preset('tiny', 'distill')
    conf = replace(conf, model=replace(conf.model, pretrained=False))
    torch.manual_seed(0)
    model = build_model(conf.model)
    return conf, DistillObjective(model, conf.distill, conf.weak, conf.model.camera_model,
                                  conf.data.yaw_key)


def test_reference_structure_gives_the_same_loss_with_gradients_through_the_teacher():
    bench = load_bench('bench_train')
    conf, ours = _objective()
    _, reference = _objective()
    bench.reference_step_structure(reference)
    batch = bench.synthetic_batch(conf, 2)
    loss_ours = ours.train_module(batch, 3)['loss']
    loss_ref = reference.train_module(batch, 3)['loss']
    torch.testing.assert_close(loss_ref, loss_ours, rtol=1e-5, atol=1e-6)
    loss_ours.backward()
    loss_ref.backward()
    # ours: the teacher is outside autograd; the reference's step back-propagates into it
    assert all(p.grad is None for p in ours.teacher.parameters())
    assert not any(p.requires_grad for p in ours.teacher.parameters())
    teacher_grads = [p.grad for p in reference.teacher.parameters() if p.grad is not None]
    assert teacher_grads and any(float(g.abs().sum()) > 0 for g in teacher_grads)
    # the students' gradients are the same: the step structure changes memory, not training
    for a, b in zip(ours.student.parameters(), reference.student.parameters(), strict=True):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6)
