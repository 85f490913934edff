"""DINOv2 ViT-B/14 (timm `vit_base_patch14_dinov2`), frozen, + a trainable DPT-style head.

Images (multiples of 8 px) are resized to the nearest multiple of the 14 px patch for the
trunk; the head resamples onto the exact (H/8, H/4, H/2) grids, so cell sizes stay
8, 4 and 2 input pixels. The trunk runs under no_grad and stays in eval mode.
"""
from __future__ import annotations

import timm
from timm.models.vision_transformer import VisionTransformer
import torch
from torch import nn
import torch.nn.functional as F

from geodistill_core.models.backbones.dpt_head import DptHead, DptHeadDims
from geodistill_core.models.backbones.preprocess import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    Preprocess,
)
from geodistill_core.models.backbones.record import BackboneRecord
from geodistill_core.models.backbones.weights import load_state_dict_strict, read_state_dict

DINOV2_HINT = (
    'Save timm\'s DINOv2 ViT-B/14 once on a connected machine: python -c "import timm; '
    'from safetensors.torch import save_file; save_file(timm.create_model(\'vit_base_patch14_'
    'dinov2.lvd142m\', pretrained=True).state_dict(), \'vit_base_patch14_dinov2.safetensors\')"'
    ' (the original dinov2_vitb14_pretrain.pth also loads) and pass its path as '
    'BackboneConfig.weights')
TINY_DIMS = DptHeadDims(embed_dim=32, reassemble_channels=(8, 8, 16, 16), fusion_channels=8,
                        out_channels=(16, 8, 8))


class DinoV2Dpt(nn.Module):
    """Frozen ViT trunk + trainable DPT head; levels at strides 8, 4, 2 (coarse to fine)."""

    strides_px = DptHead.strides_px

    def __init__(self, trunk: VisionTransformer, layer_indices: tuple[int, int, int, int],
                 head_dims: DptHeadDims) -> None:
        super().__init__()
        self.trunk = trunk.requires_grad_(False).eval()
        self.layer_indices = layer_indices
        self.patch_px = trunk.patch_embed.patch_size[0]
        self.head = DptHead(head_dims)

    def train(self, mode: bool = True) -> DinoV2Dpt:
        """Train mode for the head only; the frozen trunk stays in eval mode."""
        super().train(mode)
        self.trunk.eval()
        return self

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W) preprocessed, H and W multiples of 8.

        Returns [(B, C0, H/8, W/8), (B, C1, H/4, W/4), (B, C2, H/2, W/2)].
        """
        image_hw = tuple(images.shape[-2:])
        trunk_hw = [max(1, round(s / self.patch_px)) * self.patch_px for s in image_hw]
        if list(image_hw) != trunk_hw:
            images = F.interpolate(images, size=trunk_hw, mode='bilinear', align_corners=False)
        with torch.no_grad():
            tokens = self.trunk.forward_intermediates(
                images, indices=list(self.layer_indices), norm=True, stop_early=True,
                output_fmt='NCHW', intermediates_only=True)
        return self.head(tokens, image_hw)


def build_dinov2_vitb14_dpt() -> DinoV2Dpt:
    """Full size: ViT-B/14 (518 px position grid, resampled at run time), random weights."""
    trunk = timm.create_model('vit_base_patch14_dinov2', pretrained=False, num_classes=0,
                              dynamic_img_size=True)
    return DinoV2Dpt(trunk, (2, 5, 8, 11), DptHeadDims())


def build_dinov2_dpt_tiny() -> DinoV2Dpt:
    """Tiny test variant: the same ViT family (patch 14, LayerScale), width 32, depth 4."""
    trunk = VisionTransformer(img_size=56, patch_size=14, embed_dim=32, depth=4, num_heads=2,
                              init_values=1e-5, num_classes=0, dynamic_img_size=True)
    return DinoV2Dpt(trunk, (0, 1, 2, 3), TINY_DIMS)


def load_dinov2_weights(model: DinoV2Dpt, path: str) -> None:
    """Load a timm or original DINOv2 ViT-B/14 file into the trunk (the head stays random).

    Only `mask_token` (original file) may go unused.
    """
    load_state_dict_strict(model.trunk, read_state_dict(path, DINOV2_HINT), source=path,
                           ignorable_unexpected=[r'mask_token'])


_PREPROCESS = Preprocess(IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, input_multiple_px=8)
RECORDS = (
    BackboneRecord(
        name='dinov2_vitb14_dpt', constructor=build_dinov2_vitb14_dpt,
        load_weights=load_dinov2_weights, default_weights=None, weights_hint=DINOV2_HINT,
        preprocess=_PREPROCESS, strides_px=DinoV2Dpt.strides_px,
        channels=DptHeadDims().out_channels),
    BackboneRecord(
        name='dinov2_dpt_tiny', constructor=build_dinov2_dpt_tiny, load_weights=None,
        default_weights=None, weights_hint='tiny test variant: random weights only',
        preprocess=_PREPROCESS, strides_px=DinoV2Dpt.strides_px,
        channels=TINY_DIMS.out_channels),
)
