"""Distance-aware batch sampler for the weakly supervised triplet loss (method.md section 3).

The weak loss treats every other pair in a batch as a negative, so a batch must never hold
two samples that share a satellite tile, or whose approximate positions are closer than
``min_distance_m``. Positions are what a weakly supervised pipeline may know: the satellite
tile centre (VIGOR) or the noisy GNSS crop centre (KITTI), never the true camera position.
Each reader provides them through ``sampling_layout()``.

Batches of an epoch are built once, identically on every replica, by a seeded greedy
first-fit: samples are visited in a random order (``SeedSequence([seed, epoch])``) and put
in the oldest open batch they do not conflict with (a new batch when none fits); a batch is
complete when full. What is left at the end forms smaller batches (dropped with
``drop_last``), so without ``drop_last`` every sample is used exactly once per epoch. The
batch order is then shuffled and, like ``DistributedSampler``, the list is padded by
repeating its first batches (or trimmed with ``drop_last``) to a multiple of
``num_replicas``; rank r takes batches r, r + R, r + 2R, ...
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
import itertools
import math

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class SamplingLayout:
    """What the batch sampler needs to know about each of N samples.

    positions_m: (N, D) approximate positions in any Cartesian frame in metres (e.g. local
        ENU), never the true camera position.
    tile_keys: N collections of hashable satellite-tile identifiers; two samples whose
        collections intersect never share a batch.
    """

    positions_m: np.ndarray
    tile_keys: tuple[frozenset, ...]

    def __post_init__(self) -> None:
        positions = np.asarray(self.positions_m, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] < 1:
            raise ValueError(f'positions_m must be (N, D), got {positions.shape}')
        if not np.all(np.isfinite(positions)):
            raise ValueError('positions_m holds non-finite values')
        if len(self.tile_keys) != positions.shape[0]:
            raise ValueError(f'{len(self.tile_keys)} tile key sets for '
                             f'{positions.shape[0]} positions')
        object.__setattr__(self, 'positions_m', positions)
        object.__setattr__(self, 'tile_keys', tuple(frozenset(k) for k in self.tile_keys))

    def __len__(self) -> int:
        return self.positions_m.shape[0]


class _OpenBatch:
    """A batch being filled: its members and the union of their tile keys."""

    def __init__(self) -> None:
        self.members: list[int] = []
        self.keys: set = set()

    def accepts(self, i: int, positions: np.ndarray, keys: tuple[frozenset, ...],
                min_dist2: float) -> bool:
        if not self.keys.isdisjoint(keys[i]):
            return False
        if min_dist2 == 0.0:
            return True
        dist2 = ((positions[self.members] - positions[i]) ** 2).sum(-1)
        return bool(dist2.min() >= min_dist2)

    def add(self, i: int, keys: frozenset) -> None:
        self.members.append(i)
        self.keys.update(keys)


class DistanceAwareBatchSampler(Sampler[list[int]]):
    """Batches with no two samples sharing a tile or closer than ``min_distance_m``.

    Use as ``DataLoader(dataset, batch_sampler=DistanceAwareBatchSampler(...))`` and call
    ``set_epoch(epoch)`` before each epoch. Deterministic in (seed, epoch); every replica
    builds the same global list and takes a disjoint, equally long share of it.

    layout: the dataset's ``sampling_layout()``.
    batch_size: samples per full batch (>= 1).
    min_distance_m: minimum distance between two samples of one batch (metres, >= 0).
    num_replicas, rank: distributed share; default from ``torch.distributed`` when it is
        initialised, else 1 and 0.
    drop_last: drop incomplete batches and trim the list to a multiple of
        ``num_replicas`` instead of padding it with repeated batches.
    max_open_batches: bound on the batches being filled at once; in a layout so dense that
        more would be needed, the oldest is closed incomplete (keeps the cost linear).
    """

    def __init__(self, layout: SamplingLayout, batch_size: int, *,
                 min_distance_m: float = 60.0, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None,
                 drop_last: bool = False, max_open_batches: int = 256) -> None:
        if batch_size < 1 or max_open_batches < 1:
            raise ValueError(f'batch_size and max_open_batches must be >= 1, got '
                             f'{batch_size} and {max_open_batches}')
        if not min_distance_m >= 0:
            raise ValueError(f'min_distance_m must be >= 0, got {min_distance_m}')
        if num_replicas is None:
            num_replicas = dist.get_world_size() if dist.is_initialized() else 1
        if rank is None:
            rank = dist.get_rank() if dist.is_initialized() else 0
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f'need num_replicas >= 1 and 0 <= rank < num_replicas, got '
                             f'num_replicas={num_replicas}, rank={rank}')
        if len(layout) == 0:
            raise ValueError('cannot sample from an empty dataset')
        self.layout = layout
        self.batch_size = int(batch_size)
        self.min_distance_m = float(min_distance_m)
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self.max_open_batches = int(max_open_batches)
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next ``__iter__`` yields."""
        self.epoch = int(epoch)

    def global_batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` (every replica's), before padding or sharding."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch)]))
        positions, keys = self.layout.positions_m, self.layout.tile_keys
        min_dist2 = self.min_distance_m ** 2
        open_batches: list[_OpenBatch] = []
        done: list[list[int]] = []
        for i in rng.permutation(len(self.layout)).tolist():
            target = next((b for b in open_batches if b.accepts(i, positions, keys, min_dist2)),
                          None)
            if target is None:
                if len(open_batches) == self.max_open_batches:
                    done.append(open_batches.pop(0).members)  # incomplete: dense layout
                target = _OpenBatch()
                open_batches.append(target)
            target.add(i, keys[i])
            if len(target.members) == self.batch_size:
                done.append(target.members)
                open_batches.remove(target)
        done += [b.members for b in open_batches]
        if self.drop_last:
            done = [b for b in done if len(b) == self.batch_size]
        return [done[k] for k in rng.permutation(len(done)).tolist()]

    def _replica_batches(self) -> list[list[int]]:
        if self._cache is None or self._cache[0] != self.epoch:
            self._cache = (self.epoch, self.global_batches(self.epoch))
        batches = self._cache[1]
        replicas = self.num_replicas
        if self.drop_last:
            batches = batches[:len(batches) // replicas * replicas]
        elif len(batches) % replicas:
            total = math.ceil(len(batches) / replicas) * replicas
            batches = [batches[k % len(batches)] for k in range(total)]
        return batches[self.rank::replicas]

    def __iter__(self) -> Iterator[list[int]]:
        return iter([list(b) for b in self._replica_batches()])

    def __len__(self) -> int:
        return len(self._replica_batches())


def batch_conflicts(batch: Sequence[int], layout: SamplingLayout,
                    min_distance_m: float) -> list[tuple[int, int]]:
    """Pairs (i, j) of a batch that share a tile key or lie closer than ``min_distance_m``.

    A brute-force check, independent of the sampler's hash grid (for tests and audits).
    """
    bad = []
    for a, b in itertools.combinations(batch, 2):
        close = np.linalg.norm(layout.positions_m[a] - layout.positions_m[b]) < min_distance_m
        if close or layout.tile_keys[a] & layout.tile_keys[b]:
            bad.append((a, b))
    return bad
