"""CCVPE-style descriptor location estimator (method.md section 3).

Build with `build_descriptor_estimator(DescriptorEstimatorConfig(...))` (timm
EfficientNet-B0 encoders, random weights) or `DescriptorEstimator(config, ground_encoder,
satellite_encoder)`; `tiny_descriptor_config()` + backbone 'tiny' for tests. forward returns
DescriptorScores: the LocationScores every location estimator returns (logits per level,
cell_m per level) plus the orientation field and the matching volumes. Train the teacher
with `ccvpe_supervised_loss`.
"""
from geodistill_core.models.ccvpe.circular_padding import is_width_circular, make_width_circular_
from geodistill_core.models.ccvpe.config import (
    EFFICIENTNET_B0_LEVELS,
    TINY_LEVELS,
    DescriptorEstimatorConfig,
    FeatureLevel,
    tiny_descriptor_config,
)
from geodistill_core.models.ccvpe.decoder import CoarseToFineDecoder
from geodistill_core.models.ccvpe.encoders import (
    TinyEncoder,
    build_encoder,
    efficientnet_b0_encoder,
    tiny_encoder,
)
from geodistill_core.models.ccvpe.estimator import (
    DescriptorEstimator,
    DescriptorScores,
    build_descriptor_estimator,
)
from geodistill_core.models.ccvpe.ground_descriptor import (
    OrientationAwareDescriptor,
    slot_visibility,
)
from geodistill_core.models.ccvpe.matching import orientation_cosine, rolled_slot_index
from geodistill_core.models.ccvpe.pinhole_canvas import pinhole_to_panorama
from geodistill_core.models.ccvpe.supervised_loss import (
    CCVPE_PAPER_LOSS,
    CcvpeLossConfig,
    ccvpe_supervised_loss,
)

__all__ = [
    'CCVPE_PAPER_LOSS',
    'CcvpeLossConfig',
    'CoarseToFineDecoder',
    'DescriptorEstimator',
    'DescriptorEstimatorConfig',
    'DescriptorScores',
    'EFFICIENTNET_B0_LEVELS',
    'FeatureLevel',
    'OrientationAwareDescriptor',
    'TINY_LEVELS',
    'TinyEncoder',
    'build_descriptor_estimator',
    'build_encoder',
    'ccvpe_supervised_loss',
    'efficientnet_b0_encoder',
    'is_width_circular',
    'make_width_circular_',
    'orientation_cosine',
    'pinhole_to_panorama',
    'rolled_slot_index',
    'slot_visibility',
    'tiny_descriptor_config',
    'tiny_encoder',
]
