"""Localizer: the one inference pipeline (node, bag replay and offline evaluation).

ground image (panorama, or pinhole + K) + north-up satellite crop (+ yaw prior)
    -> orientation estimator (panoramas, when one is loaded): yaw and its spread
    -> or rotation search (yaw_search='rotation', correlation models): the location model
       scores yaw candidates inside the prior's range (rotation_search.py)
    -> location estimator with that yaw: heatmap over the crop
    -> heatmap.py: position offset from the crop centre (east, north metres), 2x2
       covariance, confidence.

Frames: yaw is map-frame (0 = east, counter-clockwise) of the panorama's centre column or
the pinhole's optical axis; offsets are from the satellite crop centre, east/north metres.
Device and precision are the caller's: autocast (bfloat16/float16) covers the backbones
on CUDA, and bfloat16 on CPUs with native bfloat16 (geodistill_core.precision); geometry
and correlation stay float32 inside the estimators.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields, replace
import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from geodistill_core.filtering.calibration import HeatmapCalibration, calibration_from_record
from geodistill_core.geometry import scale_intrinsics
from geodistill_core.heatmap import heatmap_to_pose, sharpened_log_softmax
from geodistill_core.models.frozen_batchnorm import freeze_batchnorm
from geodistill_core.precision import autocast_supported
from geodistill_core.rotation_search import (
    YAW_SEARCH_MODES,
    RotationSearchConfig,
    YawSearchResult,
    search_yaw,
)

logger = logging.getLogger(__name__)

PRECISIONS = {'float32': None, 'bfloat16': torch.bfloat16, 'float16': torch.float16}
# Temperature turning a level's scores into a probability: cosine scores (correlation)
# are sharpened with GeoDistill's tau, CCVPE logits are already logits.
SCORE_TAU = {'correlation': 0.06, 'ccvpe': 1.0}
ASSETS_DIR = Path(__file__).resolve().parent / 'assets'
YAW_SOURCES = ('prior', 'orientation_model', 'rotation_search')
# Rotation search of the embedded defaults (Localizer.default): mode and settings per camera,
# measured by bench/bench_yaw_search.py on the unseen city (seed-4242 synthetic drives); the
# scoring variant and the posterior temperature are its `chosen`, fitted and selected on
# validation drives (never on the test drives): pinhole, every third frame of the
# calibration's old-town drive (seed 1000); panorama, a training-city drive.
# Pinhole (+-10 deg prior, the model trained with rotated negatives, template floor 0.7;
# variant max over the finest level): median 1.01 deg vs 5.21 deg for the prior, yaw NEES
# 0.31 (underconfident), location median 1.00 m vs 2.27 m at the prior's yaw (mean 3.07 vs
# 6.27 m). Panorama (+-45 deg):
# median 0.97 deg vs 23.4 deg for the prior, location median 0.67 m vs 10.8 m on a 5 deg /
# 1 deg grid (20 candidates at the node's +-20 deg, 30 at +-45; bench/results/
# yaw_search_*.json, model cards). Both beat keeping the prior, so both are the default.
# The search needs the eager model: with backend='onnxruntime' the default is 'none'.
DEFAULT_YAW_SEARCH = {
    'pinhole': ('rotation', RotationSearchConfig(range_deg=10.0, coarse_step_deg=2.0,
                                                 fine_step_deg=0.25, reduce='max',
                                                 levels='finest', temperature=0.01778)),
    'panorama': ('rotation', RotationSearchConfig(range_deg=45.0, coarse_step_deg=5.0,
                                                  fine_step_deg=1.0, reduce='logsumexp',
                                                  levels='mean', temperature=0.2818)),
}


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' | 'cpu' | 'cuda[:n]' -> torch.device; 'auto' picks CUDA when present."""
    if str(device) == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'device {device} requested but CUDA is not available here; '
                           "use device 'auto' or 'cpu'")
    if device.type not in ('cpu', 'cuda'):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device}")
    return device


class YawSearchUnsupported(ValueError):
    """The requested yaw_search cannot run with this model or backend (a ValueError, so
    callers that catch ValueError still do; the node tells it apart from a bad checkpoint)."""


@dataclass(frozen=True)
class LocalizationResult:
    """Batched result (torch tensors on the CPU, float32).

    yaw_rad (B,): map-frame yaw used for localization (prior + orientation estimate).
    yaw_std_rad (B,): its standard deviation.
    offset_en_m (B, 2): camera position minus satellite crop centre, east/north metres.
    covariance_en_m2 (B, 2, 2): of offset_en_m, from the heatmap.
    confidence (B,): in [0, 1] (1 - normalised heatmap entropy).
    heatmap_prob (B, h, w): north-up probability over the crop (row 0 = north), calibrated
        (the model's HeatmapCalibration: temperature and uniform floor).
    heatmap_cell_m: metres per heatmap cell.
    heatmap_log_prob_base (B, h, w): the uncalibrated log-probability at the model's tau
        (what train/calibrate.py fits the calibration on).
    heatmap_floor_prob: the calibrated probability's uniform floor per cell (outlier weight
        / cells; 0 without calibration).
    yaw_source: where yaw_rad comes from: 'prior', 'orientation_model' or 'rotation_search'.
    yaw_search_result: the rotation search's candidates, scores and posterior (None
        without one).
    """

    yaw_rad: torch.Tensor
    yaw_std_rad: torch.Tensor
    offset_en_m: torch.Tensor
    covariance_en_m2: torch.Tensor
    confidence: torch.Tensor
    heatmap_prob: torch.Tensor
    heatmap_cell_m: float
    heatmap_log_prob_base: torch.Tensor | None = None
    heatmap_floor_prob: float = 0.0
    yaw_source: str = 'prior'
    yaw_search_result: YawSearchResult | None = None

    def __post_init__(self):
        if self.yaw_source not in YAW_SOURCES:
            raise ValueError(f'yaw_source must be one of {YAW_SOURCES}, got {self.yaw_source!r}')

    def item(self, index: int = 0) -> dict:
        """One result as plain numpy / floats."""
        return {'yaw_rad': float(self.yaw_rad[index]),
                'yaw_std_rad': float(self.yaw_std_rad[index]),
                'offset_en_m': self.offset_en_m[index].numpy(),
                'covariance_en_m2': self.covariance_en_m2[index].numpy(),
                'confidence': float(self.confidence[index]),
                'heatmap_prob': self.heatmap_prob[index].numpy(),
                'heatmap_cell_m': self.heatmap_cell_m,
                'heatmap_log_prob_base': (None if self.heatmap_log_prob_base is None
                                          else self.heatmap_log_prob_base[index].numpy()),
                'heatmap_floor_prob': self.heatmap_floor_prob,
                'yaw_source': self.yaw_source}


def _to_batch(images, name: str) -> torch.Tensor:
    """(H, W, 3) uint8 numpy | (B, H, W, 3) uint8 | (B, 3, H, W) float in [0, 1]
    -> (B, 3, H, W) float32 in [0, 1]."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.shape[-1] != 3 or images.ndim not in (3, 4):
            raise ValueError(f'{name}: numpy input must be (H, W, 3) or (B, H, W, 3) uint8 '
                             f'RGB, got {images.shape} {images.dtype}')
        tensor = torch.from_numpy(np.ascontiguousarray(images))
        tensor = tensor.unsqueeze(0) if tensor.dim() == 3 else tensor
        return tensor.permute(0, 3, 1, 2).float() / 255.0
    if not torch.is_tensor(images) or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f'{name}: tensor input must be (B, 3, H, W) float in [0, 1], got '
                         f'{tuple(images.shape) if torch.is_tensor(images) else type(images)}')
    return images.float()


def _resize(images: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    if tuple(images.shape[-2:]) == tuple(hw):
        return images
    return F.interpolate(images, size=tuple(hw), mode='bilinear', align_corners=False,
                         antialias=True)


class Localizer:
    """Cross-view localizer around a location model and an optional orientation model.

    location_model: a training.models LocationModel (RGB [0, 1] in, LocationScores out).
    orientation_model: an OrientationEstimator or None (then the yaw prior is used as is).
    kind: 'correlation' | 'ccvpe' (selects the score temperature).
    ground_hw: (H, W) the location model expects; sat_size_px: its satellite side.
    camera_model: 'panorama' | 'pinhole'; camera_height_m: default camera height.
    yaw_prior_std_deg: spread reported when the yaw comes from the prior alone.
    calibration: the heatmap calibration (filtering.HeatmapCalibration; None = identity);
        from_checkpoints reads it from the checkpoint's config.json.
    onnx_runner: an export.runtime.OnnxLocationRunner of the location model (backend
        'onnxruntime': the same scores, then the same heatmap_to_pose), or None (torch).
    yaw_search: 'none' (the prior, or the orientation model's yaw) or 'rotation' (the
        location model scores yaw candidates around that yaw: rotation_search.py; torch
        backend and correlation models only). yaw_search_config: its RotationSearchConfig
        (range, steps, scoring, temperature); default RotationSearchConfig().
    fold_batchnorm: fold the models' BatchNorm layers into their convolutions, in place
        (models/frozen_batchnorm.py: the eval outputs to float round-off, less time per
        frame); from_checkpoints does (fold_batchnorm=True), for models it owns; False here
        by default, because a model passed in may still be trained by its owner.
    """

    def __init__(self, location_model: torch.nn.Module, *, kind: str,
                 ground_hw: tuple[int, int], sat_size_px: int, camera_model: str,
                 camera_height_m: float, orientation_model: torch.nn.Module | None = None,
                 orientation_sat_px: int | None = None, device: str = 'auto',
                 precision: str = 'float32', yaw_prior_std_deg: float = 5.0,
                 onnx_runner=None,
                 recommended_meters_per_px: float | None = None,
                 calibration: HeatmapCalibration | None = None, yaw_search: str = 'none',
                 yaw_search_config: RotationSearchConfig | None = None,
                 fold_batchnorm: bool = False):
        if kind not in SCORE_TAU:
            raise ValueError(f'kind must be one of {sorted(SCORE_TAU)}, got {kind!r}')
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
        if camera_model not in ('panorama', 'pinhole'):
            raise ValueError(f"camera_model must be 'panorama' or 'pinhole', got {camera_model!r}")
        self.device = resolve_device(device)
        self.precision = precision
        if not autocast_supported(self.device, PRECISIONS[precision]):
            logger.warning('precision %s requested on %s: running float32 (CPU: bfloat16 '
                           'only, with native bfloat16)', precision, self.device)
            self.precision = 'float32'
        self.kind = kind
        self.ground_hw = tuple(int(v) for v in ground_hw)
        self.sat_size_px = int(sat_size_px)
        self.camera_model = camera_model
        self.onnx_runner = onnx_runner
        self.backend = 'torch' if onnx_runner is None else 'onnxruntime'
        self.camera_height_m = float(camera_height_m)
        self.yaw_prior_std_rad = math.radians(yaw_prior_std_deg)
        self.recommended_meters_per_px = recommended_meters_per_px
        self.calibration = calibration or HeatmapCalibration()
        self.location_model = location_model.to(self.device).eval()
        self.orientation_model = (None if orientation_model is None
                                  else orientation_model.to(self.device).eval())
        if fold_batchnorm:  # in place: the models are this Localizer's from here on
            for model in (self.location_model, self.orientation_model):
                if model is not None:
                    freeze_batchnorm(model)
        self.orientation_sat_px = orientation_sat_px
        if self.orientation_model is not None and camera_model != 'panorama':
            raise ValueError('the orientation estimator works on panoramas; for pinhole '
                             'cameras give a yaw prior (heading) instead')
        if yaw_search not in YAW_SEARCH_MODES:
            raise YawSearchUnsupported(f'yaw_search must be one of {YAW_SEARCH_MODES}, got '
                                       f'{yaw_search!r}')
        if yaw_search == 'rotation' and (kind != 'correlation' or onnx_runner is not None):
            raise YawSearchUnsupported(
                "yaw_search='rotation' needs a correlation location model on the torch "
                f"backend (got kind {kind!r}, backend {self.backend!r})")
        self.yaw_search = yaw_search
        self.yaw_search_config = yaw_search_config or RotationSearchConfig()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoints(cls, location_checkpoint: str | Path,
                         orientation_checkpoint: str | Path | None = None, *,
                         device: str = 'auto', precision: str = 'float32',
                         backend: str = 'torch', onnx_dir: str | Path | None = None,
                         camera_height_m: float | None = None, **kwargs) -> Localizer:
        """Build from checkpoint directories written by the trainers (never unpickles).
        The models it loads are inference-only: their BatchNorm layers are folded into the
        convolutions before them (fold_batchnorm, default True here).
        backend 'onnxruntime' runs the location model's ONNX export (onnx_dir, written by
        geodistill-export, or exported once into a cache: export.runtime)."""
        from geodistill_core.export.runtime import location_runner
        from geodistill_core.training.models import load_trained_model

        model, model_config, record = load_trained_model(location_checkpoint)
        sizes = record.get('input_sizes') or {}
        if 'ground_hw' not in sizes or 'satellite_hw' not in sizes:
            raise ValueError(f'{location_checkpoint}: checkpoint input_sizes lacks ground_hw / '
                             'satellite_hw; re-save it with a current trainer')
        data_conf = (record.get('training_config') or {}).get('data', {})
        height = camera_height_m or data_conf.get('camera_height_m') or (
            2.0 if model_config.camera_model == 'panorama' else 1.65)
        orientation, orientation_px = None, None
        if orientation_checkpoint:
            orientation, orientation_config, _ = load_trained_model(orientation_checkpoint)
            estimator_conf = orientation_config.estimator or {}
            orientation_px = int(estimator_conf.get('bev_size_px', 512))
        return cls(model, kind=model_config.kind, ground_hw=tuple(sizes['ground_hw']),
                   sat_size_px=int(sizes['satellite_hw'][0]),
                   camera_model=model_config.camera_model, camera_height_m=float(height),
                   orientation_model=orientation, orientation_sat_px=orientation_px,
                   device=device, precision=precision,
                   onnx_runner=location_runner(location_checkpoint, backend,
                                               resolve_device(device), onnx_dir),
                   recommended_meters_per_px=record.get('meters_per_px'),
                   calibration=kwargs.pop('calibration', None) or calibration_from_record(record),
                   fold_batchnorm=kwargs.pop('fold_batchnorm', True), **kwargs)

    @classmethod
    def default(cls, camera_model: str = 'pinhole', **kwargs) -> Localizer:
        """The embedded default model shipped inside the package (geodistill_core/assets)."""
        location = ASSETS_DIR / f'default_{camera_model}_location'
        if camera_model in DEFAULT_YAW_SEARCH:
            mode, search_config = DEFAULT_YAW_SEARCH[camera_model]
            if kwargs.get('backend', 'torch') != 'torch':
                mode = 'none'  # the rotation search runs on the eager model only
            kwargs.setdefault('yaw_search', mode)
            kwargs.setdefault('yaw_search_config', search_config)
        orientation = ASSETS_DIR / f'default_{camera_model}_orientation'
        if not (location / 'config.json').is_file():
            raise FileNotFoundError(
                f'embedded default model {location} is missing; reinstall the package '
                '(`make setup`) or pass checkpoint paths explicitly')
        return cls.from_checkpoints(location, orientation if orientation.is_dir() else None,
                                    **kwargs)

    # ------------------------------------------------------------------ inference
    def _autocast(self):
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    @torch.inference_mode()
    def localize(self, ground_rgb, satellite_rgb, sat_meters_per_px: float, *,
                 yaw_prior_rad, K=None, camera_height_m: float | None = None,
                 use_orientation: bool = True, use_yaw_search: bool = True,
                 yaw_prior_range_deg: float | None = None) -> LocalizationResult:
        """Localize B ground images in their satellite crops.

        ground_rgb: (H, W, 3) uint8 RGB, (B, H, W, 3) uint8 or (B, 3, H, W) float [0, 1].
        satellite_rgb: the same forms, square, north-up, centred on the prior position.
        sat_meters_per_px: ground resolution of satellite_rgb as given.
        yaw_prior_rad: float or (B,) map-frame yaw prior of the panorama centre column or
            the optical axis (a north-aligned panorama: pi / 2).
        K: (3, 3) or (B, 3, 3) intrinsics of ground_rgb as given (pinhole only).
        use_orientation / use_yaw_search: False skips the orientation model / the rotation
            search (yaw_search='rotation') for this call.
        yaw_prior_range_deg: half-width of the rotation search around the prior for this
            call (the prior's own range, capped at 180; 0 = the yaw is known: no search);
            None: the search config's range_deg. Ignored without yaw_search='rotation'.
        """
        ground = _to_batch(ground_rgb, 'ground_rgb').to(self.device)
        satellite = _to_batch(satellite_rgb, 'satellite_rgb').to(self.device)
        B = ground.shape[0]
        if satellite.shape[0] != B or satellite.shape[-1] != satellite.shape[-2]:
            raise ValueError(f'need one square satellite crop per ground image, got ground '
                             f'{tuple(ground.shape)} and satellite {tuple(satellite.shape)}')
        if not sat_meters_per_px > 0:
            raise ValueError(f'sat_meters_per_px must be > 0, got {sat_meters_per_px}')
        yaw = torch.as_tensor(yaw_prior_rad, dtype=torch.float32, device=self.device)
        yaw = yaw.reshape(-1).expand(B).clone()
        if not torch.isfinite(yaw).all():
            raise ValueError(f'yaw_prior_rad must be finite, got {yaw.tolist()}')
        mpp = float(sat_meters_per_px) * satellite.shape[-1] / self.sat_size_px
        ground_K = None
        if self.camera_model == 'pinhole':
            if K is None:
                raise ValueError('pinhole model: pass K, the (3, 3) intrinsics of ground_rgb')
            K_in = torch.as_tensor(np.asarray(K), dtype=torch.float64).reshape(-1, 3, 3)
            ground_K = scale_intrinsics(K_in, tuple(ground.shape[-2:]), self.ground_hw)
            ground_K = ground_K.expand(B, 3, 3).to(self.device, torch.float32)
        ground = _resize(ground, self.ground_hw)
        yaw_std = torch.full((B,), self.yaw_prior_std_rad, device=self.device)
        yaw_source = 'prior'
        if self.orientation_model is not None and use_orientation:
            sat_o = _resize(satellite, (self.orientation_sat_px,) * 2)
            with self._autocast():
                out = self.orientation_model(sat_o, ground, yaw)
            yaw, yaw_std = out.yaw_rad.float(), out.std_rad.float()
            yaw_source = 'orientation_model'
        sat = _resize(satellite, (self.sat_size_px, self.sat_size_px))
        height = self.camera_height_m if camera_height_m is None else float(camera_height_m)
        found = None
        search_range = self.yaw_search_config.range_deg
        if yaw_prior_range_deg is not None:
            if not math.isfinite(yaw_prior_range_deg) or yaw_prior_range_deg < 0:
                raise ValueError(f'yaw_prior_range_deg must be finite and >= 0, got '
                                 f'{yaw_prior_range_deg}')
            search_range = min(float(yaw_prior_range_deg), 180.0)
        if self.yaw_search == 'rotation' and use_yaw_search and search_range > 0:
            found, scores = self._rotation_search(ground, sat, mpp, height, yaw, ground_K,
                                                  search_range)
            yaw, yaw_std = found.yaw_rad.float(), found.yaw_var_rad2.sqrt().float()
            yaw_source = 'rotation_search'
        else:
            with self._autocast():
                scores = (self.onnx_runner or self.location_model)(
                    ground, sat, sat_meters_per_px=mpp, camera_height_m=height,
                    ground_yaw_rad=yaw, ground_K=ground_K)
        finest = scores.scores[-1].float()
        cell_m = float(scores.cell_m[-1])
        tau = SCORE_TAU[self.kind]
        pose = heatmap_to_pose(finest, cell_m, tau=tau, calibration=self.calibration)
        n_cells = finest.shape[-1] * finest.shape[-2]
        return LocalizationResult(
            yaw_rad=yaw.float().cpu(), yaw_std_rad=yaw_std.float().cpu(),
            offset_en_m=pose.offset_en_m.float().cpu(),
            covariance_en_m2=pose.covariance_en_m2.float().cpu(),
            confidence=pose.confidence.float().cpu(), heatmap_prob=pose.prob.float().cpu(),
            heatmap_cell_m=cell_m,
            heatmap_log_prob_base=sharpened_log_softmax(finest, tau).float().cpu(),
            heatmap_floor_prob=self.calibration.outlier_weight / n_cells,
            yaw_source=yaw_source, yaw_search_result=found)

    def _rotation_search(self, ground, sat, mpp, height, yaw, ground_K, range_deg: float):
        """Rotation search over yaw (B,) +- range_deg -> (YawSearchResult, LocationScores at
        its yaw)."""
        from geodistill_core.models.correlation.yaw_scorer import CorrelationYawScorer
        conf = self.yaw_search_config
        if range_deg != conf.range_deg:
            conf = replace(conf, range_deg=range_deg,
                           coarse_step_deg=min(conf.coarse_step_deg, range_deg),
                           fine_step_deg=min(conf.fine_step_deg, range_deg))
        tau = SCORE_TAU[self.kind] * self.calibration.temperature
        with self._autocast():
            scorer = CorrelationYawScorer(
                self.location_model, ground, sat, sat_meters_per_px=mpp, camera_height_m=height,
                ground_K=ground_K, reduce=conf.reduce, levels=conf.levels, tau=tau,
                chunk=conf.chunk)
            found = search_yaw(scorer, yaw, conf)
            scores = scorer.location_scores(found.yaw_rad.float())
        found = YawSearchResult(*(getattr(found, f.name).cpu() for f in fields(found)))
        return found, scores

    def warmup(self) -> None:
        """One dummy inference (allocations, cuDNN autotuning) before the first real one."""
        H, W = self.ground_hw
        ground = torch.rand(1, 3, H, W)
        sat = torch.rand(1, 3, self.sat_size_px, self.sat_size_px)
        K = None
        if self.camera_model == 'pinhole':
            K = np.array([[W * 0.6, 0.0, (W - 1) / 2], [0.0, W * 0.6, (H - 1) / 2], [0, 0, 1.0]])
        self.localize(ground, sat, 0.2, yaw_prior_rad=math.pi / 2, K=K)
