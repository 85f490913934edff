"""Run an exported location model with onnxruntime: `OnnxLocationRunner`.

Execution providers (`select_providers`): device 'cpu' -> CPU; device 'cuda' ->
TensorRT, then CUDA, whichever this onnxruntime build offers, always with CPU behind
them; when neither GPU provider is there, the CPU provider runs and the returned note
says so (the caller logs it). Threads: intra-op threads = torch.get_num_threads(), so one
setting governs both backends.

Exports are found in `exported_location_dir(checkpoint_dir, onnx_dir)`: an explicit
directory written by `geodistill-export` (its location.json must name this checkpoint's
SHA-256s), else a cache directory keyed by the checkpoint and the versions, exported on
first use ($GEODISTILL_CACHE_DIR, default ~/.cache/geodistill/onnx).
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from geodistill_core.export.metadata import (
    EXPORT_FORMAT_VERSION,
    checkpoint_digest,
    read_metadata,
)
from geodistill_core.models.correlation.location_scores import LocationScores

logger = logging.getLogger(__name__)

CPU_PROVIDER = 'CPUExecutionProvider'
GPU_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider')
CACHE_ENV = 'GEODISTILL_CACHE_DIR'


def select_providers(device: str, available: list[str] | None = None,
                     ) -> tuple[list[str], str | None]:
    """(onnxruntime providers in priority order, fallback note or None) for a torch device
    type 'cpu' | 'cuda'; available defaults to onnxruntime.get_available_providers()."""
    if available is None:
        import onnxruntime as ort
        available = ort.get_available_providers()
    if device == 'cpu':
        return [CPU_PROVIDER], None
    if device != 'cuda':
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    gpu = [name for name in GPU_PROVIDERS if name in available]
    if gpu:
        return gpu + [CPU_PROVIDER], None
    return [CPU_PROVIDER], ('onnxruntime here has neither the TensorRT nor the CUDA execution '
                            f'provider (available: {", ".join(available)}): running the ONNX '
                            'model on the CPU; install onnxruntime-gpu for CUDA')


def _cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / '.cache' / 'geodistill' / 'onnx')


def cache_key(checkpoint_dir: str | Path) -> str:
    """Key of a checkpoint's export: its files' SHA-256s, the opset and the versions."""
    from geodistill_core.export.onnx_export import OPSET
    from geodistill_core.version import __version__
    digest = checkpoint_digest(checkpoint_dir)
    text = '|'.join([digest['config.json'], digest['model.safetensors'], str(OPSET),
                     str(EXPORT_FORMAT_VERSION), torch.__version__, __version__])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def exported_location_dir(checkpoint_dir: str | Path, onnx_dir: str | Path | None = None,
                          ) -> Path:
    """Directory with location.onnx/.json for the checkpoint (module doc); exports into the
    cache when onnx_dir is None and no export is cached yet."""
    if onnx_dir is not None:
        onnx_dir = Path(onnx_dir)
        meta = read_metadata(onnx_dir / 'location.json')
        if meta['source']['sha256'] != checkpoint_digest(checkpoint_dir):
            raise ValueError(f'{onnx_dir} was exported from another checkpoint than '
                             f'{checkpoint_dir} (SHA-256 differs): re-export with '
                             f'`geodistill-export --checkpoint {checkpoint_dir} --out {onnx_dir}`')
        return onnx_dir
    cached = _cache_root() / cache_key(checkpoint_dir)
    if not (cached / 'location.json').is_file():
        from geodistill_core.export.onnx_export import export_checkpoint
        logger.info('exporting %s to ONNX in %s (first use; cached for later runs)',
                    checkpoint_dir, cached)
        export_checkpoint(checkpoint_dir, cached)
    return cached


class OnnxLocationRunner:
    """An onnxruntime session of location.onnx with its metadata (location.json).

    onnx_dir: directory written by export_checkpoint; device: 'cpu' | 'cuda' (providers
    chosen by select_providers; a fallback is logged once).
    """

    def __init__(self, onnx_dir: str | Path, device: str = 'cpu') -> None:
        import onnxruntime as ort

        onnx_dir = Path(onnx_dir)
        self.metadata = read_metadata(onnx_dir / 'location.json')
        self.providers, note = select_providers(device)
        if note:
            logger.warning(note)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        options.inter_op_num_threads = 1
        # no busy-waiting worker threads: the node shares a few cores with everything else
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_dir / self.metadata['onnx_file']),
                                            options, providers=self.providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.cell_sat_px = float(self.metadata['heatmap']['cell_sat_px'])

    def scores(self, ground_rgb: torch.Tensor, satellite_rgb: torch.Tensor,
               yaw_rad: torch.Tensor, camera_height_m: torch.Tensor,
               meters_per_px: torch.Tensor, ground_K: torch.Tensor | None = None,
               ) -> torch.Tensor:
        """Finest heatmap scores (B, H, W), float32 on the CPU; arguments as
        ExportableLocationModel.forward. A shared crop (Bs = 1) runs in one pass; B > 1
        paired crops run one item at a time (the graph pairs all of them otherwise)."""
        feeds = {'ground_rgb': ground_rgb, 'satellite_rgb': satellite_rgb, 'yaw_rad': yaw_rad,
                 'camera_height_m': camera_height_m, 'meters_per_px': meters_per_px}
        if 'ground_K' in self.input_names:
            if ground_K is None:
                raise ValueError('this pinhole model needs ground_K (B, 3, 3)')
            feeds['ground_K'] = ground_K
        arrays = {k: np.ascontiguousarray(v.detach().float().cpu().numpy())
                  for k, v in feeds.items()}
        B, Bs = arrays['ground_rgb'].shape[0], arrays['satellite_rgb'].shape[0]
        if Bs not in (1, B):
            raise ValueError(f'satellite_rgb must hold 1 or B = {B} crops, got {Bs}')
        if Bs == 1:
            return torch.from_numpy(self.session.run(None, arrays)[0])
        parts = [self.session.run(None, {k: v[b:b + 1] for k, v in arrays.items()})[0]
                 for b in range(B)]
        return torch.from_numpy(np.concatenate(parts))

    def __call__(self, ground_images: torch.Tensor, satellite_images: torch.Tensor, *,
                 sat_meters_per_px: float, camera_height_m, ground_yaw_rad: torch.Tensor,
                 ground_K: torch.Tensor | None = None) -> LocationScores:
        """The LocationModel call Localizer makes, on this graph: RGB [0, 1] images at the
        export's input sizes, one sat_meters_per_px for the batch, camera_height_m a float
        or (B,), ground_yaw_rad (B,). Returns LocationScores with the finest level only."""
        B, Bs = ground_images.shape[0], satellite_images.shape[0]
        height = torch.as_tensor(camera_height_m, dtype=torch.float32).reshape(-1).expand(B)
        mpp = torch.full((Bs,), float(sat_meters_per_px))
        K = None if ground_K is None else ground_K.reshape(-1, 3, 3).expand(B, 3, 3)
        scores = self.scores(ground_images, satellite_images, ground_yaw_rad, height, mpp, K)
        return LocationScores([scores], [float(sat_meters_per_px) * self.cell_sat_px])


BACKENDS = ('torch', 'onnxruntime')


def location_runner(checkpoint_dir: str | Path, backend: str, device: torch.device,
                    onnx_dir: str | Path | None = None) -> OnnxLocationRunner | None:
    """The ONNX runner of a checkpoint for backend 'onnxruntime', None for 'torch'."""
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if backend == 'torch':
        return None
    return OnnxLocationRunner(exported_location_dir(checkpoint_dir, onnx_dir),
                              torch.device(device).type)
