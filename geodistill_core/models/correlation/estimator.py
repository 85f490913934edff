"""G2SWeakly-style location estimator: ground BEV template correlated with satellite features.

Two non-shared feature extractors (any nn.Module mapping (B, 3, H, W) images to a dict
{key: (B, C, h, w)} or a list indexed by key) feed, per configured level: the satellite
feature map; the ground feature map projected onto a north-up BEV template (panorama:
spherical transform, pinhole: inverse perspective through K) whose cells equal the
satellite feature cells in metres, weighted by a learned confidence (1x1 conv + sigmoid
on the ground features); and the masked cosine correlation of the template slid over the
satellite map (sliding_correlation.py). Levels default to the VGG16 U-Net's 0 (1/8) and
2 (1/2), template side 0.4 of the satellite feature side, 'same' positions.

The ground-visibility mask (GeoDistill FoV mask, (B, Wg) bool, True = visible; or a
(B, Hg, Wg) pixel mask for the patch ablations) blanks the hidden part of the ground
image before its extractor (fill 0, the mean colour of normalised inputs) and removes the
BEV cells that sample it from the features, the confidence and the cosine normalisation.

`activation_checkpointing` (off by default; training.loop switches it on): in training mode
with gradients enabled, each extractor's activations are recomputed in the backward pass
instead of being kept (only its input and output levels stay in memory).

Output frame: location_scores.py (heatmap cell (i, j) = camera at
((j - (W - 1) / 2) cell_m east, -(i - (H - 1) / 2) cell_m north) of the crop centre).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import math
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from geodistill_core.geometry import BevGrid
from geodistill_core.masking import apply_image_mask
from geodistill_core.models.correlation.bev_projector import (
    CAMERA_MODELS,
    BevTemplate,
    ground_sampling_grid,
    project_to_bev,
    satellite_cell_m,
    template_shape,
)
from geodistill_core.models.correlation.location_scores import LocationScores
from geodistill_core.models.correlation.sliding_correlation import (
    METHODS,
    POSITIONS,
    masked_cosine_correlation,
)
from geodistill_core.models.feature_levels import select_level

NORTH_ALIGNED_PANORAMA_YAW_RAD = math.pi / 2
CONFIDENCE_WEIGHTINGS = ('ground', 'both')


@dataclass(frozen=True)
class CorrelationLevel:
    """One heatmap level.

    feature_key: key of the level in both extractors' outputs (dict key or list index).
    channels: feature channels there (the same for the ground and satellite extractors).
    """

    feature_key: str | int
    channels: int

    def __post_init__(self):
        if not isinstance(self.feature_key, (str, int)) or isinstance(self.feature_key, bool):
            raise TypeError(f'feature_key must be a str or int, got {self.feature_key!r}')
        if not isinstance(self.channels, int) or self.channels <= 0:
            raise ValueError(f'channels must be a positive int, got {self.channels!r}')


VGG16_UNET_LEVELS = (CorrelationLevel(0, 256), CorrelationLevel(2, 64))


@dataclass(frozen=True)
class CorrelationEstimatorConfig:
    """Hyper-parameters of the correlation estimator (saved with every checkpoint).

    levels: heatmap levels, coarse to fine (default: VGG16 U-Net strides 8 and 2).
    camera_model: 'panorama' (equirectangular) or 'pinhole' (needs K in forward).
    template_fraction: BEV template side / satellite feature side (odd cell count nearest).
    positions: 'same' (every satellite feature cell a candidate) or 'valid'.
    learned_confidence: weight the template by a learned per-cell confidence c.
    confidence_weighting: 'ground' (score cos(sat, g * c): c weights the template only;
        the default, which every model saved before the option keeps) or 'both'
        (cos(sat * c, g * c), G2SWeakly's: c also weights the satellite window, so a cell
        of low confidence counts little in the window norm too).
    correlation_method: 'auto', 'conv' or 'fft' (sliding_correlation.py; same scores).
    template_energy_floor: the template norm at a position counts only its cells over the
        satellite map, floored at this fraction of its whole energy (1.0: the whole norm
        everywhere, which every model saved before the option keeps; below 1 lifts the
        penalty on positions whose template reaches out of the map; sliding_correlation).
    """

    levels: tuple[CorrelationLevel, ...] = VGG16_UNET_LEVELS
    camera_model: str = 'panorama'
    template_fraction: float = 0.4
    positions: str = 'same'
    learned_confidence: bool = True
    correlation_method: str = 'auto'
    confidence_weighting: str = 'ground'
    template_energy_floor: float = 1.0

    def __post_init__(self):
        if not self.levels:
            raise ValueError('at least one level is needed')
        keys = [level.feature_key for level in self.levels]
        if len(set(keys)) != len(keys):
            raise ValueError(f'feature keys must be distinct, got {keys}')
        if self.camera_model not in CAMERA_MODELS:
            raise ValueError(f'camera_model must be one of {CAMERA_MODELS}, '
                             f'got {self.camera_model!r}')
        if not 0.0 < self.template_fraction <= 1.0:
            raise ValueError(f'template_fraction must be in (0, 1], got {self.template_fraction}')
        if self.positions not in POSITIONS:
            raise ValueError(f'positions must be one of {POSITIONS}, got {self.positions!r}')
        if self.confidence_weighting not in CONFIDENCE_WEIGHTINGS:
            raise ValueError(f'confidence_weighting must be one of {CONFIDENCE_WEIGHTINGS}, '
                             f'got {self.confidence_weighting!r}')
        if not 0.0 <= self.template_energy_floor <= 1.0:
            raise ValueError(f'template_energy_floor must be in [0, 1], '
                             f'got {self.template_energy_floor}')
        if self.correlation_method not in METHODS:
            raise ValueError(f'correlation_method must be one of {METHODS}, '
                             f'got {self.correlation_method!r}')

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `from_dict` inverts it."""
        values = asdict(self)
        values['levels'] = [asdict(level) for level in self.levels]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CorrelationEstimatorConfig:
        """Build from `to_dict()` output; unknown keys are errors."""
        values = dict(values)
        levels = tuple(CorrelationLevel(**level) for level in values.pop('levels', ()))
        return cls(levels=levels, **values) if levels else cls(**values)


@dataclass(frozen=True)
class LevelGeometry:
    """Scale of one level, derived from the satellite input actually used.

    feature_hw: (h, w) satellite feature map; cell_m: metres per feature cell (= per BEV
    template cell = per heatmap cell); template_hw: (rows, cols) of the BEV template.
    """

    feature_hw: tuple[int, int]
    cell_m: float
    template_hw: tuple[int, int]


class CorrelationLocationEstimator(nn.Module):
    """Ground BEV templates x satellite feature maps -> masked cosine heatmaps per level."""

    masks_ground_images = True  # blanks hidden ground columns itself (LocationModel skips it)

    def __init__(self, config: CorrelationEstimatorConfig, ground_extractor: nn.Module,
                 satellite_extractor: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.ground_extractor = ground_extractor
        self.satellite_extractor = satellite_extractor
        self.confidence_heads = nn.ModuleList(
            nn.Conv2d(level.channels, 1, kernel_size=1) for level in config.levels
        ) if config.learned_confidence else None
        self.activation_checkpointing = False

    def _extract(self, extractor: nn.Module, images: torch.Tensor):
        """extractor(images), its activations recomputed in backward when checkpointing."""
        if self.activation_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(extractor, images, use_reentrant=False)
        return extractor(images)

    def satellite_levels(self, satellite_images: torch.Tensor) -> list[torch.Tensor]:
        """satellite_images: (Bs, 3, Hs, Ws) -> per level (Bs, C_l, h_l, w_l)."""
        if satellite_images.dim() != 4:
            raise ValueError(f'satellite_images must be (B, 3, Hs, Ws), '
                             f'got {tuple(satellite_images.shape)}')
        outputs = self._extract(self.satellite_extractor, satellite_images)
        return [select_level(outputs, level.feature_key, level.channels, satellite_images.shape[0],
                        'satellite') for level in self.config.levels]

    def ground_feature_map(self, ground_images: torch.Tensor) -> torch.Tensor:
        """The finest configured level of the ground extractor, (B, C, h, w), for
        preprocessed ground_images (B, 3, Hg, Wg) (the max-activation ablation mask)."""
        if ground_images.dim() != 4:
            raise ValueError(f'ground_images must be (B, 3, Hg, Wg), '
                             f'got {tuple(ground_images.shape)}')
        level = self.config.levels[-1]
        return select_level(self.ground_extractor(ground_images), level.feature_key,
                            level.channels, ground_images.shape[0], 'ground')

    def level_geometry(self, satellite_hw_px: tuple[int, int],
                       satellite_features: list[torch.Tensor],
                       sat_meters_per_px: float) -> list[LevelGeometry]:
        """Cell size and template size of every level from the satellite input size
        (Hs, Ws) in pixels, its per-level feature maps (Bs, C, h, w) and its resolution."""
        if torch.is_tensor(sat_meters_per_px) and sat_meters_per_px.numel() != 1:
            raise ValueError('sat_meters_per_px must be one value for the whole batch (resample '
                             'the crops to a common resolution), got a tensor of shape '
                             f'{tuple(sat_meters_per_px.shape)}')
        geometry = []
        for feature in satellite_features:
            hw = (int(feature.shape[-2]), int(feature.shape[-1]))
            geometry.append(LevelGeometry(
                hw, satellite_cell_m(satellite_hw_px, hw, float(sat_meters_per_px)),
                template_shape(hw, self.config.template_fraction)))
        return geometry

    def ground_templates(self, ground_images: torch.Tensor, geometry: list[LevelGeometry],
                         camera_height_m, ground_yaw_rad: torch.Tensor | None = None,
                         ground_K: torch.Tensor | None = None,
                         ground_visible_cols: torch.Tensor | None = None,
                         ) -> list[BevTemplate]:
        """Project the ground features of every level onto its BEV template.

        ground_images: (B, 3, Hg, Wg); geometry: from level_geometry; the other
        arguments as in forward. Returns one BevTemplate (B, C_l, rows_l, cols_l) per level.
        """
        self._check_ground(ground_images, ground_yaw_rad, ground_K, ground_visible_cols)
        levels = self.ground_levels(ground_images, ground_visible_cols)
        return self.project_ground_levels(levels, tuple(ground_images.shape[-2:]), geometry,
                                          camera_height_m, ground_yaw_rad, ground_K,
                                          ground_visible_cols)

    def ground_levels(self, ground_images: torch.Tensor,
                      ground_visible_cols: torch.Tensor | None = None,
                      ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Ground features and confidence per level, before projection (yaw-independent).

        ground_images: (B, 3, Hg, Wg); ground_visible_cols: optional (B, Wg) bool.
        Returns per level (features (B, C_l, hg_l, wg_l), confidence (B, 1, hg_l, wg_l)).
        """
        B = ground_images.shape[0]
        if ground_visible_cols is not None:
            ground_images = apply_image_mask(ground_images, ground_visible_cols)
        outputs = self._extract(self.ground_extractor, ground_images)
        levels = []
        for index, level in enumerate(self.config.levels):
            features = select_level(outputs, level.feature_key, level.channels, B, 'ground')
            if self.confidence_heads is None:
                confidence = features.new_ones(B, 1, *features.shape[-2:])
            else:
                confidence = torch.sigmoid(self.confidence_heads[index](features))
            levels.append((features, confidence))
        return levels

    def project_ground_levels(self, levels: list[tuple[torch.Tensor, torch.Tensor]],
                              ground_hw_px: tuple[int, int], geometry: list[LevelGeometry],
                              camera_height_m, ground_yaw_rad: torch.Tensor | None = None,
                              ground_K: torch.Tensor | None = None,
                              ground_visible_cols: torch.Tensor | None = None,
                              ) -> list[BevTemplate]:
        """BEV templates from ground_levels output (B rows) at yaw ground_yaw_rad (B,).

        ground_hw_px: (Hg, Wg) of the ground images the levels came from; the other
        arguments as in forward. Rotation search calls this once per yaw batch on features
        extracted once (rows repeated per candidate).
        """
        features0 = levels[0][0]
        B = features0.shape[0]
        geo_dtype = torch.float64 if features0.dtype == torch.float64 else torch.float32
        if ground_yaw_rad is None:
            ground_yaw_rad = features0.new_full((B,), NORTH_ALIGNED_PANORAMA_YAW_RAD,
                                                dtype=geo_dtype)
        yaw_rad = ground_yaw_rad.to(device=features0.device, dtype=geo_dtype)
        templates = []
        for (features, confidence), geo in zip(levels, geometry, strict=True):
            grid = BevGrid(geo.template_hw[0], geo.template_hw[1], geo.cell_m)
            sampling = ground_sampling_grid(self.config.camera_model, grid, yaw_rad,
                                            camera_height_m, tuple(ground_hw_px), ground_K)
            templates.append(project_to_bev(features, confidence, sampling,
                                            ground_visible_cols))
        return templates

    def forward(self, ground_images: torch.Tensor, satellite_images: torch.Tensor, *,
                sat_meters_per_px: float, camera_height_m,
                ground_yaw_rad: torch.Tensor | None = None,
                ground_K: torch.Tensor | None = None,
                ground_visible_cols: torch.Tensor | None = None,
                all_pairs: bool = False) -> LocationScores:
        """Heatmaps of the camera position over the satellite crops.

        ground_images: (B, 3, Hg, Wg) panoramas (yaw-aligned or with ground_yaw_rad) or
            pinhole images, preprocessed for the ground extractor.
        satellite_images: (Bs, 3, Hs, Ws) north-up crops centred on the prior position,
            preprocessed for the satellite extractor; Bs == B unless all_pairs.
        sat_meters_per_px: ground resolution of satellite_images as given (after any
            resizing), one value for the batch.
        camera_height_m: float or (B,) camera height above the ground.
        ground_yaw_rad: (B,) map-frame yaw of the panorama centre column / pinhole optical
            axis (0 = east, counter-clockwise). Default for panoramas: pi / 2 (north-
            aligned); required for pinhole.
        ground_K: (B, 3, 3) or (3, 3) intrinsics of ground_images at (Hg, Wg) (pinhole).
        ground_visible_cols: optional (B, Wg) bool, True = visible column, or a (B, Hg, Wg)
            pixel mask (random-patch / max-activation ablations); either blanks the hidden
            image part and removes the BEV cells that sample it.
        all_pairs: False: scores (B, H_l, W_l) of satellite b with ground b; True: scores
            (Bs, B, H_l, W_l) of every satellite m with every ground n (weak triplet loss).
        Returns LocationScores: scores per level (cosine in [-1, 1]) and cell_m per level
        (= sat_meters_per_px * Hs / h_l); H_l x W_l = h_l x w_l for 'same' positions.
        """
        self._check_ground(ground_images, ground_yaw_rad, ground_K, ground_visible_cols)
        if satellite_images.dim() != 4:
            raise ValueError(f'satellite_images must be (B, 3, Hs, Ws), '
                             f'got {tuple(satellite_images.shape)}')
        if not all_pairs and satellite_images.shape[0] != ground_images.shape[0]:
            raise ValueError(f'paired mode needs one satellite per ground image, got ground '
                             f'{tuple(ground_images.shape)}, satellite '
                             f'{tuple(satellite_images.shape)}')
        satellite_features = self.satellite_levels(satellite_images)
        geometry = self.level_geometry(tuple(satellite_images.shape[-2:]), satellite_features,
                                       sat_meters_per_px)
        templates = self.ground_templates(ground_images, geometry, camera_height_m,
                                          ground_yaw_rad, ground_K, ground_visible_cols)
        both = self.config.confidence_weighting == 'both'
        scores = [masked_cosine_correlation(sat, tpl.weighted(), tpl.valid,
                                            self.config.positions, all_pairs,
                                            self.config.correlation_method,
                                            window_weight=tpl.confidence[:, 0] if both else None,
                                            template_energy_floor=self.config
                                            .template_energy_floor)
                  for sat, tpl in zip(satellite_features, templates, strict=True)]
        return LocationScores(scores, [geo.cell_m for geo in geometry])

    def _check_ground(self, ground_images, yaw_rad, K, visible_cols) -> tuple[int, ...]:
        if ground_images.dim() != 4:
            raise ValueError(f'ground_images must be (B, 3, Hg, Wg), '
                             f'got {tuple(ground_images.shape)}')
        B, _, Hg, Wg = ground_images.shape
        if yaw_rad is not None and (not torch.is_tensor(yaw_rad) or yaw_rad.shape != (B,)):
            shape = tuple(yaw_rad.shape) if torch.is_tensor(yaw_rad) else type(yaw_rad)
            raise ValueError(f'ground_yaw_rad must be a ({B},) tensor, got {shape}')
        if self.config.camera_model == 'pinhole':
            if yaw_rad is None or K is None:
                raise ValueError('the pinhole camera model needs ground_yaw_rad (B,) and '
                                 'ground_K (B, 3, 3)')
            if K.shape not in ((3, 3), (B, 3, 3)):
                raise ValueError(f'ground_K must be (B, 3, 3) = ({B}, 3, 3) or (3, 3), '
                                 f'got {tuple(K.shape)}')
        elif K is not None:
            raise ValueError('ground_K is only used by the pinhole camera model; this '
                             'estimator is configured for panoramas')
        if visible_cols is not None and visible_cols.shape not in ((B, Wg), (B, Hg, Wg)):
            raise ValueError(f'ground_visible_cols must be (B, Wg) = ({B}, {Wg}) or '
                             f'(B, Hg, Wg) = ({B}, {Hg}, {Wg}), got {tuple(visible_cols.shape)}')
        return B, ground_images.shape[1], Hg, Wg
