"""Frozen batch normalisation, folded into the convolution before it where possible.

`freeze_batchnorm(module)` (training: LoopConfig.batchnorm='frozen'; the model is then the
same function in train and eval mode):
- every BatchNorm layer normalises with its running statistics, never with the batch's,
  and never updates them (the pretrained ImageNet statistics stay; the affine weight and
  bias keep training, as in Detectron2's frozen norm but with a trainable affine);
- where a BatchNorm follows a convolution directly (timm EfficientNet blocks and stems,
  nn.Sequential conv -> bn), the convolution applies the folded weight and bias
      s = gamma / sqrt(running_var + eps),  W' = W * s,  b' = beta + (b - running_mean) * s
  and the BatchNorm keeps only its activation: the per-pixel normalisation pass and its
  backward disappear (autograd still reaches W, gamma and beta through W' and b').

The layers change class in place (`__class__`), so the parameter and buffer names, the
state dict and the checkpoints stay those of the plain model; a frozen model's eval output
equals the plain model's eval output up to float round-off.
"""
from __future__ import annotations

from timm.layers import BatchNormAct2d
from timm.layers.conv2d_same import Conv2dSame, conv2d_same
from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual
from timm.models.efficientnet import EfficientNet
import torch
from torch import nn

# Parents whose children are registered in the order their forward applies them, so a
# BatchNorm registered right after a convolution normalises that convolution's output.
_SEQUENTIAL_PARENTS = (nn.Sequential, DepthwiseSeparableConv, InvertedResidual, EfficientNet)


def _folded_weight_bias(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor,
                                                                      torch.Tensor]:
    """(W', b') of conv followed by bn in eval mode; gradients reach all four tensors."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    return conv.weight * scale.reshape(-1, 1, 1, 1).to(conv.weight), shift.to(conv.weight)


class FoldedConv2d(nn.Conv2d):
    """nn.Conv2d that applies the BatchNorm after it (eval statistics) as its own weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = _folded_weight_bias(self, self.__dict__['folded_bn'])
        return self._conv_forward(x, weight, bias)


class FoldedConv2dSame(Conv2dSame):
    """timm's TF-'same' convolution with the following BatchNorm folded in."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = _folded_weight_bias(self, self.__dict__['folded_bn'])
        return conv2d_same(x, weight, bias, self.stride, self.padding, self.dilation,
                           self.groups)


class _AlwaysEval:
    """Mixin: the layer stays in eval mode whatever `train()` asks."""

    def train(self, mode: bool = True):
        return super().train(False)


class FrozenBatchNorm2d(_AlwaysEval, nn.BatchNorm2d):
    """BatchNorm2d normalising with its running statistics, also in training."""


class FrozenBatchNormAct2d(_AlwaysEval, BatchNormAct2d):
    """timm BatchNormAct2d (norm, drop, activation) with frozen statistics."""


class FoldedBatchNorm2d(_AlwaysEval, nn.BatchNorm2d):
    """A BatchNorm2d whose normalisation its convolution applies: identity here."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class FoldedBatchNormAct2d(_AlwaysEval, BatchNormAct2d):
    """timm BatchNormAct2d folded into its convolution: only drop and activation remain."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(x))


_FOLDED_CONV = {nn.Conv2d: FoldedConv2d, Conv2dSame: FoldedConv2dSame}
_FOLDED_NORM = {nn.BatchNorm2d: FoldedBatchNorm2d, BatchNormAct2d: FoldedBatchNormAct2d}
_FROZEN_NORM = {nn.BatchNorm2d: FrozenBatchNorm2d, BatchNormAct2d: FrozenBatchNormAct2d}
FROZEN_CLASSES = (FrozenBatchNorm2d, FrozenBatchNormAct2d, FoldedBatchNorm2d,
                  FoldedBatchNormAct2d)


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (type(conv) in _FOLDED_CONV and type(bn) in _FOLDED_NORM
            and conv.out_channels == bn.num_features)


def freeze_batchnorm(module: nn.Module) -> dict[str, int]:
    """Freeze every BatchNorm2d of `module` in place (see the module docstring); already
    frozen layers are left alone. Returns {'folded': n, 'frozen': m}: folded into a
    convolution, or frozen as an eval-mode layer. Raises TypeError on a BatchNorm subclass
    this function does not know (its forward might not be a plain normalisation), and
    ValueError on a BatchNorm without running statistics."""
    counts = {'folded': 0, 'frozen': 0}
    for parent in module.modules():
        previous = None
        for child in parent.children():
            if (isinstance(child, nn.modules.batchnorm._BatchNorm)
                    and not isinstance(child, FROZEN_CLASSES)):
                if type(child) not in _FROZEN_NORM:
                    raise TypeError(f'freeze_batchnorm: unsupported norm layer '
                                    f'{type(child).__name__}; supported: '
                                    f'{sorted(c.__name__ for c in _FROZEN_NORM)}')
                if child.running_mean is None or child.running_var is None:
                    raise ValueError(f'freeze_batchnorm: {type(child).__name__}('
                                     f'{child.num_features}) keeps no running statistics '
                                     '(track_running_stats=False), so there is nothing to '
                                     "freeze; train it with loop.batchnorm='batch'")
                if isinstance(parent, _SEQUENTIAL_PARENTS) and _foldable(previous, child):
                    previous.__class__ = _FOLDED_CONV[type(previous)]
                    previous.__dict__['folded_bn'] = child  # a reference, not a submodule
                    child.__class__ = _FOLDED_NORM[type(child)]
                    counts['folded'] += 1
                else:
                    child.__class__ = _FROZEN_NORM[type(child)]
                    counts['frozen'] += 1
                child.train(False)
            previous = child
    return counts


def frozen_batchnorm_count(module: nn.Module) -> int:
    """How many norm layers of `module` are frozen (folded or not)."""
    return sum(isinstance(m, FROZEN_CLASSES) for m in module.modules())
