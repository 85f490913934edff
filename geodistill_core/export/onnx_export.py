"""Export a checkpoint to ONNX: `export_checkpoint(checkpoint_dir, out_dir) -> Path`.

Writes into out_dir, for a location checkpoint (kind 'correlation'):

    location.onnx   the graph of location_graph.ExportableLocationModel (dynamic batch)
    location.json   metadata.py record: inputs, preprocessing, heatmap cell, calibration
    config.json     the checkpoint's config.json, unchanged

and for an orientation checkpoint (kind 'orientation') orientation.onnx / orientation.json
/ config.json (orientation_graph.py). The graph is checked with onnx.checker (full check,
shape inference) and run once through onnxruntime (CPU) against the eager model on seeded
random inputs: the export fails when the largest score difference exceeds
PARITY_TOLERANCE. Files appear all at once (atomic_dir).

Opset: the torch.export-based exporter (dynamo=True) at opset 20; GridSample (opset 16+)
is needed by the BEV projection. The correlation is exported as matrix-product DFTs
(dft_correlation.py): torch.fft exports as ONNX DFT, which onnxruntime's CPU kernel ran
about 10x slower than eager here, and a Conv with the template as weight about 2x slower
than the matrix DFT.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
from pathlib import Path
import tempfile
from typing import Any
import warnings

import numpy as np
import torch

from geodistill_core.atomic_dir import write_directory_atomic
from geodistill_core.export.location_graph import ExportableLocationModel
from geodistill_core.export.metadata import checkpoint_digest, metadata_bytes
from geodistill_core.filtering.calibration import calibration_from_record
from geodistill_core.version import __version__

logger = logging.getLogger(__name__)

OPSET = 20
PARITY_TOLERANCE = 1e-4
PARITY_BATCH = 2
MAX_BATCH = 4096
# Temperature of the scores (Localizer.SCORE_TAU; the correlation's cosine scores).
SCORE_TAU_CORRELATION = 0.06
DEFAULT_CAMERA_HEIGHT_M = {'panorama': 2.0, 'pinhole': 1.65}


def default_camera_height_m(record: dict[str, Any], camera_model: str) -> float:
    """The checkpoint's training camera height, else the camera model's default."""
    data_conf = (record.get('training_config') or {}).get('data', {})
    return float(data_conf.get('camera_height_m') or DEFAULT_CAMERA_HEIGHT_M[camera_model])


def example_location_inputs(camera_model: str, ground_hw: tuple[int, int], satellite_px: int,
                            batch: int, satellite_batch: int, camera_height_m: float,
                            meters_per_px: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded inputs of the location graph, named as its ONNX inputs (yaws spread over the
    circle; pinhole K with a 0.6 W focal length, principal point at the image centre)."""
    generator = torch.Generator().manual_seed(seed)
    H, W = ground_hw
    inputs = {
        'ground_rgb': torch.rand(batch, 3, H, W, generator=generator),
        'satellite_rgb': torch.rand(satellite_batch, 3, satellite_px, satellite_px,
                                    generator=generator),
        'yaw_rad': torch.rand(batch, generator=generator) * 2 * math.pi - math.pi,
        'camera_height_m': torch.full((batch,), float(camera_height_m)),
        'meters_per_px': torch.full((satellite_batch,), float(meters_per_px)),
    }
    if camera_model == 'pinhole':
        K = torch.tensor([[0.6 * W, 0.0, (W - 1) / 2], [0.0, 0.6 * W, (H - 1) / 2],
                          [0.0, 0.0, 1.0]])
        inputs['ground_K'] = K.expand(batch, 3, 3).contiguous()
    return inputs


def _onnx_bytes(module: torch.nn.Module, inputs: dict[str, torch.Tensor],
                dynamic: dict[str, dict[int, Any]], output_names: list[str],
                opset: int) -> bytes:
    """ONNX model bytes of module(**inputs) (torch.export-based exporter, one file)."""
    progress = io.StringIO()  # the exporter prints its steps; keep them for the debug log
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(progress), \
            warnings.catch_warnings(), np.errstate(divide='ignore', invalid='ignore'):
        warnings.filterwarnings('ignore', message='# The axis name')
        path = Path(tmp) / 'model.onnx'
        torch.onnx.export(module, tuple(inputs.values()), str(path), dynamo=True,
                          opset_version=opset, input_names=list(inputs),
                          output_names=output_names, dynamic_shapes=dynamic,
                          external_data=False, verbose=False)
        model_bytes = path.read_bytes()
    logger.debug('torch.onnx.export: %s', progress.getvalue())
    return model_bytes


def check_onnx(model_bytes: bytes) -> None:
    """onnx.checker full check (operators, shape inference); raises on failure."""
    import onnx
    with np.errstate(divide='ignore', invalid='ignore'):  # its constant folding on zeros
        onnx.checker.check_model(onnx.load_model_from_string(model_bytes), full_check=True)


def onnx_max_abs_diff(model_bytes: bytes, inputs: dict[str, torch.Tensor],
                      reference: torch.Tensor) -> float:
    """Largest |onnxruntime (CPU) output 0 - reference| on the named inputs."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_bytes, options, providers=['CPUExecutionProvider'])
    output = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
    return float(np.abs(output - reference.numpy()).max())


def export_location(model: torch.nn.Module, record: dict[str, Any], checkpoint_dir: Path,
                    opset: int = OPSET) -> dict[str, bytes]:
    """{file name: bytes} of a location checkpoint's export (module doc)."""
    from torch.export import Dim

    model_conf = record['hyper_parameters']['model']
    camera_model = model_conf['camera_model']
    sizes = record['input_sizes']
    ground_hw = tuple(int(v) for v in sizes['ground_hw'])
    satellite_px = int(sizes['satellite_hw'][0])
    height_m = default_camera_height_m(record, camera_model)
    trained_mpp = record.get('meters_per_px') or 0.2
    graph = ExportableLocationModel(model, ground_hw, satellite_px).eval()
    batch, satellite_batch = Dim('batch', min=1, max=MAX_BATCH), Dim('satellite_batch', min=1,
                                                                      max=MAX_BATCH)
    # Export with B != Bs, both > 1, so that neither axis is specialised.
    inputs = example_location_inputs(camera_model, ground_hw, satellite_px, PARITY_BATCH + 1,
                                     PARITY_BATCH, height_m, trained_mpp)
    dynamic = {name: {0: satellite_batch if name in ('satellite_rgb', 'meters_per_px')
                      else batch} for name in inputs}
    model_bytes = _onnx_bytes(graph, inputs, dynamic, ['scores'], opset)
    check_onnx(model_bytes)
    with torch.inference_mode():
        reference = graph(**inputs)
    diff = onnx_max_abs_diff(model_bytes, inputs, reference)
    if not diff <= PARITY_TOLERANCE:
        raise RuntimeError(f'{checkpoint_dir}: onnxruntime scores differ from the eager model '
                           f'by {diff:.3g} > {PARITY_TOLERANCE}; the export is not usable')
    meta = location_metadata(graph, record, checkpoint_dir, height_m, opset, diff)
    return {'location.onnx': model_bytes, 'location.json': metadata_bytes(meta)}


def location_metadata(graph: ExportableLocationModel, record: dict[str, Any],
                      checkpoint_dir: Path, height_m: float, opset: int,
                      parity_diff: float) -> dict[str, Any]:
    """The location.json record (metadata.py)."""
    model = graph.model
    H, W = graph.ground_hw
    S = graph.satellite_px

    def norm(preprocess):
        return None if preprocess is None else {'mean_rgb': list(preprocess.mean_rgb),
                                                'std_rgb': list(preprocess.std_rgb)}

    inputs = {
        'ground_rgb': {'shape': ['batch', 3, H, W], 'dtype': 'float32',
                       'doc': 'ground image, RGB in [0, 1], resized to ground_hw'},
        'satellite_rgb': {'shape': ['satellite_batch', 3, S, S], 'dtype': 'float32',
                          'doc': 'north-up satellite crop centred on the prior, RGB in [0, 1], '
                                 'resized to satellite_hw; satellite_batch is 1 (shared by '
                                 'every ground image) or batch (paired item by item)'},
        'yaw_rad': {'shape': ['batch'], 'dtype': 'float32',
                    'doc': 'map-frame yaw of the panorama centre column / optical axis '
                           '(0 = east, counter-clockwise)'},
        'camera_height_m': {'shape': ['batch'], 'dtype': 'float32'},
        'meters_per_px': {'shape': ['satellite_batch'], 'dtype': 'float32',
                          'doc': 'ground resolution of satellite_rgb as fed (after resizing)'},
    }
    if graph.camera_model == 'pinhole':
        inputs['ground_K'] = {'shape': ['batch', 3, 3], 'dtype': 'float32',
                              'doc': 'intrinsics of ground_rgb at ground_hw'}
    trained_mpp = record.get('meters_per_px')
    return {
        'model': 'location', 'onnx_file': 'location.onnx', 'opset': opset,
        'kind': record['hyper_parameters']['model']['kind'], 'camera_model': graph.camera_model,
        'input_sizes': {'ground_hw': [H, W], 'satellite_hw': [S, S]},
        'inputs': inputs,
        'outputs': {'scores': {
            'shape': ['batch', 'heatmap_h', 'heatmap_w'], 'dtype': 'float32',
            'doc': 'finest-level cosine scores in [-1, 1] of ground b in satellite b % '
                   'satellite_batch; cell (i, j) = camera at ((j - (W - 1) / 2) cell_m east, '
                   '-(i - (H - 1) / 2) cell_m north) of the crop centre'}},
        'preprocessing': {
            'outside_graph': 'uint8 RGB -> float32 / 255, NCHW; bilinear antialiased resize '
                             'to input_sizes (Localizer._resize); K scaled to ground_hw',
            'inside_graph': {'ground': norm(model.ground_preprocess),
                             'satellite': norm(model.satellite_preprocess)}},
        'heatmap': {'cell_sat_px': graph.cell_px,
                    'cell_m': 'meters_per_px * cell_sat_px',
                    'cell_m_at_trained_resolution': (None if not trained_mpp
                                                     else trained_mpp * graph.cell_px),
                    'score_tau': SCORE_TAU_CORRELATION},
        'calibration': calibration_from_record(record).to_dict(),
        'meters_per_px': trained_mpp,
        'camera_height_m': height_m,
        'validation': {'onnx_checker': 'full_check passed',
                       'onnxruntime_cpu_max_abs_diff': parity_diff,
                       'tolerance': PARITY_TOLERANCE},
        'source': {'checkpoint': str(checkpoint_dir), 'sha256': checkpoint_digest(checkpoint_dir)},
        'versions': {'geodistill': __version__, 'torch': torch.__version__,
                     'onnx': _version('onnx'), 'onnxruntime': _version('onnxruntime')},
    }


def _version(module: str) -> str:
    return __import__(module).__version__


def export_checkpoint(checkpoint_dir: str | Path, out_dir: str | Path,
                      opset: int = OPSET) -> Path:
    """Export the checkpoint at checkpoint_dir into out_dir (module doc); returns out_dir."""
    from geodistill_core.training.models import load_trained_model

    checkpoint_dir, out_dir = Path(checkpoint_dir), Path(out_dir)
    model, model_config, record = load_trained_model(checkpoint_dir)
    if model_config.kind == 'orientation':
        from geodistill_core.export.orientation_graph import export_orientation
        files = export_orientation(model, record, checkpoint_dir, opset)
    elif model_config.kind == 'correlation':
        files = export_location(model, record, checkpoint_dir, opset)
    else:
        raise ValueError(f'{checkpoint_dir}: ONNX export supports correlation location models '
                         f"and orientation models, not kind {model_config.kind!r}; use the "
                         "torch backend for it")
    files['config.json'] = (checkpoint_dir / 'config.json').read_bytes()
    write_directory_atomic(out_dir, files)
    logger.info('exported %s to %s (%s)', checkpoint_dir, out_dir, ', '.join(files))
    return out_dir
