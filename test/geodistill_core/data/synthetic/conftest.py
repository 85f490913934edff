"""Small worlds shared by the synthetic-data tests (generated once per session)."""
import pytest

from geodistill_core.data.synthetic import WorldConfig, generate_world

SMALL_SIZE_M = 120.0
SMALL_CELL_M = 0.2


@pytest.fixture(scope='session')
def small_world_factory():
    """generate_world for a 120 m world at 0.2 m cells, memoised by (style, seed)."""
    cache = {}

    def make(style='grid_downtown', seed=0, **kwargs):
        key = (style, seed, tuple(sorted(kwargs.items())))
        if key not in cache:
            config = WorldConfig(style=style, size_m=SMALL_SIZE_M, cell_m=SMALL_CELL_M,
                                 **kwargs)
            cache[key] = generate_world(config, seed)
        return cache[key]

    return make


@pytest.fixture(scope='session')
def downtown(small_world_factory):
    return small_world_factory('grid_downtown', 0)
