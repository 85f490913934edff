"""The VIGOR builder reads a synthetic export's protocol from its synthetic_vigor.json."""
import json

from geodistill_core.training import DataConfig
from geodistill_core.training.data import synthetic_vigor_protocol

META = {'cross_area': {'train': ['SynthA', 'SynthB'], 'test': ['SynthC']},
        'same_area': ['SynthA', 'SynthB', 'SynthC'],
        'meters_per_px_640': {'SynthA': 0.11, 'SynthB': 0.105, 'SynthC': 0.108}}


def _root(tmp_path):
    (tmp_path / 'synthetic_vigor.json').write_text(json.dumps(META))
    return tmp_path


def test_cross_area_trains_on_train_cities_and_tests_on_the_others(tmp_path):
    root = _root(tmp_path)
    config = DataConfig(area='cross')
    for split in ('train', 'val'):
        cities, mpp = synthetic_vigor_protocol(config, split, root)
        assert cities == ('SynthA', 'SynthB')
        assert mpp == META['meters_per_px_640']
    assert synthetic_vigor_protocol(config, 'test', root)[0] == ('SynthC',)


def test_same_area_uses_every_city_and_explicit_values_win(tmp_path):
    root = _root(tmp_path)
    assert synthetic_vigor_protocol(DataConfig(area='same'), 'train', root)[0] == (
        'SynthA', 'SynthB', 'SynthC')
    config = DataConfig(area='same', cities=('SynthB',), meters_per_px_640={'SynthB': 0.2})
    cities, mpp = synthetic_vigor_protocol(config, 'test', root)
    assert cities == ('SynthB',) and mpp['SynthB'] == 0.2 and mpp['SynthA'] == 0.11


def test_official_layout_keeps_the_config(tmp_path):
    config = DataConfig(area='cross')
    assert synthetic_vigor_protocol(config, 'test', tmp_path) == (None, None)
