"""bench_train_accuracy: the variants' configs and the per-seed summary against fp32."""
from bench_module import load_bench
import pytest


def _run(final_m):
    return {'history': [{'epoch': 1, 'val_mean_error_m': final_m + 1.0},
                        {'epoch': 2, 'val_mean_error_m': final_m}], 'wall_s': 1.0}


def test_summary_compares_each_variant_with_fp32_seed_by_seed():
    bench = load_bench('bench_train_accuracy')
    runs = {'location_fp32_seed0': _run(4.0), 'location_fp32_seed1': _run(3.0),
            'location_bnfrozen_seed0': _run(3.5), 'location_bnfrozen_seed1': _run(3.1)}
    summary = bench.summarise(runs, [0, 1])
    assert summary['location_fp32']['minus_fp32_m'] == 0.0
    assert summary['location_fp32']['fp32_seed_spread_m'] == pytest.approx(1.0)
    frozen = summary['location_bnfrozen']
    assert frozen['per_seed_m'] == [3.5, 3.1]
    assert frozen['mean_m'] == pytest.approx(3.3)
    assert frozen['minus_fp32_m'] == pytest.approx((-0.5 + 0.1) / 2)


@pytest.mark.parametrize('variant, field, value', [('bnfrozen', 'batchnorm', 'frozen'),
                                                   ('bf16', 'amp', 'bf16'),
                                                   ('fp32', 'batchnorm', 'batch')])
def test_variant_configs_change_one_loop_field(variant, field, value):
    bench = load_bench('bench_train_accuracy')
    for model in ('lite0', 'pinhole'):
        conf = bench.run_config(model, 'location', variant, epochs=2, steps=5, seed=3)
        assert getattr(conf.loop, field) == value
        assert conf.loop.seed == 3 and conf.data.seed == 3
        assert conf.loop.epochs == 2 and conf.loop.steps_per_epoch == 5
    pinhole = bench.run_config('pinhole', 'location', variant, epochs=2, steps=5)
    assert pinhole.data.ground_hw == (128, 512) and pinhole.model.camera_model == 'pinhole'
