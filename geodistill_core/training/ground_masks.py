"""The student's ground-image mask of GeoDistill and its ablations (method.md section 4).

`draw_ground_mask` returns a `GroundMask`: the image-level visibility to blank before the
backbone, and the same mask for the estimator (its `ground_visible_cols`: (B, W) columns
for the FoV mask, (B, H, W) pixels for the patch and max-activation ablations), which drops
the BEV cells the hidden part would produce from the correlation and its cosine norms, as
the reference does for every mask (None when nothing is masked).
All randomness comes from the generator passed in (seeded per optimiser step by the loop),
so a resumed run draws the same masks.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from geodistill_core.masking import (
    apply_image_mask,
    fov_mask_panorama,
    max_activation_mask,
    random_patch_mask,
    stripe_mask_pinhole,
)
from geodistill_core.training.config import DistillConfig


@dataclass(frozen=True)
class GroundMask:
    """visible: (B, W) column or (B, H, W) pixel mask, True = visible (None: no mask).
    visible_cols: the mask the estimator gets as ground_visible_cols (the same tensor as
    visible), or None."""

    visible: torch.Tensor | None
    visible_cols: torch.Tensor | None

    def apply(self, ground_images: torch.Tensor) -> torch.Tensor:
        """Blank the hidden part of (B, 3, H, W) images (fill 0); unchanged without mask."""
        if self.visible is None:
            return ground_images
        return apply_image_mask(ground_images, self.visible)

    def model_input(self, ground_images: torch.Tensor) -> torch.Tensor:
        """The ground images to give the model with `visible_cols`: the mask travels as
        ground_visible_cols and the model blanks the hidden part itself, once, after its
        normalisation (so they are returned unchanged, not copied); a mask the estimator
        does not get is applied here."""
        return ground_images if self.visible_cols is not None else self.apply(ground_images)


def draw_ground_mask(config: DistillConfig, camera_model: str, ground_images: torch.Tensor,
                     generator: torch.Generator, teacher: torch.nn.Module | None = None,
                     ) -> GroundMask:
    """Draw one mask per image of ground_images (B, 3, H, W) RGB in [0, 1].

    'fov': panoramas keep one visible azimuth band of config.fov_range_deg; pinhole images
    lose one vertical stripe of config.stripe_frac_range of the width. 'random_patch':
    config.patch_px tiles blanked at random, a share drawn per image in
    config.patch_frac_range. 'max_activation': the regions under the teacher's most
    activated ground feature cells (teacher.ground_feature_map, no gradient), a share
    config.max_activation_frac. 'none': nothing is masked.
    """
    if ground_images.dim() != 4:
        raise ValueError(f'ground_images must be (B, 3, H, W), got {tuple(ground_images.shape)}')
    B, _, H, W = ground_images.shape
    device = ground_images.device
    if config.mask == 'none':
        return GroundMask(None, None)
    if config.mask == 'random_patch':
        visible = random_patch_mask(B, H, W, patch_px=tuple(config.patch_px),
                                    generator=generator, device=device,
                                    masked_frac_range=tuple(config.patch_frac_range))
        return GroundMask(visible, visible)
    if config.mask == 'max_activation':
        if teacher is None or not hasattr(teacher, 'ground_feature_map'):
            raise ValueError("mask 'max_activation' needs the teacher's ground features: a "
                             "location model with ground_feature_map (correlation) in mode "
                             "'distill'")
        with torch.no_grad():
            features = teacher.ground_feature_map(ground_images)
        visible = max_activation_mask(features, (H, W), config.max_activation_frac)
        return GroundMask(visible, visible)
    if camera_model == 'panorama':
        cols = fov_mask_panorama(B, W, tuple(config.fov_range_deg), generator, device)
    elif camera_model == 'pinhole':
        cols = stripe_mask_pinhole(B, W, tuple(config.stripe_frac_range), generator, device)
    else:
        raise ValueError(f"camera_model must be 'panorama' or 'pinhole', got {camera_model!r}")
    return GroundMask(cols, cols)
