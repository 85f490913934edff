"""Orientation estimator: yaw offset from the prior, satellite vs. the panorama's BEV.

The panorama is normalised and projected onto the ground seen by a virtual downward
pinhole camera (geometry.downward_view_grid, FoV 170 deg, north up) assuming the prior
yaw (geometry.panorama_bev_grid). If the camera's true yaw is prior + d, that BEV is the
true one turned clockwise by d (geometry.rotation: rotate_bev(bev, -d)); the network reads
d off the misalignment with the north-up satellite image. Two non-shared encoders
(encoders.py), their maps at the configured level (stride 32 for EfficientNet-B0, 16 for
the Lite0 cut) concatenated, fused by conv 3x3 + BN + ReLU, then an MLP over 1-degree bins
of the prior range (yaw_bins.py) on the globally pooled fused map (head 'pool', default)
or on the whole fused map flattened (head 'flatten', the reference's: 192 x 16 x 16 for
B0 block 14 at 512 px).

The downward view is the same image whatever the camera height (every cell scales with
h, every ray angle stays), so no height is needed.

How the Localizer uses it (sign pinned by tests):
    out = estimator(satellite_rgb01, panorama_rgb01, prior_yaw_rad)
    yaw_rad = out.yaw_rad                      # = prior_yaw_rad + out.offset_rad, wrapped
    north_aligned = roll_panorama(panorama, math.pi / 2 - yaw_rad)   # yaw pi / 2
or pass ground_yaw_rad=yaw_rad to a location estimator that takes it. The spread
out.std_rad (one bin or more) gives the yaw variance.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from geodistill_core.geodesy import wrap_angle_rad
from geodistill_core.geometry import downward_view_grid, panorama_bev_grid, sample_image
from geodistill_core.models.feature_levels import select_level
from geodistill_core.models.orientation.config import OrientationEstimatorConfig
from geodistill_core.models.orientation.encoders import (
    build_orientation_encoder,
    encoder_stride_px,
)
from geodistill_core.models.orientation.yaw_bins import (
    decode_yaw_offset_deg,
    yaw_bin_centers_deg,
    yaw_offset_loss,
    yaw_spread_deg,
)

_REFERENCE_HEIGHT_M = 1.0  # any height gives the same downward view


@dataclass(frozen=True)
class OrientationOutput:
    """offset_rad: (B,) yaw offset from the prior (positive: camera counter-clockwise of
    the prior, map frame). std_rad: (B,) spread of the bin distribution around it.
    logits: (B, n_bins) over yaw_bin_centers_deg. yaw_rad: (B,) prior + offset, wrapped
    to (-pi, pi]."""

    offset_rad: torch.Tensor
    std_rad: torch.Tensor
    logits: torch.Tensor
    yaw_rad: torch.Tensor


def _check_rgb01(images: torch.Tensor, name: str) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f'{name} must be float (B, 3, H, W) RGB in [0, 1], '
                         f'got {images.dtype} {tuple(images.shape)}')
    low, high = torch.aminmax(images.detach())
    if low.item() < -1e-3 or high.item() > 1 + 1e-3:
        raise ValueError(f'{name} must lie in [0, 1], got [{low.item():.3g}, '
                         f'{high.item():.3g}] (0..255 input? divide by 255)')


class OrientationEstimator(nn.Module):
    """Satellite image + panorama + prior yaw -> yaw offset distribution over bins.

    satellite_encoder, ground_encoder: non-shared nn.Modules mapping (B, 3, H, W)
    normalised images to a list/dict holding the configured maps (both at one stride).
    """

    def __init__(self, config: OrientationEstimatorConfig, satellite_encoder: nn.Module,
                 ground_encoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.satellite_encoder = satellite_encoder
        self.ground_encoder = ground_encoder
        self.fusion = nn.Sequential(
            nn.Conv2d(config.satellite_channels + config.ground_channels,
                      config.fusion_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(config.fusion_channels), nn.ReLU(inplace=True))
        centers = yaw_bin_centers_deg(config.prior_range_deg, config.bin_deg)
        self.fused_hw = None  # 'flatten': the fused map's (h, w), fixed by the config
        head_inputs = config.fusion_channels
        if config.head == 'flatten':
            stride = encoder_stride_px(config.backbone, config.ground_feature_key)
            if config.bev_size_px % stride:
                raise ValueError(f'bev_size_px {config.bev_size_px} must be a multiple of the '
                                 f'feature stride {stride} for the flatten head')
            side = config.bev_size_px // stride
            self.fused_hw = (side, side)
            head_inputs = config.fusion_channels * side * side
        self.classifier = nn.Sequential(
            nn.Linear(head_inputs, config.mlp_hidden), nn.ReLU(inplace=True),
            nn.Linear(config.mlp_hidden, centers.shape[0]))
        self.register_buffer('bin_centers_deg', centers, persistent=False)
        self.register_buffer('mean_rgb', torch.tensor(config.mean_rgb).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std_rgb', torch.tensor(config.std_rgb).view(1, 3, 1, 1),
                             persistent=False)
        self.bev_grid = downward_view_grid(config.bev_size_px, _REFERENCE_HEIGHT_M,
                                           config.bev_fov_deg)

    def normalise(self, images_rgb01: torch.Tensor, name: str = 'images') -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (images - mean) / std (refuses 0..255 input)."""
        _check_rgb01(images_rgb01, name)
        return (images_rgb01 - self.mean_rgb.to(images_rgb01)) / self.std_rgb.to(images_rgb01)

    def ground_bev(self, panorama_rgb01: torch.Tensor,
                   prior_yaw_rad: torch.Tensor) -> torch.Tensor:
        """Normalised downward view (B, 3, S, S) of panoramas (B, 3, Hp, Wp) in [0, 1]
        projected with the prior yaw (B,) (north up; 0 where no panorama pixel maps)."""
        B = panorama_rgb01.shape[0]
        if not torch.is_tensor(prior_yaw_rad) or prior_yaw_rad.shape != (B,):
            shape = tuple(prior_yaw_rad.shape) if torch.is_tensor(prior_yaw_rad) else None
            raise ValueError(f'prior_yaw_rad must be a ({B},) tensor, got {shape}')
        normalised = self.normalise(panorama_rgb01, 'panorama_rgb01')
        geo_dtype = torch.float64 if normalised.dtype == torch.float64 else torch.float32
        grid = panorama_bev_grid(self.bev_grid, prior_yaw_rad.to(normalised.device, geo_dtype),
                                 _REFERENCE_HEIGHT_M, tuple(normalised.shape[-2:]))
        return sample_image(normalised, grid)

    def forward(self, satellite_rgb01: torch.Tensor, panorama_rgb01: torch.Tensor,
                prior_yaw_rad: torch.Tensor) -> OrientationOutput:
        """Yaw of the panorama's camera relative to its prior.

        satellite_rgb01: (B, 3, Hs, Ws) north-up satellite crops, RGB in [0, 1], the same
            size as the downward view (bev_size_px) so both feature maps align.
        panorama_rgb01: (B, 3, Hp, Wp) equirectangular panoramas, RGB in [0, 1].
        prior_yaw_rad: (B,) prior map-frame yaw of the panorama centre column (0 = east,
            counter-clockwise; pi / 2 for a north-aligned VIGOR panorama).
        Returns OrientationOutput: offset_rad (B,), std_rad (B,), logits (B, n_bins),
        yaw_rad (B,).
        """
        S = self.config.bev_size_px
        if satellite_rgb01.dim() != 4 or satellite_rgb01.shape[-2:] != (S, S) or \
                satellite_rgb01.shape[0] != panorama_rgb01.shape[0]:
            raise ValueError(f'satellite_rgb01 must be (B, 3, {S}, {S}) with B = '
                             f'{panorama_rgb01.shape[0]}, got {tuple(satellite_rgb01.shape)}')
        B = satellite_rgb01.shape[0]
        bev = self.ground_bev(panorama_rgb01, prior_yaw_rad)
        cfg = self.config
        sat = select_level(self.satellite_encoder(self.normalise(satellite_rgb01,
                                                                 'satellite_rgb01')),
                           cfg.satellite_feature_key, cfg.satellite_channels, B, 'satellite')
        grd = select_level(self.ground_encoder(bev), cfg.ground_feature_key,
                           cfg.ground_channels, B, 'ground')
        if sat.shape[-2:] != grd.shape[-2:]:
            raise ValueError(f'satellite features {tuple(sat.shape)} and BEV features '
                             f'{tuple(grd.shape)} must have the same size')
        fused = self.fusion(torch.cat([sat, grd], dim=1))
        if self.fused_hw is None:
            logits = self.classifier(F.adaptive_avg_pool2d(fused, 1).flatten(1))
        elif tuple(fused.shape[-2:]) != self.fused_hw:
            raise ValueError(f'flatten head built for {self.fused_hw} fused maps, got '
                             f'{tuple(fused.shape[-2:])}')
        else:
            logits = self.classifier(fused.flatten(1))
        offset_deg = decode_yaw_offset_deg(logits, self.bin_centers_deg)
        std_deg = yaw_spread_deg(logits, self.bin_centers_deg, offset_deg)
        offset_rad = torch.deg2rad(offset_deg)
        yaw_rad = wrap_angle_rad(prior_yaw_rad.to(offset_rad) + offset_rad)
        return OrientationOutput(offset_rad, torch.deg2rad(std_deg), logits, yaw_rad)

    def loss(self, output: OrientationOutput, true_offset_rad: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (scalar) of output.logits to the Gaussian labels of the true
        offsets (B,) radians (yaw_bins.yaw_offset_rad(true_yaw, prior_yaw))."""
        return yaw_offset_loss(output.logits, true_offset_rad, self.bin_centers_deg,
                               self.config.label_sigma_bins)


def build_orientation_estimator(config: OrientationEstimatorConfig,
                                load_pretrained: bool = True) -> OrientationEstimator:
    """The estimator with new encoders named by config.backbone (encoders.py).

    The encoders start from their ImageNet weights when config.pretrained and
    load_pretrained; load_pretrained=False builds random weights (a checkpoint then
    supplies them, so loading one never needs the pretrained file).
    """
    pretrained = config.pretrained and load_pretrained
    return OrientationEstimator(
        config,
        build_orientation_encoder(config.backbone, config.satellite_feature_key,
                                  config.satellite_channels, pretrained, config.weights),
        build_orientation_encoder(config.backbone, config.ground_feature_key,
                                  config.ground_channels, pretrained, config.weights))

