"""bench/bench_geodistill.py: each row of the paper-way benchmark is the experiment it names.

The benchmark itself takes CPU hours (README); these tests pin how its configs derive from
the preset, so that a row cannot silently drift from its definition.
"""
from dataclasses import asdict

from bench_module import load_bench
import pytest

from geodistill_core.training import preset

bench = load_bench('bench_geodistill')


def _diff(a, b, prefix=''):
    """Dotted paths of the fields where two config dicts differ."""
    out = set()
    for key in a.keys() | b.keys():
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out |= _diff(va, vb, f'{prefix}{key}.')
        elif va != vb:
            out.add(f'{prefix}{key}')
    return out


def test_base_is_the_preset_with_a_longer_cosine_run_and_a_logged_curve():
    conf = bench.base_config('cpu', epochs=12)
    ref = preset(bench.PRESET, 'location')
    assert _diff(asdict(conf), asdict(ref)) == {
        'optim.schedule', 'loop.epochs', 'loop.device', 'loop.report_val_error'}
    assert conf.optim.schedule == 'cosine' and conf.loop.epochs == 12
    assert conf.loop.select_metric == 'loss'   # selection stays label-free


@pytest.mark.parametrize('name, fields', [
    ('no_sharpening', {'distill.loss.sharpen': False}),
    ('random_patch', {'distill.mask': 'random_patch'}),
    ('single_mode', {'distill.loss.target': 'single_mode'}),
    ('max_activation', {'distill.mask': 'max_activation'}),
    ('augment_base', {'distill.mode': 'augment'}),
    ('continued', {'distill.mode': 'augment', 'distill.mask': 'none'}),
])
def test_each_ablation_differs_from_geodistill_in_its_own_field_only(name, fields):
    base = bench.base_config('cpu')
    geo = asdict(bench.method_config('geodistill', base, 'cpu'))
    row = asdict(bench.method_config(name, base, 'cpu'))
    assert _diff(row, geo) == {'name', *fields}
    for path, value in fields.items():
        node = row
        for part in path.split('.'):
            node = node[part]
        assert node == value


def test_geodistill_is_the_presets_distillation():
    base = bench.base_config('cpu')
    geo = bench.method_config('geodistill', base, 'cpu')
    assert _diff(asdict(geo), asdict(preset(bench.PRESET, 'distill'))) == {'name',
                                                                           'loop.device'}
    assert geo.distill.mask == 'fov' and geo.distill.loss.sharpen
    assert geo.distill.loss.tau == 0.06 and geo.distill.mode == 'distill'


def test_scratch_control_gets_the_bases_steps_and_schedule():
    base = bench.base_config('cpu', epochs=7)
    conf = bench.method_config('augment_scratch', base, 'cpu', epochs=2)
    assert conf.loop == base.loop and conf.optim == base.optim   # epochs=2 ignored
    assert (conf.distill.mode, conf.distill.augment_start, conf.distill.mask) == (
        'augment', 'scratch', 'fov')
    assert conf.model == base.model and conf.data == base.data and conf.weak == base.weak
    assert not bench.METHODS['augment_scratch'].from_base


def test_distillation_epochs_override_applies_to_distillation_rows():
    base = bench.base_config('cpu')
    assert bench.method_config('random_patch', base, 'cpu', epochs=3).loop.epochs == 3


def test_unknown_method_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match='unknown methods'):
        bench.run(tmp_path, methods=('base', 'teacher_only'))
    assert not any(tmp_path.iterdir())


def test_curve_table_has_one_row_per_epoch_with_its_numbers():
    text = bench.curve_table([
        {'epoch': 1, 'step': 119, 'train_loss': 0.5, 'loss': 0.3256, 'mean_error_m': 7.235,
         'r1_m': 0.5779},
        {'epoch': 2, 'step': 238, 'train_loss': 0.3, 'loss': 0.2}])
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[2] == '| 1 | 119 | 0.5000 | 0.3256 | 7.24 | 57.8% |'
    assert lines[3].startswith('| 2 | 238 | 0.3000 | 0.2000 | nan |')


def _per_item(folder, errors):
    folder.mkdir(parents=True)
    lines = ['index,item_id,error_m'] + [f'{i},"item {k}",{e}' for i, (k, e) in
                                          enumerate(errors.items())]
    (folder / 'per_item.csv').write_text('\n'.join(lines) + '\n')
    (folder / 'results.json').write_text('{}')
    return folder / 'results.json'


def test_paired_difference_is_over_shared_items_with_a_bootstrap_interval(tmp_path):
    ref = _per_item(tmp_path / 'ref', {1: 1.0, 2: 2.0, 3: 3.0, 4: 10.0})
    other = _per_item(tmp_path / 'other', {1: 2.0, 2: 3.0, 3: 4.0, 5: 0.0})
    out = bench.paired_difference(bench.item_errors(other), bench.item_errors(ref))
    assert out['items'] == 3 and out['mean_m'] == pytest.approx(1.0)
    assert out['interval_95_m'] == [pytest.approx(1.0), pytest.approx(1.0)]  # constant diff
    assert bench.paired_difference(bench.item_errors(tmp_path / 'missing' / 'results.json'),
                                   bench.item_errors(ref)) is None
