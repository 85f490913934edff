"""Run localizers over a split: per-item predictions, truth, yaw noise, timing, heatmaps.

Any object with `localize(ground (B, 3, H, W), satellite (B, 3, S, S), sat_meters_per_px,
*, yaw_prior_rad (B,), K (B, 3, 3) | None, camera_height_m) -> LocalizationResult` works
(the Localizer; tests pass fakes); `orientation_model` not None means its yaw is an
estimate. Several localizers (evaluated, compare) see the same batches, so they are
compared on identical items and identical noise. Batches are split into groups of equal
satellite resolution and camera height (VIGOR mixes cities), one localize call per group.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import logging
import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate
from tqdm import tqdm

logger = logging.getLogger(__name__)
ITEM_ID_KEYS = ('name', 'pano_name')


@dataclass
class ModelPredictions:
    """One localizer over the split (N rows, numpy).

    offset_en_m (N, 2) float64: predicted camera minus crop centre, east/north metres.
    yaw_rad (N,): the yaw it localized with (the prior, or the orientation estimate).
    confidence (N,); time_ms (N,): localize time amortised over the item's batch group.
    heatmaps: {row: (prob (h, w) float32, cell_m)} for the requested rows.
    uses_orientation: whether yaw_rad comes from an orientation estimator.
    covariance_en_m2: (N, 2, 2) the (calibrated) heatmap covariance, None when the
        localizer reports none.
    """

    offset_en_m: np.ndarray
    yaw_rad: np.ndarray
    confidence: np.ndarray
    time_ms: np.ndarray
    uses_orientation: bool
    heatmaps: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)
    covariance_en_m2: np.ndarray | None = None  # (N, 2, 2) of offset_en_m, when reported


@dataclass
class SplitPredictions:
    """The split's truth and every localizer's predictions (N rows, row order = loader order).

    index (N,) int64: the reader's item index; item_id: its name ('' when it has none).
    true_offset_en_m (N, 2); yaw_rad (N,) true; yaw_prior_rad (N,) given to the
    localizers; yaw_noise_rad (N,) = prior - true, as the reader drew it.
    satellites: {row: (rgb (S, S, 3) float32 in [0, 1], sat_meters_per_px)}.
    wall_s: the whole loop; data_wait_s: time spent waiting for the loader.
    """

    index: np.ndarray
    item_id: list[str]
    true_offset_en_m: np.ndarray
    yaw_rad: np.ndarray
    yaw_prior_rad: np.ndarray
    yaw_noise_rad: np.ndarray
    models: dict[str, ModelPredictions]
    satellites: dict[int, tuple[np.ndarray, float]]
    wall_s: float
    data_wait_s: float

    def __len__(self) -> int:
        return int(self.index.shape[0])


def heatmap_rows(num_items: int, count: int) -> list[int]:
    """`count` rows evenly spaced over num_items (first and last included)."""
    if num_items == 0 or count == 0:
        return []
    return sorted({int(r) for r in np.linspace(0, num_items - 1, count).round()})


def _groups(meters_per_px: torch.Tensor, height_m: torch.Tensor) -> list[torch.Tensor]:
    """Row indices of the batch grouped by equal (metres/pixel, camera height)."""
    keys = torch.stack([meters_per_px.double().reshape(-1), height_m.double().reshape(-1)], 1)
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    return [torch.nonzero(inverse == g).reshape(-1) for g in range(int(inverse.max()) + 1)]


def _check_result(result, n: int, name: str) -> None:
    if tuple(result.offset_en_m.shape) != (n, 2) or tuple(result.yaw_rad.shape) != (n,):
        raise ValueError(f'localizer {name!r} returned offset_en_m '
                         f'{tuple(result.offset_en_m.shape)} and yaw_rad '
                         f'{tuple(result.yaw_rad.shape)} for a group of {n}; expected '
                         f'({n}, 2) and ({n},)')


class _Collector:
    """Accumulates one localizer's per-batch outputs."""

    def __init__(self, uses_orientation: bool) -> None:
        self.uses_orientation = uses_orientation
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                                    ('offset', 'yaw', 'conf', 'time',
                                                     'cov')}
        self.heatmaps: dict[int, tuple[np.ndarray, float]] = {}

    def result(self) -> ModelPredictions:
        cat = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in self.parts.items()}
        offset = cat['offset'].reshape(-1, 2)
        cov = cat['cov'].reshape(-1, 2, 2)
        return ModelPredictions(offset, cat['yaw'], cat['conf'], cat['time'],
                                self.uses_orientation, self.heatmaps,
                                cov if np.isfinite(cov).all() and len(cov) else None)


def _searches_yaw(localizer, yaw_prior_range_deg: float | None) -> bool:
    """Whether `localizer` runs its rotation search at this prior range."""
    if getattr(localizer, 'yaw_search', 'none') != 'rotation':
        return False
    return yaw_prior_range_deg is None or yaw_prior_range_deg > 0


def _run_batch(localizer, name: str, batch: dict[str, Any], first_row: int,
               rows_wanted: set[int], collector: _Collector,
               yaw_prior_range_deg: float | None = None) -> None:
    B = int(batch['ground'].shape[0])
    offset = np.full((B, 2), np.nan)
    yaw, conf, time_ms = np.full(B, np.nan), np.full(B, np.nan), np.zeros(B)
    cov = np.full((B, 2, 2), np.nan)
    search = ({'yaw_prior_range_deg': yaw_prior_range_deg}
              if getattr(localizer, 'yaw_search', 'none') == 'rotation' else {})
    for idx in _groups(batch['sat_meters_per_px'], batch['camera_height_m']):
        K = batch['K'][idx] if 'K' in batch else None
        start = time.perf_counter()
        result = localizer.localize(
            batch['ground'][idx], batch['satellite'][idx],
            float(batch['sat_meters_per_px'][idx[0]]), yaw_prior_rad=batch['yaw_prior_rad'][idx],
            K=K, camera_height_m=float(batch['camera_height_m'][idx[0]]), **search)
        elapsed_ms = 1e3 * (time.perf_counter() - start)
        _check_result(result, len(idx), name)
        rows = idx.numpy()
        offset[rows] = result.offset_en_m.double().cpu().numpy()
        yaw[rows] = result.yaw_rad.double().cpu().numpy()
        conf[rows] = result.confidence.double().cpu().numpy()
        if getattr(result, 'covariance_en_m2', None) is not None:
            cov[rows] = result.covariance_en_m2.double().cpu().numpy()
        time_ms[rows] = elapsed_ms / len(idx)
        for j, row in enumerate(rows):
            if first_row + row in rows_wanted:
                collector.heatmaps[first_row + int(row)] = (
                    result.heatmap_prob[j].float().cpu().numpy(), float(result.heatmap_cell_m))
    for key, value in (('offset', offset), ('yaw', yaw), ('conf', conf), ('time', time_ms),
                       ('cov', cov)):
        collector.parts[key].append(value)


def _item_ids(batch: dict[str, Any], B: int) -> list[str]:
    for key in ITEM_ID_KEYS:
        if key in batch:
            return [str(v) for v in batch[key]]
    return [''] * B


def predict_split(localizers: Mapping[str, Any], dataset: Dataset, *, batch_size: int = 8,
                  num_workers: int = 0, heatmap_rows: Iterable[int] = (),
                  progress: bool = True,
                  yaw_prior_range_deg: float | None = None) -> SplitPredictions:
    """Run every localizer over `dataset` in order (no shuffling) and collect the rows.
    yaw_prior_range_deg: the rotation search's half-width for localizers that search
    (yaw_search='rotation'; None: their config's); their yaw is then evaluated."""
    if not localizers:
        raise ValueError('predict_split needs at least one localizer')
    wanted = set(heatmap_rows)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=default_collate)
    collectors = {name: _Collector(getattr(loc, 'orientation_model', None) is not None
                                   or _searches_yaw(loc, yaw_prior_range_deg))
                  for name, loc in localizers.items()}
    truth: dict[str, list[np.ndarray]] = {k: [] for k in ('index', 'offset', 'yaw', 'prior',
                                                          'noise')}
    ids: list[str] = []
    satellites: dict[int, tuple[np.ndarray, float]] = {}
    start = time.perf_counter()
    data_wait = 0.0
    row = 0
    iterator = iter(tqdm(loader, desc='evaluate', unit='batch', disable=not progress))
    while True:
        t0 = time.perf_counter()
        batch = next(iterator, None)
        data_wait += time.perf_counter() - t0
        if batch is None:
            break
        B = int(batch['ground'].shape[0])
        index = batch.get('index', torch.arange(row, row + B))
        truth['index'].append(index.reshape(-1).long().numpy())
        truth['offset'].append(batch['eval_true_offset_en_m'].double().numpy())
        for key, name in (('yaw', 'yaw_rad'), ('prior', 'yaw_prior_rad'),
                          ('noise', 'yaw_noise_rad')):
            truth[key].append(batch[name].double().reshape(-1).numpy())
        ids.extend(_item_ids(batch, B))
        for j in range(B):
            if row + j in wanted:
                satellites[row + j] = (batch['satellite'][j].permute(1, 2, 0).float().numpy(),
                                       float(batch['sat_meters_per_px'][j]))
        for name, localizer in localizers.items():
            _run_batch(localizer, name, batch, row, wanted, collectors[name],
                       yaw_prior_range_deg)
        row += B
    wall = time.perf_counter() - start
    if row == 0:
        raise ValueError('the split has no items: nothing to evaluate')
    cat = {k: np.concatenate(v) for k, v in truth.items()}
    return SplitPredictions(
        index=cat['index'], item_id=ids, true_offset_en_m=cat['offset'].reshape(-1, 2),
        yaw_rad=cat['yaw'], yaw_prior_rad=cat['prior'], yaw_noise_rad=cat['noise'],
        models={name: c.result() for name, c in collectors.items()}, satellites=satellites,
        wall_s=wall, data_wait_s=data_wait)
