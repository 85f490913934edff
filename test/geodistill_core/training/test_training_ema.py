"""Teacher updates: EMA math, ablations, and when they happen."""
import copy

import pytest
import torch
from torch import nn

from geodistill_core.training import TeacherSchedule, copy_weights, ema_update


def pair():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    teacher = copy.deepcopy(student)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p))
    student[1].running_mean.add_(1.0)
    student[1].num_batches_tracked.fill_(7)
    return teacher, student


def test_one_ema_update_moves_the_teacher_by_one_minus_alpha_of_the_gap():
    teacher, student = pair()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ema_update(teacher, student, 0.9)
    for key, value in teacher.state_dict().items():
        s, t0 = student.state_dict()[key], before[key]
        if value.is_floating_point():
            torch.testing.assert_close(value - t0, 0.1 * (s - t0), rtol=0, atol=1e-6)
        else:
            assert torch.equal(value, s)  # integer buffers follow the student
    assert not torch.equal(teacher[0].weight, student[0].weight)


def test_alpha_extremes_and_ablations():
    teacher, student = pair()
    kept = copy.deepcopy(teacher.state_dict())
    ema_update(teacher, student, 1.0)
    assert torch.equal(teacher[0].weight, kept['0.weight'])
    copy_weights(teacher, student)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, student.state_dict()[key])
    with pytest.raises(ValueError):
        ema_update(teacher, student, 1.5)


@pytest.mark.parametrize('update', ['ema', 'fixed', 'previous_student'])
def test_schedule_per_epoch(update):
    teacher, student = pair()
    start = teacher[0].weight.clone()
    schedule = TeacherSchedule(update, 0.9, every_steps=0)
    assert not schedule.after_step(teacher, student, 1)
    assert torch.equal(teacher[0].weight, start)  # per-epoch: steps do nothing
    changed = schedule.after_epoch(teacher, student)
    expected = {'ema': 0.9 * start + 0.1 * student[0].weight, 'fixed': start,
                'previous_student': student[0].weight}[update]
    torch.testing.assert_close(teacher[0].weight, expected, rtol=0, atol=1e-6)
    assert changed == (update != 'fixed')


def test_schedule_every_n_steps():
    teacher, student = pair()
    schedule = TeacherSchedule('ema', 0.5, every_steps=3)
    start = teacher[0].weight.clone()
    updates = [schedule.after_step(teacher, student, step) for step in range(1, 7)]
    assert updates == [False, False, True, False, False, True]
    gap = student[0].weight - start
    torch.testing.assert_close(teacher[0].weight, start + 0.75 * gap, rtol=0, atol=1e-6)
    assert not schedule.after_epoch(teacher, student)


def test_parameter_scope_averages_parameters_and_leaves_every_buffer():
    """scope 'parameters' (the reference): weights move by 0.1 of the gap; BatchNorm running
    statistics and num_batches_tracked stay the teacher's own (the 'state' scope moves them)."""
    teacher, student = pair()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ema_update(teacher, student, 0.9, scope='parameters')
    params = dict(teacher.named_parameters())
    for key, value in teacher.state_dict().items():
        if key in params:
            expected = before[key] + 0.1 * (student.state_dict()[key] - before[key])
            torch.testing.assert_close(value, expected, rtol=0, atol=1e-6)
        else:
            assert torch.equal(value, before[key]), key
    assert teacher[1].num_batches_tracked.item() == 0
    ema_update(teacher, student, 0.9)  # the default scope does move the buffers
    torch.testing.assert_close(teacher[1].running_mean, before['1.running_mean'] + 0.1,
                               rtol=0, atol=1e-6)
    schedule = TeacherSchedule('ema', 0.9, scope='parameters')
    kept = teacher[1].running_mean.clone()
    schedule.after_epoch(teacher, student)
    assert torch.equal(teacher[1].running_mean, kept)
    with pytest.raises(ValueError, match='scope'):
        ema_update(teacher, student, 0.9, scope='buffers')
