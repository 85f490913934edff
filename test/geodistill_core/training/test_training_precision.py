"""Channels-last, CPU bfloat16 autocast, the teacher pass and activation checkpointing.

Speed is measured by bench/bench_train.py only; these tests pin behaviour: same results in
either memory format, float32 correlation and losses under autocast, no autograd graph for
the teacher, identical gradients with checkpointing.
"""
import logging
import math

import pytest
import torch

from geodistill_core import precision
from geodistill_core.localizer import Localizer
from geodistill_core.models.frozen_batchnorm import freeze_batchnorm, frozen_batchnorm_count
from geodistill_core.training import DistillConfig, WeakConfig
from geodistill_core.training.adapter import batch_to_location_inputs, location_scores
from geodistill_core.training.config import LoopConfig, ModelConfig, TrainConfig
from geodistill_core.training.distill import DistillObjective
from geodistill_core.training.distributed import DistributedContext
from geodistill_core.training.loop import Trainer, enable_activation_checkpointing
from geodistill_core.training.models import build_model
from geodistill_core.training.objective import WeakObjective

TINY = {'vgg': ('vgg16_unet_tiny', (0, 2), (32, 64), 64),
        'lite0': ('efficientnet_lite0_tiny', (2, 1), (64, 128), 64)}


def tiny_model(kind='vgg', camera_model='panorama'):
    name, levels, _, _ = TINY[kind]
    torch.manual_seed(0)
    return build_model(ModelConfig(ground_backbone=name, satellite_backbone=name,
                                   pretrained=False, levels=levels, camera_model=camera_model))


def tiny_batch(kind='vgg', B=3, seed=0, pinhole=False):
    _, _, (H, W), S = TINY[kind]
    g = torch.Generator().manual_seed(seed)
    batch = {'ground': torch.rand(B, 3, H, W, generator=g),
             'satellite': torch.rand(B, 3, S, S, generator=g),
             'sat_meters_per_px': torch.full((B,), 0.5, dtype=torch.float64),
             'camera_height_m': torch.full((B,), 2.0),
             'yaw_rad': torch.rand(B, generator=g) * 2 * math.pi}
    if pinhole:
        K = torch.tensor([[0.6 * W, 0.0, (W - 1) / 2], [0.0, 0.6 * W, (H - 1) / 2],
                          [0.0, 0.0, 1.0]])
        batch['K'] = K.expand(B, 3, 3).clone()
    return batch


def scores_of(model, batch, all_pairs=False):
    inputs = batch_to_location_inputs(batch)
    return location_scores(model, inputs, all_pairs=all_pairs).scores


@pytest.mark.parametrize('kind, camera_model', [('vgg', 'panorama'), ('lite0', 'pinhole')])
def test_channels_last_gives_the_contiguous_scores(kind, camera_model):
    model = tiny_model(kind, camera_model).eval()
    batch = tiny_batch(kind, pinhole=camera_model == 'pinhole')
    with torch.no_grad():
        reference = scores_of(model, batch)
        precision.to_channels_last(model)
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last)
                             and not m.weight.is_contiguous() for m in convs
                             if m.weight.shape[-2:] != (1, 1) and m.weight.shape[1] > 1)
        cl_batch = precision.images_channels_last(batch)
        assert cl_batch['ground'].is_contiguous(memory_format=torch.channels_last)
        assert cl_batch['sat_meters_per_px'] is batch['sat_meters_per_px']
        channels_last = scores_of(model, cl_batch)
    for a, b in zip(reference, channels_last, strict=True):
        assert a.abs().max() > 0.1
        torch.testing.assert_close(b, a, atol=2e-5, rtol=0)


def test_bf16_autocast_lowers_the_backbones_but_not_correlation_or_losses():
    model = tiny_model()
    backbone_dtypes = []
    model.estimator.satellite_extractor.register_forward_hook(
        lambda module, args, out: backbone_dtypes.append(out[0].dtype))
    batch = tiny_batch()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        pairs = scores_of(model, batch, all_pairs=True)
        weak = WeakObjective(model, WeakConfig()).train_module(batch, 0)
        distill = DistillObjective(model, DistillConfig(), WeakConfig()).train_module(batch, 0)
    assert backbone_dtypes and set(backbone_dtypes) == {torch.bfloat16}
    assert all(s.dtype == torch.float32 for s in pairs)
    assert weak['loss'].dtype == torch.float32 and distill['loss'].dtype == torch.float32


def test_teacher_pass_keeps_no_autograd_graph():
    """Nothing is saved for backward while the teacher runs, its outputs carry no graph, the
    student's do; only the student's parameters get gradients."""
    model = tiny_model()
    objective = DistillObjective(model, DistillConfig(), WeakConfig())
    outputs, saved, windows = {}, [], {}
    for name, module in (('teacher', objective.teacher), ('student', objective.student)):
        module.estimator.ground_extractor.register_forward_hook(
            lambda m, args, out, name=name: outputs.setdefault(name, out) and None)
        module.register_forward_pre_hook(
            lambda m, args, name=name: windows.setdefault(name, [len(saved)]) and None)
        module.register_forward_hook(
            lambda m, args, out, name=name: windows[name].append(len(saved)))
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t,
                                                  lambda t: t):
        loss = objective.train_module(tiny_batch(), 3)['loss']
    start, end = windows['teacher']
    assert end == start  # the teacher pass saved nothing
    start, end = windows['student']
    assert end - start > 10
    assert all(t.grad_fn is None and not t.requires_grad for t in outputs['teacher'])
    assert all(t.grad_fn is not None for t in outputs['student'])
    loss.backward()
    assert all(p.grad is None for p in objective.teacher.parameters())
    assert all(p.grad is not None for p in objective.student.parameters())


def _trainer(tmp_path, kind='vgg', **loop):
    name, levels, ground_hw, sat_size = TINY[kind]
    conf = TrainConfig(data=TrainConfig().data.__class__(dataset='flat_world', batch_size=3,
                                                         min_distance_m=0.0, num_workers=0,
                                                         ground_hw=ground_hw,
                                                         sat_size=sat_size),
                       model=ModelConfig(ground_backbone=name, satellite_backbone=name,
                                         pretrained=False, levels=levels),
                       loop=LoopConfig(device='cpu', progress=False, tensorboard=False, **loop))
    model = build_model(conf.model)
    objective = DistillObjective(model, DistillConfig(), WeakConfig())
    context = DistributedContext(0, 1, 0, torch.device('cpu'))
    return Trainer(conf, objective, list(range(3)), None, tmp_path, context,
                   lambda *args: None), model


@pytest.mark.parametrize('native', [True, False])
def test_trainer_bf16_on_cpu_only_with_native_bfloat16(tmp_path, monkeypatch, caplog, native):
    monkeypatch.setattr(precision, 'cpu_has_native_bf16', lambda: native)
    with caplog.at_level(logging.WARNING):
        trainer, model = _trainer(tmp_path, amp='bf16')
    assert trainer.amp_dtype == (torch.bfloat16 if native else None)
    assert ('training in float32' in caplog.text) is (not native)
    dtypes = []
    model.estimator.ground_extractor.register_forward_hook(
        lambda m, args, out: dtypes.append(out[0].dtype))
    logged = trainer.train_step(tiny_batch())
    assert math.isfinite(logged['loss']) and logged['grad_norm'] > 0
    assert set(dtypes) == {torch.bfloat16 if native else torch.float32}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights


@pytest.mark.parametrize('native', [True, False])
def test_trainer_amp_auto_is_bf16_where_native_and_silent_elsewhere(tmp_path, monkeypatch,
                                                                    caplog, native):
    monkeypatch.setattr(precision, 'cpu_has_native_bf16', lambda: native)
    with caplog.at_level(logging.WARNING):
        trainer, _ = _trainer(tmp_path, amp='auto')
    assert trainer.amp_dtype == (torch.bfloat16 if native else None)
    assert 'training in float32' not in caplog.text
    assert precision.native_bf16('cpu') == (torch.bfloat16 if native else None)


@pytest.mark.parametrize('channels_last', [True, False])
def test_trainer_memory_format(tmp_path, channels_last):
    trainer, model = _trainer(tmp_path, channels_last=channels_last)
    weight = model.estimator.satellite_extractor.features[2].weight  # 3x3, 8 -> 8 channels
    assert weight.is_contiguous(memory_format=torch.channels_last) is channels_last
    teacher_weight = trainer.objective.teacher.estimator.satellite_extractor.features[2].weight
    assert teacher_weight.is_contiguous(memory_format=torch.channels_last) is channels_last
    seen = []
    model.estimator.satellite_extractor.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    trainer.train_step(tiny_batch())
    assert seen and all(s is channels_last for s in seen)


def test_fp32_and_channels_last_steps_agree(tmp_path):
    results = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        trainer, model = _trainer(tmp_path / str(channels_last), channels_last=channels_last)
        for step in range(2):
            logged = trainer.train_step(tiny_batch(seed=step))
        results.append((logged['loss'], [p.detach().clone() for p in model.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-4)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


def test_activation_checkpointing_same_gradients_fewer_saved_tensors():
    batch = tiny_batch()
    grads, saved_bytes = [], []
    for checkpointing in (False, True):
        model = tiny_model().train()
        if checkpointing:
            assert enable_activation_checkpointing(WeakObjective(model, WeakConfig())
                                                   .train_module) == 1
        objective = WeakObjective(model, WeakConfig())
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(
                lambda t, sizes=sizes: sizes.append(t.numel() * t.element_size()) or t,
                lambda t: t):
            loss = objective.train_module(batch, 0)['loss']
        loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        saved_bytes.append(sum(sizes))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)
    assert saved_bytes[1] < 0.7 * saved_bytes[0]


def test_activation_checkpointing_refuses_batchnorm_backbones():
    model = tiny_model('lite0')
    with pytest.raises(ValueError, match='BatchNorm'):
        enable_activation_checkpointing(model)
    with pytest.raises(ValueError, match='no estimator'):
        enable_activation_checkpointing(torch.nn.Linear(2, 2))


def _running_statistics(module):
    return {k: v.clone() for k, v in module.state_dict().items() if 'running_' in k}


@pytest.mark.parametrize('batchnorm', ['batch', 'frozen'])
def test_trainer_frozen_batchnorm_keeps_statistics_and_trains_the_affine(tmp_path, batchnorm):
    trainer, model = _trainer(tmp_path, kind='lite0', batchnorm=batchnorm)
    teacher = trainer.objective.teacher
    n_norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert frozen_batchnorm_count(model) == (n_norms if batchnorm == 'frozen' else 0)
    assert frozen_batchnorm_count(teacher) == (n_norms if batchnorm == 'frozen' else 0)
    before = _running_statistics(model)
    logged = trainer.train_step(tiny_batch('lite0'))
    assert math.isfinite(logged['loss'])
    after = _running_statistics(model)
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    if batchnorm == 'frozen':
        assert not moved
        norm = model.estimator.ground_extractor
        assert any(n.endswith('bn1.weight') and p.grad is not None and p.grad.abs().sum() > 0
                   for n, p in norm.named_parameters())
    else:  # the counter-example: batch statistics update the running ones
        assert moved


def test_activation_checkpointing_with_frozen_batchnorm_same_gradients():
    batch = tiny_batch('lite0')
    grads = []
    for checkpointing in (False, True):
        model = tiny_model('lite0').train()
        freeze_batchnorm(model)
        objective = WeakObjective(model, WeakConfig())
        if checkpointing:
            assert enable_activation_checkpointing(objective.train_module) == 1
        objective.train_module(batch, 0)['loss'].backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)


def test_loop_config_refuses_an_unknown_batchnorm_mode():
    with pytest.raises(ValueError, match='batchnorm'):
        LoopConfig(batchnorm='sync')


@pytest.mark.parametrize('native', [True, False])
def test_localizer_bfloat16_on_cpu_only_with_native_bfloat16(monkeypatch, native):
    monkeypatch.setattr(precision, 'cpu_has_native_bf16', lambda: native)
    model = tiny_model()
    localizer = Localizer(model, kind='correlation', ground_hw=(32, 64), sat_size_px=64,
                          camera_model='panorama', camera_height_m=2.0, device='cpu',
                          precision='bfloat16')
    assert localizer.precision == ('bfloat16' if native else 'float32')
    half = Localizer(model, kind='correlation', ground_hw=(32, 64), sat_size_px=64,
                     camera_model='panorama', camera_height_m=2.0, device='cpu',
                     precision='float16')
    assert half.precision == 'float32'  # float16 autocast is CUDA-only
    dtypes = []
    model.estimator.ground_extractor.register_forward_hook(
        lambda m, args, out: dtypes.append(out[0].dtype))
    batch = tiny_batch(B=1)
    result = localizer.localize(batch['ground'], batch['satellite'], 0.5,
                                yaw_prior_rad=math.pi / 2)
    assert dtypes[0] == (torch.bfloat16 if native else torch.float32)
    assert result.heatmap_prob.dtype == torch.float32
    assert torch.isfinite(result.offset_en_m).all()
