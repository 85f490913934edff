"""Losses: hand-computed CE/KL, teacher isolation, triplet, Gaussian heatmap targets."""
import math

import pytest
import torch

from geodistill_core.losses import (
    DistillationLossConfig,
    best_match_distance,
    distillation_cross_entropy,
    distillation_kl,
    distillation_loss,
    gaussian_target,
    heatmap_cross_entropy,
    weak_triplet_loss,
)


def softmax_list(values, tau):
    e = [math.exp(v / tau) for v in values]
    return [x / sum(e) for x in e]


def test_cross_entropy_matches_hand_computation_on_2x2():
    tau = 0.5
    teacher = torch.tensor([[[0.9, 0.1], [0.3, -0.2]], [[0.0, 0.0], [0.0, 1.0]]],
                           dtype=torch.float64)
    student = torch.tensor([[[0.2, 0.8], [0.4, 0.0]], [[0.5, -0.5], [0.1, 0.3]]],
                           dtype=torch.float64)
    expected = 0.0
    for b in range(2):
        p_t = softmax_list(teacher[b].flatten().tolist(), tau)
        p_s = softmax_list(student[b].flatten().tolist(), tau)
        expected += -sum(pt * math.log(ps) for pt, ps in zip(p_t, p_s, strict=True)) / 2
    got = distillation_cross_entropy(teacher, student, tau=tau)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # sharpen=False is a plain softmax (tau = 1), whatever tau says
    plain = distillation_cross_entropy(teacher, student, tau=0.06, sharpen=False)
    assert plain.item() == pytest.approx(
        distillation_cross_entropy(teacher, student, tau=1.0).item(), rel=1e-12)
    assert plain.item() != pytest.approx(got.item(), rel=1e-3)


def test_no_gradient_reaches_the_teacher():
    teacher_net = torch.nn.Conv2d(1, 1, 3, padding=1)
    student_net = torch.nn.Conv2d(1, 1, 3, padding=1)
    x = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    loss = distillation_cross_entropy(teacher_net(x)[:, 0], student_net(x)[:, 0])
    loss.backward()
    assert all(p.grad is None for p in teacher_net.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student_net.parameters())
    t = torch.randn(2, 4, 4, requires_grad=True)
    s = torch.randn(2, 4, 4, requires_grad=True)
    distillation_kl(t, s).backward()
    assert t.grad is None and s.grad is not None


def test_cross_entropy_is_minimal_when_student_equals_teacher():
    g = torch.Generator().manual_seed(1)
    teacher = torch.rand(3, 5, 6, generator=g, dtype=torch.float64)
    student = teacher.clone().requires_grad_(True)
    ce = distillation_cross_entropy(teacher, student)
    ce.backward()
    assert student.grad.abs().max() < 1e-10  # dCE/ds = (P_s - P_t) / (tau B)
    perturbed = teacher + 0.05 * torch.randn(3, 5, 6, generator=g, dtype=torch.float64)
    assert distillation_cross_entropy(teacher, perturbed) > ce


def test_kl_equals_ce_minus_teacher_entropy():
    g = torch.Generator().manual_seed(2)
    teacher = torch.rand(2, 4, 5, generator=g, dtype=torch.float64)
    student = torch.rand(2, 4, 5, generator=g, dtype=torch.float64)
    tau = 0.1
    p_t = torch.softmax(teacher.flatten(1) / tau, dim=1)
    entropy = -(p_t * p_t.log()).sum(dim=1).mean()
    ce = distillation_cross_entropy(teacher, student, tau)
    kl = distillation_kl(teacher, student, tau)
    assert kl.item() == pytest.approx((ce - entropy).item(), abs=1e-10)
    assert kl > 0 and distillation_kl(teacher, teacher, tau).item() == pytest.approx(0, abs=1e-12)


def test_single_mode_target_is_the_teacher_argmax():
    teacher = torch.tensor([[[0.1, 0.7], [0.69, 0.0]]], dtype=torch.float64)
    student = torch.tensor([[[0.3, 0.2], [0.5, 0.1]]], dtype=torch.float64)
    tau = 0.2
    p_s = softmax_list(student.flatten().tolist(), tau)
    got = distillation_cross_entropy(teacher, student, tau, single_mode=True)
    assert got.item() == pytest.approx(-math.log(p_s[1]), rel=1e-12)


def test_masked_cells_drop_out_of_the_loss():
    g = torch.Generator().manual_seed(3)
    teacher = torch.rand(2, 4, 4, generator=g)
    student = torch.rand(2, 4, 4, generator=g, requires_grad=True)
    valid = torch.ones(2, 4, 4, dtype=torch.bool)
    valid[:, 0] = False
    loss = distillation_cross_entropy(teacher, student, valid=valid)
    loss.backward()
    assert torch.isfinite(student.grad).all() and torch.all(student.grad[:, 0] == 0)
    changed_t, changed_s = teacher.clone(), student.detach().clone()
    changed_t[:, 0] = 50.0
    changed_s[:, 0] = -50.0
    again = distillation_cross_entropy(changed_t, changed_s, valid=valid)
    assert again.item() == pytest.approx(loss.item(), rel=1e-6)
    # equals the CE over the valid cells alone
    sub = distillation_cross_entropy(teacher[:, 1:], student.detach()[:, 1:])
    assert sub.item() == pytest.approx(loss.item(), rel=1e-6)
    kl = distillation_kl(teacher, student, valid=valid)
    assert torch.isfinite(kl)


def test_multi_level_loss_is_the_mean_of_levels_and_config_selects_variants():
    g = torch.Generator().manual_seed(4)
    t = [torch.rand(2, 4, 4, generator=g), torch.rand(2, 8, 8, generator=g)]
    s = [torch.rand(2, 4, 4, generator=g), torch.rand(2, 8, 8, generator=g)]
    got = distillation_loss(t, s)
    expected = (distillation_cross_entropy(t[0], s[0]) + distillation_cross_entropy(t[1], s[1]))
    assert got.item() == pytest.approx(expected.item() / 2, rel=1e-6)
    kl = distillation_loss(t, s, DistillationLossConfig(divergence='kl'))
    assert kl.item() == pytest.approx(
        (distillation_kl(t[0], s[0]) + distillation_kl(t[1], s[1])).item() / 2, rel=1e-6)
    one = distillation_loss(t, s, DistillationLossConfig(target='single_mode', sharpen=False))
    assert one.item() == pytest.approx(
        (distillation_cross_entropy(t[0], s[0], sharpen=False, single_mode=True)
         + distillation_cross_entropy(t[1], s[1], sharpen=False, single_mode=True)).item() / 2,
        rel=1e-6)
    with pytest.raises(ValueError):
        DistillationLossConfig(divergence='kl', target='single_mode')
    with pytest.raises(ValueError, match='levels'):
        distillation_loss(t, s[:1])
    with pytest.raises(ValueError, match=r'\(2, 4, 4\).*\(2, 8, 8\)'):
        distillation_cross_entropy(t[0], s[1])


def test_heatmap_cross_entropy_to_a_gaussian_target():
    target = gaussian_target(9, 9, torch.tensor([[4.0, 4.0]]), 1.5)
    assert heatmap_cross_entropy(target, target.log()).item() == pytest.approx(
        -(target * target.log()).sum().item(), rel=1e-5)


def test_weak_triplet_by_hand_and_decreasing_with_the_diagonal():
    d = torch.tensor([[0.2, 0.5], [0.9, 0.4]], dtype=torch.float64)
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected = (sp(10 * (0.2 - 0.5)) + sp(10 * (0.4 - 0.9))) / 2
    assert weak_triplet_loss(d).item() == pytest.approx(expected, rel=1e-12)
    sym = (expected + (sp(10 * (0.4 - 0.5)) + sp(10 * (0.2 - 0.9))) / 2) / 2
    assert weak_triplet_loss(d, symmetric=True).item() == pytest.approx(sym, rel=1e-12)
    g = torch.Generator().manual_seed(5)
    D = torch.rand(6, 6, generator=g, dtype=torch.float64) * 2
    losses = []
    for shrink in (1.0, 0.5, 0.0):
        Dk = D.clone()
        Dk.diagonal().mul_(shrink)
        losses.append(weak_triplet_loss(Dk).item())
    assert losses[0] > losses[1] > losses[2]
    # stable for extreme margins (softplus, not log(1 + exp))
    big = torch.tensor([[400.0, 0.0], [0.0, 400.0]])
    assert weak_triplet_loss(big).item() == pytest.approx(4000.0)
    with pytest.raises(ValueError, match=r'\(2, 3\)'):
        weak_triplet_loss(torch.zeros(2, 3))


def test_best_match_distance_and_gradient_to_the_correlation():
    cos = torch.tensor([[[[0.1, 0.9], [0.3, -1.0]], [[0.2, 0.2], [0.5, 0.0]]]],
                       requires_grad=True)  # (Bs=1, Bg=2, 2, 2)
    d = best_match_distance(cos)
    assert d[0].tolist() == pytest.approx([0.2, 1.0])
    valid = torch.tensor([[True, False], [True, True]])
    assert best_match_distance(cos, valid)[0].tolist() == pytest.approx([1.4, 1.0])
    d.sum().backward()
    assert cos.grad[0, 0, 0, 1] == -2.0 and cos.grad[0, 1, 1, 0] == -2.0


def test_gaussian_target_normalised_and_centred():
    c = torch.tensor([[10.25, 12.5], [0.0, 0.0]], dtype=torch.float64)
    t = gaussian_target(22, 26, c, 2.0)  # +-5 sigma fits: the mean is the centre
    assert torch.allclose(t.sum(dim=(1, 2)), torch.ones(2, dtype=torch.float64))
    rows = torch.arange(22, dtype=torch.float64).view(22, 1)
    cols = torch.arange(26, dtype=torch.float64).view(1, 26)
    assert (t[0] * rows).sum().item() == pytest.approx(10.25, abs=1e-6)
    assert (t[0] * cols).sum().item() == pytest.approx(12.5, abs=1e-6)
    var_row = (t[0] * (rows - 10.25) ** 2).sum().item()
    assert var_row == pytest.approx(4.0, rel=1e-3)
    assert t[1].argmax().item() == 0


def test_gradcheck_distillation_and_triplet():
    g = torch.Generator().manual_seed(6)
    t = torch.rand(2, 3, 3, generator=g, dtype=torch.float64)
    s = torch.rand(2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    valid = torch.ones(3, 3, dtype=torch.bool)
    valid[1, 1] = False
    assert torch.autograd.gradcheck(lambda x: distillation_cross_entropy(t, x, 0.3, valid), (s,))
    assert torch.autograd.gradcheck(lambda x: distillation_kl(t, x, 0.3, valid), (s,))
    d = torch.rand(3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: weak_triplet_loss(x, symmetric=True), (d,))
