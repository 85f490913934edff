"""Build the trained networks from a ModelConfig; save and load them as checkpoints.

Model kinds are registered: `register_model_kind(kind, builder)` with
builder(ModelConfig) -> nn.Module. Built in: 'correlation' (the G2SWeakly-style estimator)
and 'ccvpe' (the descriptor estimator), both behind `LocationModel`, and 'orientation'
(models.orientation, which normalises its own inputs). GeoDistill only needs a location
model's LocationScores.

`LocationModel` is the contract every training objective relies on: it takes RGB images
in [0, 1] as the readers deliver them, applies the backbones' own normalisation, and
passes the ground column mask on: the invisible columns are blanked once (fill 0 = the
mean colour after normalisation) before the backbone (by the estimator itself when it
declares `masks_ground_images`, as the correlation estimator does, else here), and the
estimator drops the hidden BEV cells too.

Checkpoints (models.checkpoint format) use architecture 'training_model' with the
ModelConfig in hyper_parameters; `load_trained_model(path)` rebuilds any registered kind.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geodistill_core.masking import apply_image_mask
from geodistill_core.models.backbones import (
    BackboneConfig,
    Preprocess,
    build_backbone,
    get_backbone_record,
    preprocess_images,
)
from geodistill_core.models.backbones.preprocess import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB
from geodistill_core.models.checkpoint import (
    load_checkpoint,
    register_architecture,
    save_checkpoint,
)
from geodistill_core.training.config import ModelConfig
from geodistill_core.training.config_json import from_dict, to_dict

ARCHITECTURE = 'training_model'
ModelBuilder = Callable[[ModelConfig], nn.Module]
_KINDS: dict[str, ModelBuilder] = {}


def register_model_kind(kind: str, builder: ModelBuilder) -> None:
    """Register builder(ModelConfig) -> nn.Module under `kind` (re-registering the same
    builder is a no-op; another builder under a taken name is an error)."""
    if _KINDS.get(kind, builder) is not builder:
        raise ValueError(f'model kind {kind!r} is already registered to {_KINDS[kind]!r}')
    _KINDS[kind] = builder


def build_model(config: ModelConfig) -> nn.Module:
    """The network of `config` (pretrained backbone weights loaded when config.pretrained)."""
    if config.kind not in _KINDS:
        raise ValueError(f'unknown model kind {config.kind!r}; registered: {sorted(_KINDS)}. '
                         'Import the package that calls register_model_kind for it')
    return _KINDS[config.kind](config)


class LocationModel(nn.Module):
    """Normalise inputs, mask the ground image, run the estimator (-> LocationScores).

    estimator: any location estimator whose forward takes preprocessed images and the
        keyword arguments below and returns LocationScores.
    ground_preprocess / satellite_preprocess: the backbones' Preprocess records, or None
        when the estimator takes the [0, 1] images unchanged.
    """

    def __init__(self, estimator: nn.Module, ground_preprocess=None,
                 satellite_preprocess=None) -> None:
        super().__init__()
        self.estimator = estimator
        self.ground_preprocess = ground_preprocess
        self.satellite_preprocess = satellite_preprocess

    def forward(self, ground_images: torch.Tensor, satellite_images: torch.Tensor, *,
                ground_visible_cols: torch.Tensor | None = None, **kwargs):
        """ground_images: (B, 3, Hg, Wg) RGB in [0, 1]; satellite_images: (Bs, 3, Hs, Ws)
        RGB in [0, 1]; ground_visible_cols: optional (B, Wg) column or (B, Hg, Wg) pixel
        mask, True = visible; kwargs:
        the estimator's (sat_meters_per_px, camera_height_m, ground_yaw_rad, ground_K,
        all_pairs). Returns the estimator's LocationScores."""
        if self.ground_preprocess is not None:
            ground_images = preprocess_images(ground_images, self.ground_preprocess,
                                              check_range=False)
        if self.satellite_preprocess is not None:
            satellite_images = preprocess_images(satellite_images, self.satellite_preprocess,
                                                 check_range=False)
        if ground_visible_cols is not None and not getattr(self.estimator,
                                                           'masks_ground_images', False):
            ground_images = apply_image_mask(ground_images, ground_visible_cols)
        return self.estimator(ground_images, satellite_images,
                              ground_visible_cols=ground_visible_cols, **kwargs)

    def ground_feature_map(self, ground_images: torch.Tensor) -> torch.Tensor:
        """(B, 3, Hg, Wg) RGB in [0, 1] -> the estimator's ground feature map (B, C, h, w)
        (the max-activation ablation mask); estimators without one are refused."""
        if not hasattr(self.estimator, 'ground_feature_map'):
            raise ValueError(f'{type(self.estimator).__name__} exposes no ground feature map; '
                             "mask 'max_activation' needs the correlation estimator")
        if self.ground_preprocess is not None:
            ground_images = preprocess_images(ground_images, self.ground_preprocess,
                                              check_range=False)
        return self.estimator.ground_feature_map(ground_images)


def _backbone(name: str, weights: str | None, pretrained: bool,
              n_levels: int | None = None) -> nn.Module:
    """A registered backbone; with n_levels, trunks that support it drop deeper stages."""
    backbone = build_backbone(BackboneConfig(name, weights if pretrained else None, pretrained))
    if n_levels is not None and hasattr(backbone, 'truncate'):
        backbone.truncate(n_levels)
    return backbone


def build_correlation_model(config: ModelConfig) -> LocationModel:
    """LocationModel around a CorrelationLocationEstimator with the configured backbones."""
    from geodistill_core.models.correlation import (
        CorrelationEstimatorConfig,
        CorrelationLevel,
        CorrelationLocationEstimator,
    )
    ground_record = get_backbone_record(config.ground_backbone)
    sat_record = get_backbone_record(config.satellite_backbone)
    levels = []
    for index in config.levels:
        if not 0 <= index < len(ground_record.channels):
            raise ValueError(f'level {index} does not exist in {config.ground_backbone} '
                             f'({len(ground_record.channels)} levels)')
        if ground_record.channels[index] != sat_record.channels[index]:
            raise ValueError(f'level {index}: {config.ground_backbone} has '
                             f'{ground_record.channels[index]} channels, '
                             f'{config.satellite_backbone} {sat_record.channels[index]}')
        levels.append(CorrelationLevel(index, ground_record.channels[index]))
    estimator_config = CorrelationEstimatorConfig(
        levels=tuple(levels), camera_model=config.camera_model,
        template_fraction=config.template_fraction, positions=config.positions,
        learned_confidence=config.learned_confidence,
        confidence_weighting=config.confidence_weighting,
        template_energy_floor=config.template_energy_floor)
    estimator = CorrelationLocationEstimator(
        estimator_config,
        _backbone(config.ground_backbone, config.ground_weights, config.pretrained,
                  max(config.levels) + 1),
        _backbone(config.satellite_backbone, config.satellite_weights, config.pretrained,
                  max(config.levels) + 1))
    return LocationModel(estimator, ground_record.preprocess, sat_record.preprocess)


register_model_kind('correlation', build_correlation_model)

# The CCVPE encoders (timm EfficientNet-B0 or the tiny test encoder) take ImageNet-normalised
# inputs whose sides are multiples of their stride 32.
CCVPE_PREPROCESS = Preprocess(IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, input_multiple_px=32)


def build_ccvpe_model(config: ModelConfig) -> LocationModel:
    """LocationModel around a DescriptorEstimator built from config.estimator (a
    DescriptorEstimatorConfig dict; camera_model comes from the ModelConfig).

    EfficientNet-B0 encoders start from ImageNet weights when config.pretrained: the local
    timm files config.ground_weights / config.satellite_weights (required then: a missing
    path or file is an error naming how to get it); pretrained=False: random weights.
    The tiny test encoder has no pretrained weights (config.pretrained is ignored there).
    """
    from geodistill_core.models.ccvpe import DescriptorEstimator, DescriptorEstimatorConfig
    from geodistill_core.models.ccvpe.encoders import build_encoder
    values = {**(config.estimator or {}), 'camera_model': config.camera_model}
    estimator_config = DescriptorEstimatorConfig.from_dict(values)
    weights = {'ground': None, 'satellite': None}
    if config.pretrained and estimator_config.backbone == 'efficientnet_b0':
        from geodistill_core.models.backbones.efficientnet_b0 import B0_HINT
        weights = {'ground': config.ground_weights, 'satellite': config.satellite_weights}
        missing = [f'model.{k}_weights' for k, v in weights.items() if v is None]
        if missing:
            raise FileNotFoundError(f'CCVPE EfficientNet-B0 encoders with pretrained=True need '
                                    f'{missing} (or model.pretrained=false for random '
                                    f'weights). {B0_HINT}')
    estimator = DescriptorEstimator(
        estimator_config, build_encoder(estimator_config.backbone, weights['ground']),
        build_encoder(estimator_config.backbone, weights['satellite']))
    return LocationModel(estimator, CCVPE_PREPROCESS, CCVPE_PREPROCESS)


def build_orientation_model(config: ModelConfig) -> nn.Module:
    """OrientationEstimator from config.estimator (an OrientationEstimatorConfig dict); its
    encoders load their ImageNet weights only when both the estimator config and
    config.pretrained ask for them (a checkpoint rebuild sets pretrained=False; an estimator
    dict without 'pretrained' follows config.pretrained, so random weights are always
    asked for: model.pretrained=false or estimator pretrained false), from the
    estimator's `weights` file, or config.ground_weights when given (the same route as the
    location models: --set model.ground_weights=PATH)."""
    from geodistill_core.models.orientation import (
        OrientationEstimatorConfig,
        build_orientation_estimator,
    )
    from geodistill_core.models.orientation.config import PRETRAINED_BACKBONES
    values = dict(config.estimator or {})
    if config.ground_weights is not None:
        values['weights'] = config.ground_weights
    if 'pretrained' not in values:  # unsaid: the model's flag decides (random only if asked)
        backbone = values.get('backbone', OrientationEstimatorConfig.backbone)
        values['pretrained'] = config.pretrained and backbone in PRETRAINED_BACKBONES
    return build_orientation_estimator(OrientationEstimatorConfig.from_dict(values),
                                       load_pretrained=config.pretrained)


register_model_kind('ccvpe', build_ccvpe_model)
register_model_kind('orientation', build_orientation_model)


def checkpoint_config(model_config: ModelConfig, input_sizes: dict[str, Any],
                      meters_per_px: float | None, extra: dict[str, Any] | None = None):
    """The save_checkpoint config of a trained network."""
    return {'architecture': ARCHITECTURE, 'hyper_parameters': {'model': to_dict(model_config)},
            'input_sizes': input_sizes, 'meters_per_px': meters_per_px, **(extra or {})}


def _build_from_checkpoint(config: dict[str, Any]) -> nn.Module:
    model_config = from_dict(ModelConfig, config['hyper_parameters']['model'])
    return build_model(replace(model_config, pretrained=False, ground_weights=None,
                               satellite_weights=None))


register_architecture(ARCHITECTURE, _build_from_checkpoint)


def save_trained_model(path: str | Path, model: nn.Module, model_config: ModelConfig,
                       input_sizes: dict[str, Any], meters_per_px: float | None,
                       provenance: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """save_checkpoint of `model` (unwrapped from DDP) with its ModelConfig."""
    model = getattr(model, 'module', model)
    return save_checkpoint(path, model, checkpoint_config(model_config, input_sizes,
                                                          meters_per_px, extra), provenance)


def load_trained_model(path: str | Path, device: str | torch.device = 'cpu'):
    """(model in eval mode, ModelConfig, full checkpoint record) from a checkpoint dir."""
    model, record = load_checkpoint(path, architecture=ARCHITECTURE, device=device)
    return model, from_dict(ModelConfig, record['hyper_parameters']['model']), record
