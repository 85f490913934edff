"""OrientationEstimatorConfig: hyper-parameters of the yaw estimator (frozen, JSON-ready)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from geodistill_core.geometry import DOWNWARD_VIEW_FOV_DEG
from geodistill_core.models.backbones.preprocess import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB

BACKBONES = ('efficientnet_b0', 'tiny')


@dataclass(frozen=True)
class OrientationEstimatorConfig:
    """Hyper-parameters of OrientationEstimator (saved with every checkpoint).

    backbone: encoders `build_orientation_estimator` creates ('efficientnet_b0' via timm,
        random weights; 'tiny' for tests); the feature keys/channels must describe them.
    ground_feature_key, ground_channels: the stride-32 map of the BEV encoder output.
    satellite_feature_key, satellite_channels: the stride-32 map of the satellite encoder.
    bev_size_px, bev_fov_deg: the virtual downward camera (bev_size_px square, FoV 170).
    prior_range_deg, bin_deg: yaw-offset bins over [-range, +range] (yaw_bins.py).
    label_sigma_bins: Gaussian label width in bins.
    fusion_channels: output of the conv 3x3 + BN + ReLU fusing the concatenated maps.
    mlp_hidden: hidden width of the classifier MLP.
    mean_rgb, std_rgb: input normalisation of the encoders' weights (on RGB in [0, 1]).
    """

    backbone: str = 'efficientnet_b0'
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
    mean_rgb: tuple[float, float, float] = IMAGENET_MEAN_RGB
    std_rgb: tuple[float, float, float] = IMAGENET_STD_RGB

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f'backbone must be one of {BACKBONES}, got {self.backbone!r}')
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
