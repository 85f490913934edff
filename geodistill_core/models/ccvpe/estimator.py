"""CCVPE-style location estimator: orientation-aware descriptor matching, coarse to fine.

Ground branch: the panorama (or a pinhole image resampled onto a panorama canvas, see
pinhole_canvas.py) goes through a width-circular encoder; its deepest map becomes an
orientation-aware descriptor of N azimuth slots (ground_descriptor.py). Satellite branch:
an encoder whose deepest map gives an 8x8 descriptor map and whose shallower maps feed the
coarse-to-fine decoder (decoder.py), which matches at every resolution up to the satellite
input's (matching.py) and outputs logits per level plus a (cos, sin) orientation field.

The ground-visibility mask (GeoDistill FoV mask, (B, Wg) bool, True = visible) blanks the
hidden columns before the encoder (fill 0, the mean colour of normalised inputs) and
removes every azimuth slot touching them from the matching cosine (dot product and norms).

Output frame (shared with every location estimator, models/correlation/location_scores.py):
cell (i, j) of an h x w level is the camera at ((j - (w - 1) / 2) cell_m east,
-(i - (h - 1) / 2) cell_m north) of the satellite crop centre.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import torch
from torch import nn

from geodistill_core.geometry import roll_panorama
from geodistill_core.masking import apply_image_mask
from geodistill_core.models.ccvpe.circular_padding import make_width_circular_
from geodistill_core.models.ccvpe.config import DescriptorEstimatorConfig
from geodistill_core.models.ccvpe.decoder import CoarseToFineDecoder
from geodistill_core.models.ccvpe.encoders import build_encoder
from geodistill_core.models.ccvpe.ground_descriptor import (
    OrientationAwareDescriptor,
    slot_visibility,
)
from geodistill_core.models.ccvpe.pinhole_canvas import pinhole_to_panorama
from geodistill_core.models.correlation.location_scores import LocationScores
from geodistill_core.models.feature_levels import select_level

NORTH_ALIGNED_YAW_RAD = math.pi / 2


@dataclass(frozen=True)
class DescriptorScores(LocationScores):
    """LocationScores (scores: per level (B, h_l, w_l) logits, coarse to fine, the last at
    the satellite resolution; cell_m per level) plus:

    orientation_field: (B, 2, S, S) unit (cos psi, sin psi) of the camera's map-frame yaw
        psi (0 = east, counter-clockwise) predicted for a camera at each satellite pixel.
    matching_scores: per level (B, N, h_l, w_l) cosine of the ground descriptor at
        orientation o (yaw pi / 2 + o 2 pi / N of the north-aligned ground image) against
        the satellite descriptors (for the InfoNCE term).
    """

    orientation_field: torch.Tensor
    matching_scores: list[torch.Tensor]


def _check_optional_yaw(yaw_rad, batch: int) -> None:
    if yaw_rad is not None and (not torch.is_tensor(yaw_rad) or yaw_rad.shape != (batch,)):
        shape = tuple(yaw_rad.shape) if torch.is_tensor(yaw_rad) else type(yaw_rad)
        raise ValueError(f'ground_yaw_rad must be a ({batch},) tensor, got {shape}')


class DescriptorEstimator(nn.Module):
    """Orientation-aware ground descriptor x satellite descriptor maps -> logits per level.

    ground_encoder, satellite_encoder: non-shared nn.Modules mapping (B, 3, H, W)
    preprocessed images to a list/dict of maps described by config.ground_level and
    config.satellite_levels. With config.ground_padding 'circular' the ground encoder's
    convolutions are made width-circular in place (no parameter changes).
    """

    scores_are_logits = True  # trained for softmax at temperature 1 (distillation: logits_tau)

    def __init__(self, config: DescriptorEstimatorConfig, ground_encoder: nn.Module,
                 satellite_encoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.ground_encoder = (make_width_circular_(ground_encoder)
                               if config.ground_padding == 'circular' else ground_encoder)
        self.satellite_encoder = satellite_encoder
        self.ground_descriptor_head = OrientationAwareDescriptor(
            config.ground_level.channels, config.ground_descriptor_dim, config.n_orientations)
        self.decoder = CoarseToFineDecoder(config)

    def ground_descriptor(self, ground_images: torch.Tensor,
                          ground_yaw_rad: torch.Tensor | None = None,
                          ground_K: torch.Tensor | None = None,
                          ground_visible_cols: torch.Tensor | None = None):
        """Orientation-aware descriptor of the ground images (arguments as in forward).

        Returns descriptor (B, N, D) (slot j: panorama columns [j W / N, (j + 1) W / N)
        after north alignment when ground_yaw_rad is given), slot_visible (B, N) bool, and
        the roll applied (B,) radians (zeros without ground_yaw_rad).
        """
        cfg = self.config
        B = self._check_ground(ground_images, ground_yaw_rad, ground_K, ground_visible_cols)
        images, visible = ground_images, ground_visible_cols
        if visible is not None and visible.dim() == 3:  # pixel mask (patch ablations)
            images = apply_image_mask(images, visible)
            visible = visible.any(dim=1)  # a slot drops out only where columns are all blank
        if cfg.camera_model == 'pinhole':
            images, visible = pinhole_to_panorama(images, ground_K, cfg.pinhole_canvas_hw,
                                                  visible)
        W = images.shape[-1]
        if W % cfg.n_orientations:
            raise ValueError(f'ground width {W} must be a multiple of n_orientations '
                             f'{cfg.n_orientations}')
        if visible is not None:
            images = apply_image_mask(images, visible)
        roll_rad = images.new_zeros(B)
        if ground_yaw_rad is not None:  # turn the camera to yaw pi / 2 (north-aligned)
            roll_rad = (NORTH_ALIGNED_YAW_RAD - ground_yaw_rad).to(images)
            images = roll_panorama(images, roll_rad)
            if visible is not None:
                rolled = roll_panorama(visible.to(images.dtype).view(B, 1, 1, W), roll_rad)
                visible = rolled.view(B, W) > 1.0 - 1e-4  # hidden if it touches a hidden one
        slot_visible = (images.new_ones(B, cfg.n_orientations, dtype=torch.bool)
                        if visible is None else slot_visibility(visible, cfg.n_orientations))
        if not bool(slot_visible.any(dim=1).all()):
            raise ValueError('every ground image needs at least one fully visible azimuth '
                             f'slot ({360.0 / cfg.n_orientations:g} degrees of columns)')
        wrap_px = cfg.wrap_columns_px if cfg.ground_padding == 'wrap' else 0
        if wrap_px:
            if wrap_px > W:
                raise ValueError(f'wrap_columns_px {wrap_px} exceeds the ground width {W}')
            images = torch.cat([images[..., W - wrap_px:], images, images[..., :wrap_px]], -1)
        features = select_level(self.ground_encoder(images), cfg.ground_level.key,
                                cfg.ground_level.channels, B, 'ground')
        if wrap_px:
            crop = wrap_px // cfg.ground_level.stride_px
            features = features[..., crop:features.shape[-1] - crop]
        if features.shape[-1] % cfg.n_orientations:
            raise ValueError(f'ground features {tuple(features.shape)}: width must be a '
                             f'multiple of n_orientations {cfg.n_orientations}')
        return self.ground_descriptor_head(features), slot_visible, roll_rad

    def forward(self, ground_images: torch.Tensor, satellite_images: torch.Tensor, *,
                sat_meters_per_px: float, camera_height_m=None,
                ground_yaw_rad: torch.Tensor | None = None,
                ground_K: torch.Tensor | None = None,
                ground_visible_cols: torch.Tensor | None = None) -> DescriptorScores:
        """Heatmap logits of the camera position over the satellite crops.

        ground_images: (B, 3, Hg, Wg) preprocessed panoramas (Wg a multiple of
            n_orientations and of the ground encoder's stride) or pinhole images.
        satellite_images: (B, 3, S, S) preprocessed north-up crops, S = satellite_size_px.
        sat_meters_per_px: ground resolution of satellite_images as given.
        camera_height_m: unused (no ground-plane geometry); accepted so that every
            location estimator takes the same arguments.
        ground_yaw_rad: optional (B,) map-frame yaw of the panorama centre column /
            optical axis. Given, the ground image is first rolled to north alignment
            (geometry.roll_panorama by pi / 2 - yaw, as in training on VIGOR); the
            orientation field still refers to the input camera. Without it the image is
            used as it is (VIGOR panoramas are north-aligned).
        ground_K: (B, 3, 3) or (3, 3) intrinsics at (Hg, Wg); pinhole model only.
        ground_visible_cols: optional (B, Wg) bool, True = visible column; or a (B, Hg, Wg)
            pixel mask (patch ablations): the hidden pixels are blanked, and a slot drops
            out of the matching only where its columns are wholly hidden.
        Returns DescriptorScores: scores per level (B, s_l, s_l) logits for s_l = 8, 16,
        ..., S; cell_m per level = sat_meters_per_px * S / s_l; orientation_field
        (B, 2, S, S); matching_scores per level (B, N, s_l, s_l).
        """
        cfg = self.config
        S = cfg.satellite_size_px
        if satellite_images.dim() != 4 or satellite_images.shape[1:] != (3, S, S):
            raise ValueError(f'satellite_images must be (B, 3, {S}, {S}), '
                             f'got {tuple(satellite_images.shape)}')
        if ground_images.dim() != 4 or ground_images.shape[0] != satellite_images.shape[0]:
            raise ValueError(f'need one ground image per satellite image, got ground '
                             f'{tuple(ground_images.shape)}, satellite '
                             f'{tuple(satellite_images.shape)}')
        descriptor, slot_visible, roll_rad = self.ground_descriptor(
            ground_images, ground_yaw_rad, ground_K, ground_visible_cols)
        outputs = self.satellite_encoder(satellite_images)
        B = satellite_images.shape[0]
        sat_features = {level.key: select_level(outputs, level.key, level.channels, B,
                                                'satellite')
                        for level in cfg.satellite_levels}
        decoded = self.decoder(sat_features, descriptor, slot_visible)
        field = decoded['orientation_field']
        if ground_yaw_rad is not None:  # yaw of the input camera = yaw of the rolled - roll
            c = torch.cos(roll_rad).view(B, 1, 1)
            s = torch.sin(roll_rad).view(B, 1, 1)
            field = torch.stack([c * field[:, 0] + s * field[:, 1],
                                 -s * field[:, 0] + c * field[:, 1]], dim=1)
        cell_m = [float(sat_meters_per_px) * S / size for size in cfg.level_sizes_px()]
        return DescriptorScores(decoded['logits'], cell_m, field, decoded['matching'])

    def _check_ground(self, ground_images, yaw_rad, K, visible_cols) -> int:
        if ground_images.dim() != 4:
            raise ValueError(f'ground_images must be (B, 3, Hg, Wg), '
                             f'got {tuple(ground_images.shape)}')
        B, _, _, Wg = ground_images.shape
        _check_optional_yaw(yaw_rad, B)
        if self.config.camera_model == 'pinhole' and K is None:
            raise ValueError('the pinhole camera model needs ground_K (B, 3, 3) or (3, 3)')
        if self.config.camera_model == 'panorama' and K is not None:
            raise ValueError('ground_K is only used by the pinhole camera model; this '
                             'estimator is configured for panoramas')
        Hg = ground_images.shape[2]
        if visible_cols is not None and visible_cols.shape not in ((B, Wg), (B, Hg, Wg)):
            raise ValueError(f'ground_visible_cols must be (B, Wg) = ({B}, {Wg}) or '
                             f'(B, Hg, Wg) = ({B}, {Hg}, {Wg}), got {tuple(visible_cols.shape)}')
        return B


def build_descriptor_estimator(config: DescriptorEstimatorConfig) -> DescriptorEstimator:
    """The estimator with new randomly initialised encoders named by config.backbone
    (load pretrained encoder weights or a checkpoint afterwards)."""
    return DescriptorEstimator(config, build_encoder(config.backbone),
                               build_encoder(config.backbone))
