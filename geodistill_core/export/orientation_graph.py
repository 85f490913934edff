"""The orientation estimator's graph for ONNX: images + prior yaw -> yaw-bin logits.

`ExportableOrientationModel` computes OrientationEstimator.forward's logits without its
value-range checks (data-dependent, not exportable); decoding the logits into a yaw
offset and spread stays outside the graph, with the same functions the estimator uses
(models.orientation.yaw_bins.decode_yaw_offset_deg / yaw_spread_deg, float64), whose bin
centres the metadata lists. Fixed sizes: the satellite crop of bev_size_px and the
panorama of the checkpoint's input_sizes ground_hw; dynamic batch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from geodistill_core.export.metadata import checkpoint_digest, metadata_bytes
from geodistill_core.geometry import panorama_bev_grid, sample_image
from geodistill_core.models.feature_levels import select_level
from geodistill_core.models.orientation import OrientationEstimator

REFERENCE_HEIGHT_M = 1.0  # the estimator's downward view does not depend on the height


class ExportableOrientationModel(nn.Module):
    """satellite_rgb (B, 3, S, S), panorama_rgb (B, 3, Hp, Wp) in [0, 1], prior_yaw_rad
    (B,) -> logits (B, n_bins) over estimator.bin_centers_deg (offsets from the prior)."""

    def __init__(self, estimator: nn.Module) -> None:
        super().__init__()
        if not isinstance(estimator, OrientationEstimator):
            raise TypeError(f'expected an OrientationEstimator, got {type(estimator).__name__}')
        self.estimator = estimator

    def forward(self, satellite_rgb: torch.Tensor, panorama_rgb: torch.Tensor,
                prior_yaw_rad: torch.Tensor) -> torch.Tensor:
        est, cfg = self.estimator, self.estimator.config
        B = satellite_rgb.shape[0]
        panorama = (panorama_rgb - est.mean_rgb) / est.std_rgb
        grid = panorama_bev_grid(est.bev_grid, prior_yaw_rad.to(torch.float32),
                                 REFERENCE_HEIGHT_M, tuple(panorama.shape[-2:]))
        bev = sample_image(panorama, grid)
        satellite = (satellite_rgb - est.mean_rgb) / est.std_rgb
        sat = select_level(est.satellite_encoder(satellite), cfg.satellite_feature_key,
                           cfg.satellite_channels, B, 'satellite')
        grd = select_level(est.ground_encoder(bev), cfg.ground_feature_key,
                           cfg.ground_channels, B, 'ground')
        pooled = F.adaptive_avg_pool2d(est.fusion(torch.cat([sat, grd], dim=1)), 1)
        return est.classifier(pooled.flatten(1))


def export_orientation(model: nn.Module, record: dict[str, Any], checkpoint_dir: Path,
                       opset: int) -> dict[str, bytes]:
    """{file name: bytes} of an orientation checkpoint's export (orientation.onnx/.json)."""
    from torch.export import Dim

    from geodistill_core.export.onnx_export import (
        MAX_BATCH,
        PARITY_TOLERANCE,
        _onnx_bytes,
        _version,
        check_onnx,
        onnx_max_abs_diff,
    )
    from geodistill_core.version import __version__

    graph = ExportableOrientationModel(model).eval()
    size = graph.estimator.config.bev_size_px
    H, W = (int(v) for v in record['input_sizes']['ground_hw'])
    generator = torch.Generator().manual_seed(0)
    batch = 2
    inputs = {'satellite_rgb': torch.rand(batch, 3, size, size, generator=generator),
              'panorama_rgb': torch.rand(batch, 3, H, W, generator=generator),
              'prior_yaw_rad': torch.rand(batch, generator=generator) * 6.0 - 3.0}
    axis = Dim('batch', min=1, max=MAX_BATCH)
    model_bytes = _onnx_bytes(graph, inputs, {name: {0: axis} for name in inputs},
                              ['logits'], opset)
    check_onnx(model_bytes)
    with torch.inference_mode():
        reference = graph(**inputs)
    diff = onnx_max_abs_diff(model_bytes, inputs, reference)
    if not diff <= PARITY_TOLERANCE * max(1.0, float(reference.abs().max())):
        raise RuntimeError(f'{checkpoint_dir}: onnxruntime logits differ from the eager model '
                           f'by {diff:.3g}; the export is not usable')
    config = graph.estimator.config
    meta = {
        'model': 'orientation', 'onnx_file': 'orientation.onnx', 'opset': opset,
        'input_sizes': {'satellite_hw': [size, size], 'panorama_hw': [H, W]},
        'inputs': {
            'satellite_rgb': {'shape': ['batch', 3, size, size], 'dtype': 'float32',
                              'doc': 'north-up crop, RGB in [0, 1], resized to bev_size_px'},
            'panorama_rgb': {'shape': ['batch', 3, H, W], 'dtype': 'float32',
                             'doc': 'equirectangular panorama, RGB in [0, 1]'},
            'prior_yaw_rad': {'shape': ['batch'], 'dtype': 'float32',
                              'doc': 'prior map-frame yaw of the panorama centre column'}},
        'outputs': {'logits': {'shape': ['batch', 'n_bins'], 'dtype': 'float32',
                               'doc': 'over bin_centers_deg, offsets from the prior; decode '
                                      'with yaw_bins.decode_yaw_offset_deg / yaw_spread_deg'}},
        'bin_centers_deg': graph.estimator.bin_centers_deg.tolist(),
        'preprocessing': {'outside_graph': 'uint8 RGB -> float32 / 255, NCHW, resized',
                          'inside_graph': {'mean_rgb': list(config.mean_rgb),
                                           'std_rgb': list(config.std_rgb)}},
        'validation': {'onnx_checker': 'full_check passed',
                       'onnxruntime_cpu_max_abs_diff': diff},
        'source': {'checkpoint': str(checkpoint_dir), 'sha256': checkpoint_digest(checkpoint_dir)},
        'versions': {'geodistill': __version__, 'torch': torch.__version__,
                     'onnx': _version('onnx'), 'onnxruntime': _version('onnxruntime')},
    }
    return {'orientation.onnx': model_bytes, 'orientation.json': metadata_bytes(meta)}
