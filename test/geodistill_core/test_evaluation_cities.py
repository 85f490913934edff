"""Evaluation on a dataset whose cities differ from the checkpoint's training cities takes
the cities the data root holds (no --data-override needed), and the command line reports
a failure in one line."""
import json
from pathlib import Path
import runpy

from test_evaluation import save_tiny

from geodistill_core.data.vigor import SPLITS_DIR
from geodistill_core.evaluation import EvalConfig, eval_data_config
from geodistill_core.training import preset, to_dict

SAME_TEST = 'same_area_balanced_test__corrected.txt'
CROSS = 'pano_label_balanced__corrected.txt'


def vigor_city(root: Path, city: str, label_file: str) -> None:
    """The VIGOR layout of one city (folders and its label file; no images needed)."""
    for sub in ('panorama', 'satellite'):
        (root / city / sub).mkdir(parents=True, exist_ok=True)
    (root / SPLITS_DIR / city).mkdir(parents=True, exist_ok=True)
    (root / SPLITS_DIR / city / label_file).write_text('')


def record(area: str, cities) -> dict:
    training = to_dict(preset('synthetic_bench', 'location'))
    training['data'].update(area=area, cities=list(cities),
                            meters_per_px_640={city: 0.1 for city in cities})
    return {'training_config': json.loads(json.dumps(training))}


def test_same_area_model_from_a_synthetic_export_evaluates_the_real_city(tmp_path):
    vigor_city(tmp_path, 'Chicago', SAME_TEST)
    data = eval_data_config(EvalConfig(dataset='vigor', split='test'),
                            record('same', ['SynthA', 'SynthB']), tmp_path)
    assert data.cities == ('Chicago',)


def test_cross_area_test_takes_the_cities_present_but_never_the_training_ones(tmp_path):
    vigor_city(tmp_path, 'Chicago', CROSS)  # SanFrancisco, the other test city, not there
    data = eval_data_config(EvalConfig(dataset='vigor', split='test'),
                            record('cross', ['SynthA', 'SynthB']), tmp_path)
    assert data.cities == ('Chicago',)
    vigor_city(tmp_path, 'Seattle', CROSS)
    trained_on_seattle = eval_data_config(EvalConfig(dataset='vigor', split='test'),
                                          record('cross', ['NewYork', 'Seattle']), tmp_path)
    assert trained_on_seattle.cities == ('Chicago',)


def test_configured_cities_that_are_present_are_kept(tmp_path):
    """Counter-example: a root holding the training cities (and more) is not second-guessed,
    and an explicit cities override always wins."""
    for city in ('SynthA', 'SynthB', 'Chicago'):
        vigor_city(tmp_path, city, SAME_TEST)
    same = record('same', ['SynthA', 'SynthB'])
    assert eval_data_config(EvalConfig(dataset='vigor', split='test'), same,
                            tmp_path).cities == ('SynthA', 'SynthB')
    chosen = eval_data_config(EvalConfig(dataset='vigor', split='test', data_overrides=(
        'cities=["Atlantis"]', 'meters_per_px_640={"Atlantis": 0.1}')), same, tmp_path)
    assert chosen.cities == ('Atlantis',)


def test_cli_reports_an_error_in_one_line(tmp_path, capsys):
    cli = runpy.run_path(str(Path(__file__).parents[2] / 'train' / 'evaluate.py'))['cli']
    checkpoint = save_tiny(tmp_path / 'ckpt' / 'best')
    missing = tmp_path / 'no_vigor_here'
    assert cli(['--checkpoint', str(checkpoint), '--dataset', 'vigor', '--data-root',
                str(missing), '--split', 'test', '--num-workers', '0', '--device', 'cpu',
                '--no-progress', '--out', str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('evaluate.py: error: ')
    assert str(missing) in err
