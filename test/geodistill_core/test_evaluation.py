"""Offline evaluation: exact metrics of a fake localizer, end to end on the flat world with
tiny checkpoints, seeded and saved yaw noise, NaN failures, the selection-split guard."""
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from geodistill_core.evaluation import (
    DONE_FILE,
    NOISE_FILE,
    PER_ITEM_FILE,
    RESULTS_FILE,
    EvalConfig,
    EvalPaths,
    EvaluationExistsError,
    SelectionSplitError,
    check_not_selected_on,
    eval_data_config,
    evaluate,
    heatmap_rows,
    run_evaluation,
)
from geodistill_core.localizer import LocalizationResult, Localizer
from geodistill_core.models.correlation import (
    CorrelationEstimatorConfig,
    CorrelationLevel,
    CorrelationLocationEstimator,
)
from geodistill_core.training import build_model, preset, save_trained_model, to_dict
from geodistill_core.training.flat_world import FlatWorldDataset
from geodistill_core.training.models import LocationModel

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
SIZES = {'ground_hw': [32, 64], 'satellite_hw': [64, 64]}


# ---------------------------------------------------------------- helpers
def save_tiny(path, task='location', seed=0, training_config=None, provenance=None):
    """A random tiny-preset checkpoint with its training config (as the trainers save)."""
    conf = preset('tiny', task)
    torch.manual_seed(seed)
    training = to_dict(conf) if training_config is None else training_config
    return save_trained_model(path, build_model(conf.model), conf.model, SIZES, None,
                              provenance or {'objective': task},
                              extra={'training_config': training})


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpt')
    return {'base': save_tiny(root / 'base' / 'best', seed=0),
            'distill': save_tiny(root / 'distill' / 'best', seed=1),
            'orientation': save_tiny(root / 'orientation' / 'best', 'orientation', seed=2)}


def conf(**kw):
    values = dict(dataset='flat_world', split='test', num_workers=0, device='cpu',
                  progress=False, batch_size=4, num_heatmaps=2)
    return EvalConfig(**{**values, **kw})


def read_csv(path):
    with open(path, newline='') as handle:
        return list(csv.DictReader(handle))


class FakeLocalizer:
    """Predicts truth + a known offset per item (and true yaw + known degrees); the truth
    comes from the dataset in loader order, so this checks the pipeline, not a model."""

    def __init__(self, dataset, offsets_en_m, yaw_offsets_deg=None):
        self.items = [dataset[i] for i in range(len(dataset))]
        self.offsets = np.asarray(offsets_en_m, np.float64)
        self.yaw_offsets = None if yaw_offsets_deg is None else np.radians(yaw_offsets_deg)
        self.orientation_model = None if yaw_offsets_deg is None else object()
        self.row = 0

    def localize(self, ground, satellite, sat_meters_per_px, *, yaw_prior_rad, K=None,
                 camera_height_m=None):
        B = ground.shape[0]
        rows = range(self.row, self.row + B)
        self.row += B
        truth = torch.stack([self.items[r]['eval_true_offset_en_m'].double() for r in rows])
        yaw = torch.stack([self.items[r]['yaw_rad'].double() for r in rows])
        if self.yaw_offsets is not None:
            yaw = yaw + torch.from_numpy(self.yaw_offsets[list(rows)])
        else:
            yaw = yaw_prior_rad.double()
        return LocalizationResult(
            yaw_rad=yaw, yaw_std_rad=torch.zeros(B),
            offset_en_m=truth + torch.from_numpy(self.offsets[list(rows)]),
            covariance_en_m2=torch.eye(2).expand(B, 2, 2), confidence=torch.ones(B),
            heatmap_prob=torch.full((B, 8, 8), 1 / 64), heatmap_cell_m=4.0)


# ---------------------------------------------------------------- exact metrics
def test_fake_localizer_errors_are_reported_exactly(tmp_path):
    """Predictions = truth + known offsets: every reported number is the hand value."""
    data = FlatWorldDataset('test', size=6, ground_hw=(16, 32), sat_size=32)
    # flat world without noise: true yaw = pi/2 (forward = north, left = west)
    offsets = [[3, 4], [0, 0.5], [-2, 0], [0, -6], [math.nan, math.nan], [1, 0]]
    yaw_deg = [0.5, -2, 4, 120, 10, -179]
    localizers = {'evaluated': FakeLocalizer(data, offsets, yaw_deg),
                  'compare': FakeLocalizer(data, 2 * np.asarray(offsets))}
    results = run_evaluation(conf(vehicle_frame_errors=True), localizers, data, tmp_path)

    loc = results['metrics']['localization_m']  # errors 5, 0.5, 2, 6, NaN, 1
    assert loc['count'] == 6 and loc['failures'] == 1
    assert loc['mean'] == pytest.approx(14.5 / 5, abs=1e-6)
    assert loc['median'] == pytest.approx(2.0, abs=1e-6)
    assert (loc['recall_1m'], loc['recall_3m'], loc['recall_5m']) == pytest.approx(
        (2 / 6, 3 / 6, 4 / 6))
    assert results['metrics']['failed_items'] == [4]
    lat, lon = results['metrics']['lateral_m'], results['metrics']['longitudinal_m']
    assert lat['mean'] == pytest.approx(6 / 5, abs=1e-6)  # |-east| = 3, 0, 2, 0, 1
    assert lon['median'] == pytest.approx(0.5, abs=1e-6)  # |north| = 4, .5, 0, 6, 0
    assert lat['recall_1m'] == pytest.approx(3 / 6) and lat['failures'] == 1
    ori = results['metrics']['orientation_deg']  # 0.5, 2, 4, 120, 10, 179
    assert ori['mean'] == pytest.approx(315.5 / 6, abs=1e-3)
    assert ori['median'] == pytest.approx(7.0, abs=1e-3)
    assert ori['flip_rate'] == pytest.approx(2 / 6)
    assert ori['recall_3deg'] == pytest.approx(2 / 6)
    # compare = twice the offsets: mean 5.8 -> relative change of the evaluated one -0.5
    assert results['compare']['metrics']['localization_m']['mean'] == pytest.approx(5.8,
                                                                                   abs=1e-6)
    assert results['compare']['relative_change']['mean'] == pytest.approx(-0.5, abs=1e-6)
    assert 'orientation_deg' not in results['compare']['metrics']

    rows = read_csv(tmp_path / PER_ITEM_FILE)
    assert [r['index'] for r in rows] == [str(i) for i in range(6)]
    assert [r['failed'] for r in rows] == ['0', '0', '0', '0', '1', '0']
    assert rows[4]['error_m'] == 'nan'
    # signs kept in the table: east +3 with the vehicle facing north is 3 m to the RIGHT
    assert float(rows[0]['lateral_m']) == pytest.approx(-3.0, abs=1e-5)
    assert float(rows[0]['longitudinal_m']) == pytest.approx(4.0, abs=1e-5)
    assert float(rows[3]['longitudinal_m']) == pytest.approx(-6.0, abs=1e-5)
    assert float(rows[3]['yaw_error_deg']) == pytest.approx(120.0, abs=1e-3)
    assert float(rows[0]['compare_error_m']) == pytest.approx(10.0, abs=1e-5)
    # strict JSON on disk: the NaN-free summary parses without allow_nan
    json.loads((tmp_path / RESULTS_FILE).read_text(), parse_constant=pytest.fail)


# ---------------------------------------------------------------- end to end
def test_evaluate_writes_results_table_noise_and_plots(tmp_path, checkpoints):
    out = tmp_path / 'eval'
    paths = EvalPaths(checkpoints['distill'], None, checkpoints['orientation'],
                      checkpoints['base'], out)
    result_path = evaluate(conf(max_items=10, yaw_noise_deg=10.0, vehicle_frame_errors=True),
                           paths)
    assert result_path == out / RESULTS_FILE
    results = json.loads(result_path.read_text())
    assert {'config', 'checkpoints', 'data', 'metrics', 'compare', 'timing', 'files',
            'yaw_prior_error_deg', 'num_items'} <= set(results)
    assert results['num_items'] == 10 and results['data']['split_items'] == 32
    for section in ('localization_m', 'lateral_m', 'longitudinal_m', 'orientation_deg'):
        assert results['metrics'][section]['count'] == 10
    assert results['compare']['metrics']['localization_m']['count'] == 10
    assert results['checkpoints']['evaluated']['weights_sha256'] != \
        results['checkpoints']['compare']['weights_sha256']
    assert results['checkpoints']['evaluated']['selection_split'] == 'val'
    assert results['timing']['evaluated']['ms_per_item_mean'] > 0
    assert results['data']['reader_config']['yaw_noise_deg'] == 10.0

    rows = read_csv(out / PER_ITEM_FILE)
    assert len(rows) == 10 and [int(r['index']) for r in rows] == list(range(10))
    assert {'compare_error_m', 'yaw_pred_deg', 'time_ms'} <= set(rows[0])
    errors = np.array([float(r['error_m']) for r in rows])
    assert results['metrics']['localization_m']['mean'] == pytest.approx(errors.mean())

    plots = sorted((out / 'plots').glob('*.png'))
    names = {p.name for p in plots}
    assert {'error_cdf.png', 'yaw_error_cdf.png', 'heatmap_000_item0.png',
            'heatmap_009_item9.png'} == names
    for plot in plots:
        data = plot.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000
    assert sorted(results['files']) == sorted(
        [PER_ITEM_FILE, NOISE_FILE] + [f'plots/{n}' for n in names])

    # the rerun with identical arguments is skipped (nothing rewritten)
    stamp = result_path.stat().st_mtime_ns
    assert evaluate(conf(max_items=10, yaw_noise_deg=10.0, vehicle_frame_errors=True,
                         num_workers=1), paths) == result_path
    assert result_path.stat().st_mtime_ns == stamp
    # other arguments into the same folder: refused, unless overwrite
    with pytest.raises(EvaluationExistsError, match='max_items'):
        evaluate(conf(max_items=6, yaw_noise_deg=10.0, vehicle_frame_errors=True), paths)
    evaluate(conf(max_items=6, yaw_noise_deg=10.0), paths, overwrite=True)
    assert len(read_csv(out / PER_ITEM_FILE)) == 6
    assert json.loads((out / DONE_FILE).read_text())['signature']['config']['max_items'] == 6


def test_test_time_yaw_noise_is_seeded_saved_and_reproducible(tmp_path, checkpoints):
    def noise(seed, name):
        paths = EvalPaths(checkpoints['base'], output_dir=tmp_path / name)
        evaluate(conf(max_items=8, yaw_noise_deg=30.0, seed=seed, num_heatmaps=0), paths)
        saved = json.loads((tmp_path / name / NOISE_FILE).read_text())
        rows = read_csv(tmp_path / name / PER_ITEM_FILE)
        return saved, rows

    first, rows = noise(0, 'a')
    again, _ = noise(0, 'b')
    other, _ = noise(1, 'c')
    n = np.array(first['yaw_noise_rad'])
    assert first['index'] == list(range(8)) and first['seed'] == 0
    assert np.array_equal(n, again['yaw_noise_rad'])  # same seed: identical, bit for bit
    assert not np.allclose(n, other['yaw_noise_rad'])  # another seed: other noise
    assert np.all(np.abs(n) <= math.radians(30.0)) and np.abs(n).max() > math.radians(3)
    # the saved values are the reader's, and prior - true (wrapped)
    reader = FlatWorldDataset('test', ground_hw=(32, 64), sat_size=64, yaw_noise_deg=30.0)
    np.testing.assert_allclose(n, reader.yaw_noise_rad[:8], atol=1e-6)
    diff = np.array(first['yaw_prior_rad']) - np.array(first['yaw_rad'])
    np.testing.assert_allclose(diff, n, atol=1e-6)
    np.testing.assert_allclose([float(r['yaw_noise_deg']) for r in rows], np.degrees(n),
                               atol=1e-4)


def test_nan_prediction_is_a_counted_failure(tmp_path, checkpoints, monkeypatch):
    original = Localizer.localize

    def some_nan(self, ground, satellite, sat_meters_per_px, **kw):
        result = original(self, ground, satellite, sat_meters_per_px, **kw)
        offsets = result.offset_en_m.clone()
        offsets[0] = math.nan  # the first item of every batch fails
        return LocalizationResult(result.yaw_rad, result.yaw_std_rad, offsets,
                                  result.covariance_en_m2, result.confidence,
                                  result.heatmap_prob, result.heatmap_cell_m)

    monkeypatch.setattr(Localizer, 'localize', some_nan)
    path = evaluate(conf(max_items=10), EvalPaths(checkpoints['base'], output_dir=tmp_path))
    loc = json.loads(path.read_text())['metrics']
    assert loc['localization_m']['count'] == 10 and loc['localization_m']['failures'] == 3
    assert loc['failed_items'] == [0, 4, 8]
    rows = read_csv(tmp_path / PER_ITEM_FILE)
    assert [int(r['failed']) for r in rows] == [1, 0, 0, 0, 1, 0, 0, 0, 1, 0]
    finite = np.array([float(r['error_m']) for r in rows if r['failed'] == '0'])
    assert loc['localization_m']['mean'] == pytest.approx(finite.mean())
    for key in ('recall_1m', 'recall_3m', 'recall_5m'):  # over all 10, failures are misses
        assert loc['localization_m'][key] == pytest.approx(
            float((finite <= float(key[7:-1])).sum()) / 10)
    assert (tmp_path / 'plots' / 'heatmap_000_item0.png').stat().st_size > 0


# ---------------------------------------------------------------- the guard
def test_guard_refuses_the_selection_split(tmp_path, checkpoints):
    with pytest.raises(SelectionSplitError, match="val_split='val'"):
        evaluate(conf(split='val'), EvalPaths(checkpoints['base'], output_dir=tmp_path / 'v'))
    assert not (tmp_path / 'v').exists()  # refused before anything is written
    # a compare or orientation checkpoint selected on the split is refused as well
    training = to_dict(preset('tiny', 'location'))
    training['data']['val_split'] = 'test'  # hand-edited: DataConfig itself would refuse it
    bad = save_tiny(tmp_path / 'bad', training_config=training)
    with pytest.raises(SelectionSplitError, match='bad'):
        evaluate(conf(), EvalPaths(checkpoints['distill'], compare_checkpoint=bad,
                                   output_dir=tmp_path / 'c'))
    # ... and so is a model distilled from a base that was selected on it
    clean = to_dict(preset('tiny', 'distill'))
    clean['data']['val_split'] = None
    child = save_tiny(tmp_path / 'child', training_config=clean,
                      provenance={'base_checkpoint': str(bad)})
    with pytest.raises(SelectionSplitError, match='bad'):
        check_not_selected_on(child, json.loads((child / 'config.json').read_text()),
                              'flat_world', 'test')
    # counter-examples: the same split name of another dataset, another split
    record = json.loads((bad / 'config.json').read_text())
    check_not_selected_on(bad, record, 'vigor', 'test')
    check_not_selected_on(bad, record, 'flat_world', 'val')


# ---------------------------------------------------------------- pieces
def test_reader_config_takes_noise_seed_and_overrides():
    record = {'training_config': to_dict(preset('synthetic_kitti', 'location')),
              'input_sizes': SIZES}
    kitti = eval_data_config(EvalConfig(dataset='kitti', split='test1', yaw_noise_deg=10.0,
                                        seed=3), record)
    assert kitti.reader_options['rotation_range_deg'] == 10.0  # the split line's dtheta * r
    assert kitti.reader_options['sat_crop_px'] == 256 and kitti.yaw_noise_deg == 0.0
    assert kitti.seed == 3 and kitti.val_split is None
    assert kitti.ground_hw == tuple(record['training_config']['data']['ground_hw'])
    vigor = eval_data_config(EvalConfig(dataset='vigor', yaw_noise_deg=45.0,
                                        data_overrides=('area=same',)), record)
    assert vigor.yaw_noise_deg == 45.0 and vigor.area == 'same'
    assert vigor.ground_hw == (32, 64) and vigor.sat_size == 64  # checkpoint input sizes
    with pytest.raises(ValueError, match='yaw_noise_deg'):
        eval_data_config(EvalConfig(dataset='vigor', data_overrides=('yaw_noise_deg=5',)),
                         record)
    assert heatmap_rows(10, 3) == [0, 4, 9] and heatmap_rows(2, 4) == [0, 1]
    assert heatmap_rows(5, 0) == []


def test_cross_area_test_never_reads_the_training_cities(tmp_path):
    training = to_dict(preset('synthetic_bench', 'location'))
    assert training['data']['area'] == 'same'  # the preset trains on the same-area half
    training['data'].update(cities=['SynthA', 'SynthB'],
                            meters_per_px_640={'SynthA': 0.1, 'SynthB': 0.1})
    same_record = {'training_config': json.loads(json.dumps(training))}
    training['data'].update(area='cross')
    record = {'training_config': training}
    (tmp_path / 'synthetic_vigor.json').write_text(json.dumps(
        {'cross_area': {'train': ['SynthA', 'SynthB'], 'test': ['SynthC']},
         'meters_per_px_640': {'SynthC': 0.12}}))
    test = eval_data_config(EvalConfig(dataset='vigor', split='test'), record, tmp_path)
    assert test.cities == ('SynthC',) and test.meters_per_px_640['SynthC'] == 0.12
    official = eval_data_config(EvalConfig(dataset='vigor', split='test'), record, None)
    assert official.cities is None  # the official protocol's test cities
    with pytest.raises(ValueError, match='training cities'):
        eval_data_config(EvalConfig(dataset='vigor', split='test',
                                    data_overrides=('cities=["SynthA"]',)), record, tmp_path)
    # counter-examples: same-area test and the validation split keep the training cities
    same = eval_data_config(EvalConfig(dataset='vigor', split='test',
                                       data_overrides=('area=same',)), record, tmp_path)
    val = eval_data_config(EvalConfig(dataset='vigor', split='val'), record, tmp_path)
    assert same.cities == val.cities == ('SynthA', 'SynthB')
    # a same-area model's cross-area test (bench_geodistill): the export's test cities
    cross = eval_data_config(EvalConfig(dataset='vigor', split='test',
                                        data_overrides=('area=cross',)), same_record, tmp_path)
    assert cross.cities == ('SynthC',) and cross.area == 'cross'
    assert eval_data_config(EvalConfig(dataset='vigor', split='test'), same_record,
                            tmp_path).cities == ('SynthA', 'SynthB')
    assert heatmap_rows(5, 0) == []


class RgbLevels(nn.Module):
    """Parameter-free extractor: the image itself at strides 4 and 1."""

    def forward(self, images):
        return {'coarse': F.avg_pool2d(images, 4), 'fine': images}


def test_identity_model_localizes_the_flat_world_and_yaw_noise_hurts(tmp_path):
    """A real Localizer on raw colours finds the true offsets (the pipeline keeps signs and
    units); a wrong yaw prior makes it worse (the noise reaches the model)."""
    config = CorrelationEstimatorConfig(
        levels=(CorrelationLevel('coarse', 3), CorrelationLevel('fine', 3)),
        learned_confidence=False)
    model = LocationModel(CorrelationLocationEstimator(config, RgbLevels(), RgbLevels()))
    localizer = Localizer(model, kind='correlation', ground_hw=(64, 128), sat_size_px=96,
                          camera_model='panorama', camera_height_m=2.0, device='cpu')

    def run(noise_deg, name):
        data = FlatWorldDataset('test', size=8, ground_hw=(64, 128), sat_size=96,
                                sat_meters_per_px=0.25, world_px=384, yaw_noise_deg=noise_deg)
        return run_evaluation(conf(yaw_noise_deg=noise_deg, num_heatmaps=1),
                              {'evaluated': localizer}, data, tmp_path / name)['metrics']

    exact = run(0.0, 'exact')['localization_m']  # about 5 mm
    assert exact['failures'] == 0 and exact['mean'] < 0.05 and exact['recall_1m'] == 1.0
    noisy = run(60.0, 'noisy')['localization_m']  # about 0.5 m
    assert noisy['mean'] > 0.2


def test_cli_prints_the_results_path(tmp_path, checkpoints, capsys):
    import runpy
    cli = runpy.run_path(str(Path(__file__).parents[2] / 'train' / 'evaluate.py'))['cli']
    out = tmp_path / 'cli'
    assert cli(['--checkpoint', str(checkpoints['base']), '--dataset', 'flat_world',
                '--split', 'test', '--max-items', '4', '--num-workers', '0', '--device', 'cpu',
                '--no-progress', '--num-heatmaps', '1', '--out', str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / RESULTS_FILE)
    with pytest.raises(SystemExit):
        cli(['--checkpoint', str(checkpoints['base']), '--dataset', 'flat_world',
             '--split', 'test', '--yaw-noise-deg', '400'])


def test_metrics_report_the_consistency_of_the_stated_covariance():
    from geodistill_core.evaluation.predict import ModelPredictions, SplitPredictions
    from geodistill_core.evaluation.summary import model_metrics
    rng = np.random.default_rng(0)
    n = 2000
    cov = np.array([[4.0, 1.0], [1.0, 2.0]])
    truth = rng.normal(0, 10, (n, 2))
    pred = truth + rng.multivariate_normal([0, 0], cov, n)
    zeros = np.zeros(n)

    def split(stated):
        model = ModelPredictions(pred, zeros, zeros, zeros, False, {},
                                 None if stated is None else np.repeat(stated[None], n, 0))
        return SplitPredictions(np.arange(n), [''] * n, truth, zeros, zeros, zeros,
                                {'m': model}, {}, 1.0, 0.0)
    right = model_metrics(split(cov), 'm', False)['consistency']
    assert right['nees_mean'] == pytest.approx(2.0, abs=0.1)
    assert right['inside_95'] == pytest.approx(0.95, abs=0.015)
    too_small = model_metrics(split(cov / 4), 'm', False)['consistency']
    assert too_small['nees_mean'] == pytest.approx(8.0, abs=0.4)
    assert 'consistency' not in model_metrics(split(None), 'm', False)


def test_rotation_search_evaluation_reports_the_searched_yaw_and_beats_the_prior(tmp_path):
    """yaw_search='rotation': the search runs over the prior +- yaw_noise_deg, its yaw is
    evaluated against the truth, and on raw colours it undoes the prior's error."""
    from test_localizer_yaw_search import searching_localizer
    localizer = searching_localizer(90.0)  # the run's range (40 deg) must override this
    data = FlatWorldDataset('test', size=6, ground_hw=(64, 128), sat_size=96,
                            sat_meters_per_px=0.25, world_px=384, yaw_noise_deg=40.0)
    results = run_evaluation(conf(yaw_noise_deg=40.0, num_heatmaps=1, yaw_search='rotation'),
                             {'evaluated': localizer}, data, tmp_path / 'search')
    prior = results['yaw_prior_error_deg']
    searched = results['metrics']['orientation_deg']
    assert prior['median'] > 5.0 and searched['median'] < 1.0
    assert results['metrics']['localization_m']['mean'] < 0.75
    rows = read_csv(tmp_path / 'search' / PER_ITEM_FILE)
    assert all(float(r['yaw_error_deg']) < 2.0 for r in rows)
    assert results['config']['yaw_search'] == 'rotation'


def test_evaluate_with_rotation_search_uses_the_cameras_settings(tmp_path, checkpoints):
    out = evaluate(conf(yaw_noise_deg=20.0, max_items=2, num_heatmaps=0,
                        yaw_search='rotation'), EvalPaths(checkpoints['base'], None),
                   overwrite=False)
    results = json.loads(Path(out).read_text())
    assert 'rotation' in Path(out).parent.name
    assert results['metrics']['orientation_deg']['count'] == 2
    with pytest.raises(ValueError, match='yaw_search must be one of'):
        conf(yaw_search='learned')
