"""Tests for the distance-aware, distributed batch sampler."""
import itertools
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from geodistill_core.data.samplers import (
    DistanceAwareBatchSampler,
    SamplingLayout,
    batch_conflicts,
)

MIN_DISTANCE_M = 60.0


def random_layout(n=300, side_m=1500.0, seed=0, dims=2):
    """Random positions; each sample also keys the 40 m tile it lies in, like VIGOR tiles."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0.0, side_m, (n, dims))
    keys = [frozenset({tuple(np.floor(p[:2] / 40.0).astype(int))}) for p in pos]
    return SamplingLayout(pos, tuple(keys))


def test_no_conflicting_pair_in_any_batch_over_epochs():
    layout = random_layout()
    sampler = DistanceAwareBatchSampler(layout, batch_size=8, min_distance_m=MIN_DISTANCE_M)
    for epoch in range(4):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert batches, 'no batch produced'
        for batch in batches:
            assert batch_conflicts(batch, layout, MIN_DISTANCE_M) == []
        # Every sample exactly once per epoch, nearly all in full batches.
        assert sorted(itertools.chain(*batches)) == list(range(len(layout)))
        assert sum(len(b) == 8 for b in batches) >= len(layout) // 8 - 3


def test_shared_tile_key_separates_distant_samples():
    # Far apart but sharing a tile (e.g. the same semi-positive): never together.
    pos = np.array([[0.0, 0.0], [1000.0, 0.0], [2000.0, 0.0], [3000.0, 0.0]])
    keys = (frozenset({'a'}), frozenset({'a', 'b'}), frozenset({'c'}), frozenset({'b'}))
    layout = SamplingLayout(pos, keys)
    for epoch in range(10):
        sampler = DistanceAwareBatchSampler(layout, batch_size=4, min_distance_m=MIN_DISTANCE_M)
        sampler.set_epoch(epoch)
        for batch in sampler:
            assert not ({0, 1} <= set(batch) or {1, 3} <= set(batch))
    # Counter-example: the brute-force checker does flag such a pair.
    assert batch_conflicts([0, 1, 2], layout, MIN_DISTANCE_M) == [(0, 1)]


def test_close_samples_never_share_a_batch():
    # Pairs 59 m apart must be split, pairs 61 m apart may share a batch.
    pos = np.array([[0.0, 0.0], [59.0, 0.0], [1000.0, 0.0], [1061.0, 0.0]])
    layout = SamplingLayout(pos, tuple(frozenset() for _ in range(4)))
    together_far = False
    for epoch in range(20):
        sampler = DistanceAwareBatchSampler(layout, batch_size=4, min_distance_m=MIN_DISTANCE_M)
        sampler.set_epoch(epoch)
        for batch in sampler:
            assert not {0, 1} <= set(batch)
            together_far |= {2, 3} <= set(batch)
    assert together_far


def test_dense_layout_gives_singletons():
    pos = np.random.default_rng(1).uniform(0.0, 10.0, (20, 2))
    layout = SamplingLayout(pos, tuple(frozenset() for _ in range(20)))
    batches = list(DistanceAwareBatchSampler(layout, batch_size=4))
    assert sorted(map(len, batches)) == [1] * 20
    assert list(DistanceAwareBatchSampler(layout, batch_size=4, drop_last=True)) == []


def test_deterministic_per_seed_and_epoch():
    layout = random_layout(n=120, dims=3)
    a = DistanceAwareBatchSampler(layout, 6, seed=3)
    b = DistanceAwareBatchSampler(layout, 6, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    first = list(a)
    assert sorted(i for batch in first for i in batch) == list(range(120))  # a partition
    np.random.seed(99)  # global generators must not matter
    torch.manual_seed(99)
    random.seed(99)
    assert list(b) == first
    again = list(a)  # iterating again gives the same epoch, not the next draw
    assert again == first
    b.set_epoch(3)
    assert list(a) != list(b)
    assert list(DistanceAwareBatchSampler(layout, 6, seed=4)) != list(
        DistanceAwareBatchSampler(layout, 6, seed=3))


@pytest.mark.parametrize('drop_last', [False, True])
def test_distributed_shards(drop_last):
    layout = random_layout(n=203, seed=5)
    shards = []
    for rank in range(2):
        sampler = DistanceAwareBatchSampler(layout, 8, num_replicas=2, rank=rank, seed=7,
                                            drop_last=drop_last)
        sampler.set_epoch(1)
        shards.append(list(sampler))
        assert len(sampler) == len(shards[-1])
    assert len(shards[0]) == len(shards[1])
    flat = [set(itertools.chain(*s)) for s in shards]
    full = DistanceAwareBatchSampler(layout, 8, num_replicas=1, rank=0, seed=7,
                                     drop_last=drop_last)
    n_global = len(full.global_batches(1))
    if drop_last:
        assert flat[0].isdisjoint(flat[1])
        assert all(len(b) == 8 for s in shards for b in s)
        assert len(shards[0]) == n_global // 2
    else:
        assert flat[0] | flat[1] == set(range(len(layout)))  # every sample used
        assert len(shards[0]) == -(-n_global // 2)
        if n_global % 2 == 0:
            assert flat[0].isdisjoint(flat[1])
    for shard in shards:
        for batch in shard:
            assert batch_conflicts(batch, layout, MIN_DISTANCE_M) == []


def test_odd_batch_count_pads_with_a_repeat():
    pos = np.arange(5, dtype=float)[:, None] * 100.0
    layout = SamplingLayout(pos, tuple(frozenset() for _ in range(5)))
    shards = [list(DistanceAwareBatchSampler(layout, 1, num_replicas=2, rank=r))
              for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3
    used = sorted(itertools.chain(*shards[0], *shards[1]))
    assert set(used) == set(range(5)) and len(used) == 6


def test_dataloader_integration():
    layout = random_layout(n=40, seed=2)
    data = TensorDataset(torch.arange(40))
    sampler = DistanceAwareBatchSampler(layout, 4)
    loader = DataLoader(data, batch_sampler=sampler)
    seen = [batch[0].tolist() for batch in loader]
    assert seen == list(sampler)
    assert len(loader) == len(sampler)


def test_errors():
    layout = random_layout(n=10)
    with pytest.raises(ValueError, match='batch_size'):
        DistanceAwareBatchSampler(layout, 0)
    with pytest.raises(ValueError, match='rank'):
        DistanceAwareBatchSampler(layout, 2, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match=r'positions_m must be \(N, D\)'):
        SamplingLayout(np.zeros(3), (frozenset(),) * 3)
    with pytest.raises(ValueError, match='2 tile key sets for 3 positions'):
        SamplingLayout(np.zeros((3, 2)), (frozenset(),) * 2)
