"""Datasets and per-epoch loaders for training: readers by name, batches by the sampler.

`register_dataset(name, builder)` with builder(DataConfig, split, root) -> Dataset; built
in: 'vigor', 'kitti' (official layouts, geodistill_core.data) and 'flat_world' (procedural,
no files). Training batches come from the distance-aware sampler (no two samples of a
batch share a tile or lie closer than min_distance_m), made distributed-aware by rank and
world size; a reader without `sampling_layout()` gets a seeded shuffled split instead.

Training loaders strip the evaluation label `eval_true_offset_en_m` from every item
(`strip_labels=True`), so the weakly supervised objectives cannot read it even by mistake.
"""
from __future__ import annotations

from collections.abc import Callable
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset, default_collate

from geodistill_core.data.samplers import DistanceAwareBatchSampler
from geodistill_core.training.adapter import POSITION_LABEL_KEY
from geodistill_core.training.config import DataConfig
from geodistill_core.training.distributed import DistributedContext

DatasetBuilder = Callable[[DataConfig, str, 'Path | None'], Dataset]
_DATASETS: dict[str, DatasetBuilder] = {}


def register_dataset(name: str, builder: DatasetBuilder) -> None:
    """Register builder(DataConfig, split, root) -> Dataset under `name`."""
    if _DATASETS.get(name, builder) is not builder:
        raise ValueError(f'dataset {name!r} is already registered to {_DATASETS[name]!r}')
    _DATASETS[name] = builder


def build_dataset(config: DataConfig, split: str, root: str | Path | None) -> Dataset:
    """The reader `config.dataset` for `split` under `root`."""
    if config.dataset not in _DATASETS:
        raise ValueError(f'unknown dataset {config.dataset!r}; registered: {sorted(_DATASETS)}')
    return _DATASETS[config.dataset](config, split, None if root is None else Path(root))


def _need_root(root: Path | None, name: str) -> Path:
    if root is None:
        raise ValueError(f'the {name} dataset needs its root folder: pass --data-root')
    return root


def _vigor(config: DataConfig, split: str, root: Path | None) -> Dataset:
    from geodistill_core.data.vigor import VigorDataset
    from geodistill_core.data.vigor_labels import VIGOR_METERS_PER_PX_640
    root = _need_root(root, 'VIGOR')
    cities, meters_per_px = synthetic_vigor_protocol(config, split, root)
    extra = {}
    if meters_per_px:
        extra['meters_per_px_640'] = {**VIGOR_METERS_PER_PX_640, **meters_per_px}
    return VigorDataset(root, cities=cities, split=split,
                        area=config.area, pano_size=config.ground_hw, sat_size=config.sat_size,
                        yaw_noise_deg=config.yaw_noise_deg, seed=config.seed,
                        val_fraction=config.val_fraction, **extra,
                        **(config.reader_options or {}))


def synthetic_vigor_protocol(config: DataConfig, split: str, root: Path
                             ) -> tuple[tuple[str, ...] | None, dict[str, float] | None]:
    """(cities, meters_per_px_640) for a VIGOR-layout root: the config's own values, filled
    from ``<root>/synthetic_vigor.json`` when the root is a synthetic export.

    A synthetic export names its cities' resolutions and its protocols: cross-area trains
    (and validates) on ``cross_area.train`` and tests on ``cross_area.test``; same-area
    uses every city. Explicit ``config.cities`` / ``meters_per_px_640`` win.
    """
    from geodistill_core.data.synthetic.export_vigor import VIGOR_META_FILE
    meta_path = root / VIGOR_META_FILE
    if not meta_path.is_file():
        return config.cities, config.meters_per_px_640
    meta = json.loads(meta_path.read_text())
    meters_per_px = {**meta['meters_per_px_640'], **(config.meters_per_px_640 or {})}
    cities = config.cities
    if cities is None:
        if config.area == 'cross':
            part = 'test' if split.lower().startswith('test') else 'train'
            cities = tuple(meta['cross_area'][part])
        else:
            cities = tuple(meta['same_area'])
    return cities, meters_per_px


def _kitti(config: DataConfig, split: str, root: Path | None) -> Dataset:
    from geodistill_core.data.kitti import KittiDataset
    return KittiDataset(_need_root(root, 'KITTI'), split=split, ground_size=config.ground_hw,
                        sat_size=config.sat_size, seed=config.seed,
                        val_fraction=config.val_fraction, **(config.reader_options or {}))


def _flat_world(config: DataConfig, split: str, root: Path | None) -> Dataset:
    from geodistill_core.training.flat_world import FlatWorldDataset
    return FlatWorldDataset(split, ground_hw=config.ground_hw, sat_size=config.sat_size,
                            yaw_noise_deg=config.yaw_noise_deg, seed=config.seed)


register_dataset('vigor', _vigor)
register_dataset('kitti', _kitti)
register_dataset('flat_world', _flat_world)


class ShuffledBatchSampler:
    """Seeded shuffled batches for readers without a sampling layout (no distance rule).

    Same interface as DistanceAwareBatchSampler: set_epoch, global_batches, iteration over
    this rank's share (batches r, r + R, ...; trimmed to a multiple of the world size).
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, num_replicas: int,
                 rank: int, drop_last: bool = True) -> None:
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch)]))
        order = rng.permutation(self.n_items).tolist()
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self):
        batches = self.global_batches(self.epoch)
        usable = len(batches) // self.num_replicas * self.num_replicas
        if not self.drop_last and usable < len(batches):
            total = math.ceil(len(batches) / self.num_replicas) * self.num_replicas
            batches = [batches[k % len(batches)] for k in range(total)]
            usable = total
        return iter(batches[:usable][self.rank::self.num_replicas])

    def __len__(self) -> int:
        return len(list(iter(self)))


def make_batch_sampler(dataset: Dataset, config: DataConfig, context: DistributedContext,
                       seed: int, drop_last: bool, distance_aware: bool = True):
    """This rank's batch sampler over `dataset` (call set_epoch before each epoch)."""
    if distance_aware and hasattr(dataset, 'sampling_layout'):
        return DistanceAwareBatchSampler(dataset.sampling_layout(), config.batch_size,
                                         min_distance_m=config.min_distance_m, seed=seed,
                                         num_replicas=context.world_size, rank=context.rank,
                                         drop_last=drop_last)
    return ShuffledBatchSampler(len(dataset), config.batch_size, seed, context.world_size,
                                context.rank, drop_last)


def collate_items(items: list[dict[str, Any]], strip_labels: bool) -> dict[str, Any]:
    """default_collate of reader items; strip_labels drops the evaluation position label."""
    if strip_labels:
        items = [{k: v for k, v in item.items() if k != POSITION_LABEL_KEY} for item in items]
    return default_collate(items)


def _collate_stripped(items):
    return collate_items(items, strip_labels=True)


def _collate_labelled(items):
    return collate_items(items, strip_labels=False)


def epoch_loader(dataset: Dataset, sampler, epoch: int, num_workers: int, strip_labels: bool,
                 skip_batches: int = 0, max_batches: int | None = None,
                 pin_memory: bool = False) -> DataLoader:
    """DataLoader over this rank's batches of `epoch`, skipping the first `skip_batches`
    (resume) and keeping at most `max_batches` (steps per epoch) of them."""
    sampler.set_epoch(epoch)
    if hasattr(dataset, 'set_epoch'):
        dataset.set_epoch(epoch)
    batches = [list(b) for b in sampler]
    if max_batches is not None:
        batches = batches[:max_batches]
    return DataLoader(dataset, batch_sampler=batches[skip_batches:], num_workers=num_workers,
                      collate_fn=_collate_stripped if strip_labels else _collate_labelled,
                      pin_memory=pin_memory)


def batches_per_epoch(sampler, epoch: int, max_batches: int | None) -> int:
    """Number of this rank's batches in `epoch` (after the steps-per-epoch cap)."""
    sampler.set_epoch(epoch)
    n = len(sampler)
    return n if max_batches is None else min(n, max_batches)
