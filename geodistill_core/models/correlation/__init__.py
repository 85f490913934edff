"""G2SWeakly-style correlation location estimator (method.md section 3).

Build with `CorrelationLocationEstimator(CorrelationEstimatorConfig(...), ground_extractor,
satellite_extractor)`; it returns LocationScores (scores per level, cell_m per level).
"""
from geodistill_core.models.correlation.bev_projector import (
    BevTemplate,
    ground_sampling_grid,
    project_to_bev,
    satellite_cell_m,
    template_shape,
)
from geodistill_core.models.correlation.estimator import (
    VGG16_UNET_LEVELS,
    CorrelationEstimatorConfig,
    CorrelationLevel,
    CorrelationLocationEstimator,
    LevelGeometry,
)
from geodistill_core.models.correlation.location_scores import LocationScores
from geodistill_core.models.correlation.sliding_correlation import masked_cosine_correlation

__all__ = [
    'BevTemplate',
    'CorrelationEstimatorConfig',
    'CorrelationLevel',
    'CorrelationLocationEstimator',
    'LevelGeometry',
    'LocationScores',
    'VGG16_UNET_LEVELS',
    'ground_sampling_grid',
    'masked_cosine_correlation',
    'project_to_bev',
    'satellite_cell_m',
    'template_shape',
]
