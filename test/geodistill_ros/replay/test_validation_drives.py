"""validation_drives: (bag, map) pairs from a make_synthetic folder, clear errors otherwise."""
import json

import pytest

from geodistill_ros.replay.validation_drives import validation_drives


def _root(tmp_path, bags=('2024_06_03', '2024_06_04')):
    kitti = tmp_path / 'kitti'
    kitti.mkdir()
    (kitti / 'synthetic_kitti.json').write_text(json.dumps({
        'drives': [{'date': '2024_06_03', 'city': 'SynthDowntown'},
                   {'date': '2024_06_04', 'city': 'SynthSuburb'}],
        'cities': {'SynthDowntown': {'map': '../maps/SynthDowntown.tif'},
                   'SynthSuburb': {'map': '../maps/SynthSuburb.tif'}}}))
    for date in bags:
        (tmp_path / 'bags' / date).mkdir(parents=True)
        (tmp_path / 'bags' / date / 'metadata.yaml').write_text('rosbag2_bagfile_information:')
    return tmp_path


def test_drives_pair_each_bag_with_its_citys_map(tmp_path):
    drives = validation_drives(_root(tmp_path))
    assert [(d.date, d.city) for d in drives] == [('2024_06_03', 'SynthDowntown'),
                                                  ('2024_06_04', 'SynthSuburb')]
    assert drives[0].bag == tmp_path / 'bags' / '2024_06_03'
    assert drives[1].map_path == (tmp_path / 'maps' / 'SynthSuburb.tif').resolve()


def test_a_missing_export_names_the_preset_of_the_camera(tmp_path):
    with pytest.raises(FileNotFoundError, match='--preset calibration_panorama --out'):
        validation_drives(tmp_path, 'panorama')
    with pytest.raises(FileNotFoundError, match='--preset calibration --out'):
        validation_drives(tmp_path, 'pinhole')


def test_a_missing_bag_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='2024_06_04.*geodistill-kitti2bag'):
        validation_drives(_root(tmp_path, bags=('2024_06_03',)))
