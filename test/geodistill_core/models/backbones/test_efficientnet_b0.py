"""EfficientNet-B0 (timm): shapes, gradients, size, loading a timm-format file strictly."""
import pytest
from safetensors.torch import save_file
import timm
import torch

from geodistill_core.models.backbones import (
    BackboneConfig,
    WeightsMismatchError,
    build_backbone,
    get_backbone_record,
)


def test_tiny_shapes_and_gradients(check_tiny_backbone):
    check_tiny_backbone('efficientnet_b0_tiny')


def test_full_size_levels_and_parameter_count():
    record = get_backbone_record('efficientnet_b0')
    model = build_backbone(BackboneConfig('efficientnet_b0', weights=None, pretrained=False))
    assert sum(p.numel() for p in model.parameters()) == 4_007_548  # timm B0 without classifier
    with torch.no_grad():
        levels = model.eval()(torch.zeros(1, 3, 64, 64))
    assert [level.shape[1] for level in levels] == list(record.channels)
    assert [64 // level.shape[-1] for level in levels] == list(record.strides_px)


@pytest.fixture(scope='module')
def timm_b0_file(tmp_path_factory):
    torch.manual_seed(1)
    reference = timm.create_model('efficientnet_b0', pretrained=False).eval()
    path = tmp_path_factory.mktemp('weights') / 'efficientnet_b0.safetensors'
    save_file(reference.state_dict(), str(path))
    return str(path), reference


def test_timm_file_loads_and_reproduces_timm_features(timm_b0_file):
    path, reference = timm_b0_file
    model = build_backbone(BackboneConfig('efficientnet_b0', weights=path, pretrained=True))
    images = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model.eval()(images)[-1], reference.forward_features(images))


def test_file_of_another_architecture_is_refused(tmp_path):
    lite = timm.create_model('tf_efficientnet_lite0', pretrained=False)
    path = tmp_path / 'not_b0.safetensors'
    save_file(lite.state_dict(), str(path))
    with pytest.raises(WeightsMismatchError, match='missing'):
        build_backbone(BackboneConfig('efficientnet_b0', weights=str(path), pretrained=True))


def test_missing_file_names_path_and_timm_model(tmp_path):
    missing = str(tmp_path / 'b0.safetensors')
    with pytest.raises(FileNotFoundError, match=missing) as error:
        build_backbone(BackboneConfig('efficientnet_b0', weights=missing, pretrained=True))
    assert 'efficientnet_b0.ra_in1k' in str(error.value)


def test_truncate_keeps_the_first_levels_and_drops_the_rest():
    import torch

    from geodistill_core.models.backbones import BackboneConfig, build_backbone
    torch.manual_seed(0)
    full = build_backbone(BackboneConfig('efficientnet_b0_tiny', None, False)).eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = full(images)
    n_full = sum(p.numel() for p in full.parameters())
    cut = full.truncate(3)
    with torch.no_grad():
        levels = cut(images)
    assert len(levels) == 3
    for got, want in zip(levels, reference[:3], strict=True):
        torch.testing.assert_close(got, want)
    assert sum(p.numel() for p in cut.parameters()) < n_full / 2
