"""GeoDistill step: loss value, no teacher gradient, the mask reaching the estimator,
every ablation flag, and the student learning."""
import math

import pytest
import torch
from torch import nn

from geodistill_core.losses import DistillationLossConfig
from geodistill_core.models.correlation import LocationScores
from geodistill_core.training import (
    DistillConfig,
    DistillObjective,
    WeakConfig,
    batch_to_location_inputs,
    draw_ground_mask,
    location_scores,
)

TAU = 0.06


class StubEstimator(nn.Module):
    """Fixed 3x3 maps: T for the full image (teacher), scale * S for a masked one."""

    def __init__(self, teacher_maps, student_maps):
        super().__init__()
        self.register_buffer('T', teacher_maps)
        self.register_buffer('S', student_maps)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, ground_images, satellite_images, *, ground_visible_cols=None, **kwargs):
        maps = self.T if ground_visible_cols is None else self.scale * self.S
        return LocationScores([maps], [1.0])


def stub_objective(config):
    gen = torch.Generator().manual_seed(3)
    T, S = torch.rand(4, 3, 3, generator=gen), torch.rand(4, 3, 3, generator=gen)
    return DistillObjective(StubEstimator(T, S), config, WeakConfig()), T, S


def hand_ce(T, S, tau):
    """-sum_i P_t(i) log P_s(i) per map, batch mean, written out cell by cell."""
    total = 0.0
    for t, s in zip(T, S, strict=True):
        zt = sum(math.exp(v / tau) for v in t.flatten().tolist())
        zs = sum(math.exp(v / tau) for v in s.flatten().tolist())
        for vt, vs in zip(t.flatten().tolist(), s.flatten().tolist(), strict=True):
            total -= math.exp(vt / tau) / zt * (vs / tau - math.log(zs))
    return total / len(T)


def hand_kl(T, S, tau):
    """sum_i P_t(i) (log P_t(i) - log P_s(i)) per map, batch mean, cell by cell."""
    total = 0.0
    for t, s in zip(T, S, strict=True):
        t, s = t.flatten().tolist(), s.flatten().tolist()
        zt, zs = sum(math.exp(v / tau) for v in t), sum(math.exp(v / tau) for v in s)
        for vt, vs in zip(t, s, strict=True):
            p_t = math.exp(vt / tau) / zt
            total += p_t * (math.log(p_t) - (vs / tau - math.log(zs)))
    return total / len(T)


def hand_single_mode(T, S, tau):
    """-log P_s(argmax_i T(i)) per map (the teacher's best cell found by a plain loop)."""
    total = 0.0
    for t, s in zip(T, S, strict=True):
        t, s = t.flatten().tolist(), s.flatten().tolist()
        best = max(range(len(t)), key=lambda i: t[i])
        total -= s[best] / tau - math.log(sum(math.exp(v / tau) for v in s))
    return total / len(T)


def test_loss_equals_a_hand_computed_cross_entropy_on_3x3_maps(toy_batch):
    objective, T, S = stub_objective(DistillConfig())
    loss = objective.train_module(toy_batch, 0)['loss']
    assert loss.item() == pytest.approx(hand_ce(T, S, TAU), rel=1e-5)


@pytest.mark.parametrize('sharpen, target, divergence', [
    (False, 'soft', 'ce'), (True, 'single_mode', 'ce'), (True, 'soft', 'kl')])
def test_loss_ablations_change_the_loss_as_specified(toy_batch, sharpen, target, divergence):
    config = DistillConfig(loss=DistillationLossConfig(sharpen=sharpen, target=target,
                                                       divergence=divergence))
    objective, T, S = stub_objective(config)
    loss = objective.train_module(toy_batch, 0)['loss'].item()
    tau = TAU if sharpen else 1.0
    if target == 'single_mode':
        expected = hand_single_mode(T, S, tau)
    elif divergence == 'kl':
        expected = hand_kl(T, S, tau)
    else:
        expected = hand_ce(T, S, tau)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert loss != pytest.approx(hand_ce(T, S, TAU), rel=1e-3)


def test_teacher_gets_no_gradient_and_is_not_optimised(toy_batch, toy_estimator):
    torch.manual_seed(0)
    objective = DistillObjective(toy_estimator(), DistillConfig(), WeakConfig())
    params = list(objective.train_module.parameters())
    teacher_ids = {id(p) for p in objective.teacher.parameters()}
    assert params and not teacher_ids & {id(p) for p in params}
    objective.train_module(toy_batch, 5)['loss'].backward()
    assert all(p.grad is None and not p.requires_grad for p in objective.teacher.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def test_mask_reaches_the_image_and_the_estimator(toy_batch, toy_estimator):
    objective = DistillObjective(toy_estimator(), DistillConfig(), WeakConfig())
    objective.train_module(toy_batch, 11)
    (teacher_call,) = objective.teacher.calls
    (student_call,) = objective.student.calls
    assert teacher_call['visible_cols'] is None
    assert torch.equal(teacher_call['ground'], toy_batch['ground'])
    cols = student_call['visible_cols']
    assert cols.shape == (4, 32) and cols.dtype == torch.bool
    fraction = cols.float().mean(dim=1)
    assert ((fraction >= 180 / 360 - 1e-6) & (fraction <= 240 / 360 + 1 / 32)).all()
    # A column mask travels as ground_visible_cols only: the model blanks the columns once,
    # after its normalisation (test_masked_image_reaches_the_backbone_once).
    assert torch.equal(student_call['ground'], toy_batch['ground'])


def test_masked_image_reaches_the_backbone_once():
    """Through a real LocationModel: the student's backbone sees the normalised image with
    the hidden columns at 0 (the mean colour), the visible ones unchanged; the teacher's the
    whole image."""
    from geodistill_core.models.backbones import preprocess_images
    from geodistill_core.training.config import ModelConfig
    from geodistill_core.training.models import build_model
    torch.manual_seed(0)
    model = build_model(ModelConfig(ground_backbone='vgg16_unet_tiny',
                                    satellite_backbone='vgg16_unet_tiny', pretrained=False))
    seen = []
    model.estimator.ground_extractor.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().clone()))
    objective = DistillObjective(model, DistillConfig(), WeakConfig())
    g = torch.Generator().manual_seed(3)
    batch = {'ground': torch.rand(2, 3, 32, 64, generator=g) * 0.8 + 0.1,
             'satellite': torch.rand(2, 3, 64, 64, generator=g),
             'sat_meters_per_px': torch.full((2,), 0.5, dtype=torch.float64),
             'camera_height_m': torch.full((2,), 2.0), 'yaw_rad': torch.full((2,), 1.5708)}
    objective.train_module(batch, 4)
    teacher_input, student_input = seen
    normalised = preprocess_images(batch['ground'], model.ground_preprocess, check_range=False)
    torch.testing.assert_close(teacher_input, normalised)
    cols = draw_ground_mask(DistillConfig(), 'panorama', batch['ground'],
                            torch.Generator().manual_seed(4)).visible_cols
    hidden = ~cols[:, None, None, :].expand_as(normalised)
    assert hidden.any() and (~hidden).any()
    assert (student_input[hidden] == 0).all()
    torch.testing.assert_close(student_input[~hidden], normalised[~hidden])


def test_same_step_seed_same_mask_other_seed_other_mask(toy_batch):
    ground = toy_batch['ground']
    draw = [draw_ground_mask(DistillConfig(), 'panorama', ground,
                             torch.Generator().manual_seed(s)).visible_cols for s in (1, 1, 2)]
    assert torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], draw[2])


def test_fov_range_and_pinhole_stripe_and_masks_off(toy_batch, toy_estimator):
    ground = toy_batch['ground']
    gen = torch.Generator().manual_seed(0)
    narrow = draw_ground_mask(DistillConfig(fov_range_deg=(90.0, 90.0)), 'panorama', ground,
                              gen)
    assert (narrow.visible_cols.sum(dim=1) == 8).all()  # 90 deg of 32 columns
    stripe = draw_ground_mask(DistillConfig(), 'pinhole', ground, gen).visible_cols
    blanked = (~stripe).sum(dim=1)
    assert ((blanked >= round(0.17 * 32)) & (blanked <= round(0.25 * 32))).all()
    for row, n in zip(~stripe, blanked.tolist(), strict=True):  # one contiguous stripe
        hidden_cols = row.nonzero()[:, 0]
        assert hidden_cols[-1] - hidden_cols[0] + 1 == n
    objective = DistillObjective(toy_estimator(), DistillConfig(mask='none'), WeakConfig())
    objective.train_module(toy_batch, 0)
    assert objective.student.calls[0]['visible_cols'] is None
    assert torch.equal(objective.student.calls[0]['ground'], ground)


def _tiny_correlation_model():
    from geodistill_core.training import ModelConfig, build_model
    torch.manual_seed(0)
    return build_model(ModelConfig(ground_backbone='vgg16_unet_tiny',
                                   satellite_backbone='vgg16_unet_tiny', pretrained=False))


@pytest.mark.parametrize('mask_name', ['random_patch', 'max_activation'])
def test_patch_masks_reach_the_bev_and_the_cosine_norms(toy_batch, mask_name):
    """The ablation masks (random patches, max activation) remove the BEV cells the blanked
    image regions produce, as the FoV mask does (reference: the mask is projected into the
    BEV too): hidden pixels have no influence, and the templates lose cells."""
    model = _tiny_correlation_model()
    config = DistillConfig(mask=mask_name, patch_px=(4, 4))
    inputs = batch_to_location_inputs(toy_batch)
    ground = inputs['ground_images']
    mask = draw_ground_mask(config, 'panorama', ground, torch.Generator().manual_seed(1),
                            teacher=model)
    assert mask.visible_cols is mask.visible and mask.visible.shape == (4, 16, 32)
    share = (~mask.visible).float().mean(dim=(1, 2))
    if mask_name == 'random_patch':  # 4 x 8 tiles of 4 px, a share in [1/3, 1/2) each
        assert ((share >= 11 / 32 - 1e-6) & (share <= 16 / 32 + 1e-6)).all()
    else:
        assert torch.allclose(share, torch.full_like(share, 5 / 12), atol=0.05)
    a = location_scores(model, inputs, mask.visible_cols)
    scrambled = ground.clone()
    hidden = ~mask.visible[:, None].expand_as(scrambled)
    scrambled[hidden] = torch.rand(int(hidden.sum()))
    b = location_scores(model, {**inputs, 'ground_images': scrambled}, mask.visible_cols)
    for sa, sb in zip(a.scores, b.scores, strict=True):
        torch.testing.assert_close(sa, sb)
    est = model.estimator
    sat = est.satellite_levels(inputs['satellite_images'])  # sizes only
    geometry = est.level_geometry((32, 32), sat, float(inputs['sat_meters_per_px'][0]))
    full = est.ground_templates(ground, geometry, inputs['camera_height_m'],
                                inputs['ground_yaw_rad'])
    masked = est.ground_templates(ground, geometry, inputs['camera_height_m'],
                                  inputs['ground_yaw_rad'], ground_visible_cols=mask.visible)
    for f, m in zip(full, masked, strict=True):
        assert not (m.valid & ~f.valid).any()
        assert torch.all(m.confidence[~m.valid[:, None]] == 0)
    finest_full, finest_masked = full[-1].valid.float().mean(), masked[-1].valid.float().mean()
    assert finest_masked < 0.85 * finest_full  # masked cells leave the template and norms


def test_max_activation_needs_a_teacher_with_ground_features(toy_batch, toy_estimator):
    with pytest.raises(ValueError, match='max_activation'):
        draw_ground_mask(DistillConfig(mask='max_activation'), 'panorama',
                         toy_batch['ground'], torch.Generator(), teacher=None)


class AllPairsStub(nn.Module):
    """Fixed all-pairs 2x2 maps: A for the full images, B for masked ones (records calls)."""

    def __init__(self, full, masked):
        super().__init__()
        self.register_buffer('A', full)
        self.register_buffer('M', masked)
        self.scale = nn.Parameter(torch.ones(()))
        self.calls = []

    def forward(self, ground_images, satellite_images, *, ground_visible_cols=None,
                all_pairs=False, **kwargs):
        self.calls.append({'visible_cols': ground_visible_cols, 'all_pairs': all_pairs})
        maps = self.A if ground_visible_cols is None else self.scale * self.M
        return LocationScores([maps], [1.0])


def test_augment_mode_is_the_weak_loss_on_masked_images_without_teacher(toy_batch):
    """Hand-computed: d_mn = min over cells of (2 - 2 s_mn); loss = mean over m != n of
    log(1 + exp(10 (d_mm - d_mn))) on the MASKED maps (the full ones would differ)."""
    gen = torch.Generator().manual_seed(4)
    full, masked = torch.rand(4, 4, 2, 2, generator=gen), torch.rand(4, 4, 2, 2, generator=gen)
    model = AllPairsStub(full, masked)
    objective = DistillObjective(model, DistillConfig(mode='augment'), WeakConfig())
    assert objective.teacher is None and objective.export_module() is model
    loss = objective.train_module(toy_batch, 9)['loss'].item()

    def hand(maps):
        d = [[min(2 - 2 * v for v in maps[m][n].flatten().tolist()) for n in range(4)]
             for m in range(4)]
        terms = [math.log1p(math.exp(10 * (d[m][m] - d[m][n])))
                 for m in range(4) for n in range(4) if m != n]
        return sum(terms) / len(terms)
    assert loss == pytest.approx(hand(masked), rel=1e-5)
    assert loss != pytest.approx(hand(full), rel=1e-3)
    call = model.calls[0]
    assert call['all_pairs'] is True and call['visible_cols'].shape == (4, 32)


@pytest.mark.parametrize('update', ['ema', 'fixed', 'previous_student'])
def test_teacher_update_ablations_at_epoch_end(toy_estimator, update):
    torch.manual_seed(0)
    objective = DistillObjective(toy_estimator(), DistillConfig(teacher_update=update),
                                 WeakConfig())
    with torch.no_grad():
        objective.student.sat_conv.weight.add_(1.0)
    start = objective.teacher.sat_conv.weight.clone()
    objective.after_step(1)
    assert torch.equal(objective.teacher.sat_conv.weight, start)
    objective.after_epoch(0)
    student = objective.student.sat_conv.weight
    expected = {'ema': 0.9 * start + 0.1 * student, 'fixed': start,
                'previous_student': student}[update]
    torch.testing.assert_close(objective.teacher.sat_conv.weight, expected)


def test_student_loss_decreases(toy_batch, toy_estimator):
    torch.manual_seed(0)
    objective = DistillObjective(toy_estimator(), DistillConfig(), WeakConfig())
    with torch.no_grad():  # a student that starts away from its teacher
        for p in objective.student.parameters():
            p.add_(0.3 * torch.randn_like(p))
    optimizer = torch.optim.AdamW(objective.train_module.parameters(), lr=3e-2)
    losses = []
    for step in range(15):
        loss = objective.train_module(toy_batch, step % 3)['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3])


def test_masked_content_cannot_reach_the_real_estimator(toy_batch):
    """LocationModel + the correlation estimator: hidden columns have no influence at all,
    and the estimator receives the column mask (to drop the BEV cells)."""
    from geodistill_core.training import ModelConfig, build_model
    torch.manual_seed(0)
    model = build_model(ModelConfig(ground_backbone='vgg16_unet_tiny',
                                    satellite_backbone='vgg16_unet_tiny', pretrained=False))
    seen = []
    original = model.estimator.forward

    def spy(*args, **kwargs):
        seen.append(kwargs.get('ground_visible_cols'))
        return original(*args, **kwargs)
    model.estimator.forward = spy
    inputs = batch_to_location_inputs(toy_batch)
    cols = draw_ground_mask(DistillConfig(), 'panorama', inputs['ground_images'],
                            torch.Generator().manual_seed(0)).visible_cols
    a = location_scores(model, inputs, cols)
    scrambled = inputs['ground_images'].clone()
    hidden = ~cols[:, None, None, :].expand_as(scrambled)
    scrambled[hidden] = torch.rand(int(hidden.sum()))
    b = location_scores(model, {**inputs, 'ground_images': scrambled}, cols)
    for sa, sb in zip(a.scores, b.scores, strict=True):
        torch.testing.assert_close(sa, sb)
    assert all(s is cols for s in seen)
    c = location_scores(model, {**inputs, 'ground_images': scrambled})
    assert not torch.allclose(a.scores[-1], c.scores[-1])
