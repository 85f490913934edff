"""DescriptorEstimatorConfig: hyper-parameters of the CCVPE-style estimator (frozen, JSON-ready).

Feature levels name where the estimator reads an encoder's output: `key` indexes the list
(or dict) the encoder returns, `channels` and `stride_px` describe that map. The decoder
has one level per resolution coarse_size_px * 2^l up to satellite_size_px (8, 16, ..., 512
for the full configuration; 8, 16, 32, 64 for a 64-px test satellite).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import math
from typing import Any

CAMERA_MODELS = ('panorama', 'pinhole')
GROUND_PADDINGS = ('circular', 'wrap', 'zeros')
BACKBONES = ('efficientnet_b0', 'tiny')


@dataclass(frozen=True)
class FeatureLevel:
    """One map of an encoder's output: key (list index or dict key), channels, stride."""

    key: str | int
    channels: int
    stride_px: int

    def __post_init__(self):
        if not isinstance(self.key, (str, int)) or isinstance(self.key, bool):
            raise TypeError(f'key must be a str or int, got {self.key!r}')
        if not isinstance(self.channels, int) or self.channels <= 0:
            raise ValueError(f'channels must be a positive int, got {self.channels!r}')
        if not isinstance(self.stride_px, int) or self.stride_px <= 0:
            raise ValueError(f'stride_px must be a positive int, got {self.stride_px!r}')


# timm.create_model('efficientnet_b0', features_only=True): 5 maps, strides 2 ... 32.
EFFICIENTNET_B0_LEVELS = tuple(FeatureLevel(i, c, s) for i, (c, s) in enumerate(
    zip((16, 24, 40, 112, 320), (2, 4, 8, 16, 32), strict=True)))
# ccvpe.encoders.tiny_encoder() with its default channels.
TINY_CHANNELS = (8, 12, 16, 24, 32)
TINY_LEVELS = tuple(FeatureLevel(i, c, 2 ** (i + 1)) for i, c in enumerate(TINY_CHANNELS))


def default_slot_dims(n_levels: int, coarse_dim: int = 16, finest_dim: int = 2) -> tuple:
    """Per-slot descriptor size per decoder level: coarse_dim, halved every two levels."""
    return tuple(max(finest_dim, coarse_dim >> (level // 2)) for level in range(n_levels))


@dataclass(frozen=True)
class DescriptorEstimatorConfig:
    """Hyper-parameters of DescriptorEstimator (saved with every checkpoint).

    backbone: which encoders `build_descriptor_estimator` creates ('efficientnet_b0' via
        timm with random weights, or 'tiny'); the levels below must describe them.
    ground_level: the ground encoder map turned into the orientation-aware descriptor
        (the deepest, stride 32). Its width must be a multiple of n_orientations.
    satellite_levels: satellite encoder maps, deepest first. The deepest gives the coarse
        descriptor map (pooled or resized to coarse_size_px); each other one joins the
        decoder level of its resolution as a skip connection.
    satellite_size_px: side of the square satellite input (a power-of-two multiple of
        coarse_size_px); the finest heatmap has this resolution.
    camera_model: 'panorama' (equirectangular) or 'pinhole' (resampled onto a panorama
        canvas of pinhole_canvas_hw, the columns outside the camera's FoV masked).
    n_orientations: azimuth slots of the ground descriptor (20: 18 degrees each).
    ground_descriptor_dim: channels per slot of the ground descriptor before the per-level
        projections.
    coarse_size_px: side of the coarsest descriptor map (8).
    slot_dims: channels per slot of the descriptors matched at each decoder level
        (default: 16, halved every two levels, at least 2).
    ground_padding: how the ground encoder sees across the panorama's seam. 'circular':
        its convolutions pad circularly along the width (circular_padding.py; exact roll
        equivariance). 'wrap': wrap_columns_px columns from each side are copied to the
        other before the encoder and the features they produce are cropped (for encoders
        whose convolutions cannot be made circular, e.g. TF-'same' EfficientNet-Lite0;
        exact when the encoder's zero-padding reach is below wrap_columns_px). 'zeros':
        none (the seam is a border).
    wrap_columns_px: columns wrapped on each side for 'wrap' (a multiple of the ground
        level's stride).
    pinhole_canvas_hw: (H, W) of the panorama canvas pinhole images are resampled onto.
    """

    backbone: str = 'efficientnet_b0'
    ground_level: FeatureLevel = EFFICIENTNET_B0_LEVELS[-1]
    satellite_levels: tuple[FeatureLevel, ...] = EFFICIENTNET_B0_LEVELS[::-1]
    satellite_size_px: int = 512
    camera_model: str = 'panorama'
    n_orientations: int = 20
    ground_descriptor_dim: int = 64
    coarse_size_px: int = 8
    slot_dims: tuple[int, ...] | None = None
    ground_padding: str = 'circular'
    wrap_columns_px: int = 64
    pinhole_canvas_hw: tuple[int, int] = (320, 640)

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f'backbone must be one of {BACKBONES}, got {self.backbone!r}')
        if self.camera_model not in CAMERA_MODELS:
            raise ValueError(f'camera_model must be one of {CAMERA_MODELS}, '
                             f'got {self.camera_model!r}')
        if self.ground_padding not in GROUND_PADDINGS:
            raise ValueError(f'ground_padding must be one of {GROUND_PADDINGS}, '
                             f'got {self.ground_padding!r}')
        if self.wrap_columns_px <= 0 or self.wrap_columns_px % self.ground_level.stride_px:
            raise ValueError(f'wrap_columns_px ({self.wrap_columns_px}) must be a positive '
                             f'multiple of the ground stride {self.ground_level.stride_px}')
        if not self.satellite_levels:
            raise ValueError('at least one satellite level is needed')
        strides = [level.stride_px for level in self.satellite_levels]
        if strides != sorted(strides, reverse=True) or len(set(strides)) != len(strides):
            raise ValueError(f'satellite_levels must be deepest first with distinct strides, '
                             f'got strides {strides}')
        ratio = self.satellite_size_px / self.coarse_size_px
        if self.coarse_size_px < 1 or ratio < 1 or 2 ** round(math.log2(ratio)) != ratio:
            raise ValueError(f'satellite_size_px ({self.satellite_size_px}) must be '
                             f'coarse_size_px ({self.coarse_size_px}) times a power of two')
        if self.n_orientations < 2 or self.ground_descriptor_dim < 1:
            raise ValueError(f'need n_orientations >= 2 and ground_descriptor_dim >= 1, got '
                             f'{self.n_orientations}, {self.ground_descriptor_dim}')
        n_levels = len(self.level_sizes_px())
        dims = default_slot_dims(n_levels) if self.slot_dims is None else tuple(self.slot_dims)
        if len(dims) != n_levels or min(dims) < 1:
            raise ValueError(f'slot_dims needs {n_levels} positive values (levels '
                             f'{self.level_sizes_px()}), got {dims}')
        object.__setattr__(self, 'slot_dims', dims)
        object.__setattr__(self, 'satellite_levels', tuple(self.satellite_levels))
        object.__setattr__(self, 'pinhole_canvas_hw', tuple(self.pinhole_canvas_hw))

    def level_sizes_px(self) -> list[int]:
        """Heatmap side per decoder level, coarse to fine: 8, 16, ..., satellite_size_px."""
        n = round(math.log2(self.satellite_size_px / self.coarse_size_px)) + 1
        return [self.coarse_size_px * 2 ** level for level in range(n)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `from_dict` inverts it."""
        values = asdict(self)
        values['ground_level'] = asdict(self.ground_level)
        values['satellite_levels'] = [asdict(level) for level in self.satellite_levels]
        values['slot_dims'] = list(self.slot_dims)
        values['pinhole_canvas_hw'] = list(self.pinhole_canvas_hw)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DescriptorEstimatorConfig:
        """Build from `to_dict()` output (after a JSON round trip); unknown keys are errors."""
        values = dict(values)
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f'unknown DescriptorEstimatorConfig keys {unknown}')
        if 'ground_level' in values:
            values['ground_level'] = FeatureLevel(**values['ground_level'])
        if 'satellite_levels' in values:
            values['satellite_levels'] = tuple(FeatureLevel(**level)
                                               for level in values['satellite_levels'])
        if values.get('slot_dims') is not None:
            values['slot_dims'] = tuple(values['slot_dims'])
        return cls(**values)


def tiny_descriptor_config(satellite_size_px: int = 64, **overrides) -> DescriptorEstimatorConfig:
    """A CPU-test configuration on `tiny_encoder` (stride 32; about 0.1 M parameters)."""
    values = dict(backbone='tiny', ground_level=TINY_LEVELS[-1],
                  satellite_levels=TINY_LEVELS[::-1], satellite_size_px=satellite_size_px,
                  ground_descriptor_dim=8, slot_dims=None)
    values.update(overrides)
    if values['slot_dims'] is None:
        n_levels = round(math.log2(satellite_size_px / values.get('coarse_size_px', 8))) + 1
        values['slot_dims'] = default_slot_dims(n_levels, coarse_dim=2, finest_dim=1)
    return DescriptorEstimatorConfig(**values)
