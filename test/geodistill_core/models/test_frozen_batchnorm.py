"""freeze_batchnorm: frozen statistics, folded into the convolution before them.

Pins: a frozen model in train mode computes what the plain model computes in eval mode
(values and gradients, every EfficientNet trunk we ship, channels-last too); its running
statistics never move; the state dict is the plain model's; layers it cannot fold are
frozen, not folded; a deep copy (the EMA teacher) owns its folded pairs; unknown norm
layers are refused. The counter-example: the plain model in train mode differs.
"""
import copy

import pytest
from timm.layers.conv2d_same import Conv2dSame
import torch
from torch import nn

from geodistill_core.models.backbones import BackboneConfig, build_backbone
from geodistill_core.models.frozen_batchnorm import (
    FoldedConv2d,
    FoldedConv2dSame,
    FrozenBatchNorm2d,
    freeze_batchnorm,
    frozen_batchnorm_count,
)


def _randomise_statistics(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters (fresh ones are 0 / 1)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)


def _trunk(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = build_backbone(BackboneConfig(name=name, weights=None, pretrained=False))
    _randomise_statistics(model)
    return model


def _outputs_and_grads(model: nn.Module, images: torch.Tensor):
    model.zero_grad()
    levels = model(images)
    loss = sum((level.float() ** 2).mean() for level in levels)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return [level.detach() for level in levels], grads


@pytest.mark.parametrize('name', ['efficientnet_lite0_tiny', 'efficientnet_b0'])
def test_frozen_trunk_in_train_mode_is_the_plain_trunk_in_eval_mode(name):
    images = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    plain = _trunk(name).eval()
    frozen = copy.deepcopy(plain)
    counts = freeze_batchnorm(frozen)
    n_norms = sum(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert counts == {'folded': n_norms, 'frozen': 0}  # every EfficientNet norm follows a conv
    assert frozen_batchnorm_count(frozen) == n_norms
    # Lite0's strided convolutions pad TF-'same' (Conv2dSame); B0's pad symmetrically
    assert (any(isinstance(m, FoldedConv2dSame) for m in frozen.modules())
            == name.startswith('efficientnet_lite0'))
    assert any(isinstance(m, FoldedConv2d) for m in frozen.modules())
    frozen.train()
    statistics = {k: v.clone() for k, v in frozen.state_dict().items() if 'running' in k}
    reference, reference_grads = _outputs_and_grads(plain, images)
    levels, grads = _outputs_and_grads(frozen, images)
    for a, b in zip(reference, levels, strict=True):
        torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-4)
    assert set(grads) == set(reference_grads)  # gamma and beta still train
    assert any(n.endswith('bn1.weight') for n in grads)
    for key, g in reference_grads.items():
        torch.testing.assert_close(grads[key], g, atol=1e-5, rtol=1e-3, msg=key)
    for key, value in frozen.state_dict().items():  # running statistics never move
        if key in statistics:
            torch.testing.assert_close(value, statistics[key], atol=0, rtol=0)
    # the counter-example: the plain trunk in train mode normalises with batch statistics
    trained, _ = _outputs_and_grads(copy.deepcopy(plain).train(), images)
    assert not torch.allclose(trained[-1], reference[-1], atol=1e-3)


def test_state_dict_unchanged_and_loadable_both_ways():
    plain = _trunk('efficientnet_lite0_tiny')
    frozen = copy.deepcopy(plain)
    freeze_batchnorm(frozen)
    assert list(frozen.state_dict()) == list(plain.state_dict())
    fresh = _trunk('efficientnet_lite0_tiny')
    _randomise_statistics(fresh, seed=5)
    fresh.load_state_dict(frozen.state_dict())
    freeze_batchnorm(fresh)
    images = torch.rand(1, 3, 64, 64)
    for a, b in zip(plain.eval()(images), fresh(images), strict=True):
        torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-4)


def test_channels_last_frozen_matches_contiguous():
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    plain = _trunk('efficientnet_lite0_tiny').eval()
    with torch.no_grad():
        reference = plain(images)
    frozen = copy.deepcopy(plain).to(memory_format=torch.channels_last)
    freeze_batchnorm(frozen)
    with torch.no_grad():
        levels = frozen.train()(images.to(memory_format=torch.channels_last))
    for a, b in zip(reference, levels, strict=True):
        torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-4)


def test_deep_copy_owns_its_folded_pairs():
    """The EMA teacher is a deep copy: changing its BatchNorm must change its output only."""
    images = torch.rand(1, 3, 64, 64)
    student = _trunk('efficientnet_lite0_tiny')
    freeze_batchnorm(student)
    teacher = copy.deepcopy(student)
    with torch.no_grad():
        before = student(images)[-1].clone()
        for m in teacher.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.mul_(2.0)
        assert torch.equal(student(images)[-1], before)
        assert not torch.allclose(teacher(images)[-1], before)
    conv = teacher.net.conv_stem
    assert conv.__dict__['folded_bn'] is teacher.net.bn1


def test_sequential_conv_with_bias_folds_and_an_unpaired_norm_is_frozen():
    torch.manual_seed(0)

    class NormFirst(nn.Module):  # norm registered (and applied) before its conv
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(3)
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(self.bn(x))

    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, bias=True), nn.BatchNorm2d(3),
                          nn.ReLU(), NormFirst(), nn.Sequential(Conv2dSame(4, 4, 3, stride=2),
                                                                nn.BatchNorm2d(4)))
    _randomise_statistics(model)
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        reference = model.eval()(images)
    assert freeze_batchnorm(model) == {'folded': 2, 'frozen': 1}
    assert isinstance(model[3].bn, FrozenBatchNorm2d)
    assert type(model[3].conv) is nn.Conv2d  # the conv after the norm is not touched
    with torch.no_grad():
        torch.testing.assert_close(model.train()(images), reference, atol=1e-5, rtol=1e-4)
    assert model[3].bn.training is False
    assert freeze_batchnorm(model) == {'folded': 0, 'frozen': 0}  # idempotent


def test_unknown_norm_layer_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.SyncBatchNorm(3))
    with pytest.raises(TypeError, match='SyncBatchNorm'):
        freeze_batchnorm(model)
    without_statistics = nn.Sequential(nn.Conv2d(3, 3, 1),
                                       nn.BatchNorm2d(3, track_running_stats=False))
    with pytest.raises(ValueError, match='running statistics'):
        freeze_batchnorm(without_statistics)
