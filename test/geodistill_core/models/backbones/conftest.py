"""Shared checks for the tiny backbone variants."""
import pytest
import torch

from geodistill_core.models.backbones import (
    BackboneConfig,
    build_backbone,
    get_backbone_record,
    preprocess_images,
)

BATCH, HEIGHT_PX, WIDTH_PX = 2, 64, 96


def _check_tiny_backbone(name: str) -> torch.nn.Module:
    """Shapes per level match the record; every trainable parameter gets a non-zero
    gradient, every frozen one none. Returns the model."""
    record = get_backbone_record(name)
    torch.manual_seed(0)
    model = build_backbone(BackboneConfig(name, weights=None, pretrained=False)).train()
    images = torch.rand(BATCH, 3, HEIGHT_PX, WIDTH_PX)
    levels = model(preprocess_images(images, record.preprocess))
    assert [tuple(level.shape) for level in levels] == [
        (BATCH, c, HEIGHT_PX // s, WIDTH_PX // s)
        for c, s in zip(record.channels, record.strides_px, strict=True)]
    assert all(torch.isfinite(level).all() for level in levels)
    weights = [torch.randn(level.shape[1:]) for level in levels]
    sum((level * w).square().mean() for level, w in zip(levels, weights, strict=True)).backward()
    for key, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None, f'{key} got no gradient'
            assert parameter.grad.abs().sum() > 0, f'{key} got a zero gradient'
        else:
            assert parameter.grad is None, f'frozen {key} got a gradient'
    return model


@pytest.fixture
def check_tiny_backbone():
    return _check_tiny_backbone
