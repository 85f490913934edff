"""DINOv2 ViT + DPT head: tiny form for behaviour, full size for construction only."""
import pytest
from safetensors.torch import save_file
import torch

from geodistill_core.models.backbones import (
    BackboneConfig,
    WeightsMismatchError,
    build_backbone,
    get_backbone_record,
)
from geodistill_core.models.backbones.dinov2_dpt import (
    build_dinov2_dpt_tiny,
    build_dinov2_vitb14_dpt,
    load_dinov2_weights,
)


def test_tiny_shapes_gradients_and_frozen_trunk(check_tiny_backbone):
    model = check_tiny_backbone('dinov2_dpt_tiny')
    assert not any(p.requires_grad for p in model.trunk.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert not model.trunk.training and model.head.training  # train() leaves the trunk in eval


@pytest.mark.parametrize('image_hw', [(56, 112), (64, 96), (24, 40)])
def test_level_grids_are_exact_strides_whatever_the_patch_grid(image_hw):
    """56 x 112 needs no resize for the 14 px patches; the others do."""
    model = build_dinov2_dpt_tiny().eval()
    with torch.no_grad():
        levels = model(torch.randn(1, 3, *image_hw))
    assert [tuple(level.shape[-2:]) for level in levels] == [
        (image_hw[0] // s, image_hw[1] // s) for s in (8, 4, 2)]


def test_full_size_construction_and_parameter_counts():
    with torch.device('meta'):  # shapes only: no memory, no initialisation cost
        model = build_dinov2_vitb14_dpt()
    trunk = sum(p.numel() for p in model.trunk.parameters())
    head = sum(p.numel() for p in model.head.parameters())
    assert trunk == 86_579_712  # ViT-B/14 at a 518 px position grid
    assert head == 4_706_496
    assert not any(p.requires_grad for p in model.trunk.parameters())
    assert model.trunk.patch_embed.patch_size == (14, 14)
    assert model.layer_indices == (2, 5, 8, 11)
    record = get_backbone_record('dinov2_vitb14_dpt')
    assert [m[-1].out_channels for m in model.head.out] == list(record.channels)


def test_trunk_file_loads_strictly_allowing_only_mask_token(tmp_path):
    torch.manual_seed(3)
    source = build_dinov2_dpt_tiny()
    state_dict = {**source.trunk.state_dict(), 'mask_token': torch.zeros(1, 32)}
    path = tmp_path / 'dinov2.safetensors'
    save_file(state_dict, str(path))
    model = build_dinov2_dpt_tiny()
    load_dinov2_weights(model, str(path))
    for key, value in source.trunk.state_dict().items():
        assert torch.equal(model.trunk.state_dict()[key], value)
    save_file({**state_dict, 'head.weight': torch.zeros(2, 32)}, str(path))
    with pytest.raises(WeightsMismatchError, match='head.weight'):
        load_dinov2_weights(model, str(path))


def test_missing_file_names_path_and_timm_model(tmp_path):
    missing = str(tmp_path / 'dinov2.safetensors')
    with pytest.raises(FileNotFoundError, match=missing) as error:
        build_backbone(BackboneConfig('dinov2_vitb14_dpt', weights=missing, pretrained=True))
    assert 'vit_base_patch14_dinov2.lvd142m' in str(error.value)
