"""Tiny end-to-end runs of the three scripts (tiny preset, procedural data)."""
from dataclasses import replace
import runpy
import sys

import pytest
import torch

from geodistill_core.training import (
    OrientationLossModule,
    RunPaths,
    batch_to_location_inputs,
    build_model,
    load_config,
    load_trained_model,
    location_scores,
    preset,
    train_orientation,
)
from geodistill_core.training.cli import cli_main
from geodistill_core.training.flat_world import FlatWorldDataset


def run_script(name, argv, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [f'train/{name}.py', *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(f'train/{name}.py', run_name='__main__')
    return exit_info.value.code


@pytest.mark.slow
def test_location_then_distill_scripts_train_and_their_checkpoints_load(tmp_path, monkeypatch,
                                                                        capsys):
    base = tmp_path / 'base'
    code = run_script('train_location', ['--preset', 'tiny', '--output', str(base),
                                         '--set', 'loop.steps_per_epoch=6', '--lr', '1e-3'],
                      monkeypatch)
    assert code == 0
    assert capsys.readouterr().out.strip() == str(base / 'best')
    history = load_history(base)
    assert history[-1]['train_loss'] < history[0]['train_loss']
    model, config, record = load_trained_model(base / 'best')
    assert record['training_config']['task'] == 'location'
    assert record['meters_per_px'] == 0.5  # the flat world's satellite resolution (tiny)
    assert load_config(base / 'config.json').name == 'tiny_location'

    student = tmp_path / 'distill'
    assert cli_main('distill', ['--preset', 'tiny', '--output', str(student),
                                '--base-checkpoint', str(base / 'best'), '--lr', '1e-3',
                                '--set', 'loop.steps_per_epoch=6']) == 0
    history = load_history(student)
    assert history[-1]['train_loss'] < history[0]['train_loss']
    teacher, _, record = load_trained_model(student / 'best')
    assert record['provenance']['objective'] == 'geodistill/distill'
    ds = FlatWorldDataset('val', size=2, ground_hw=(32, 64), sat_size=64)
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ds[0]}
    scores = location_scores(teacher, batch_to_location_inputs(batch))
    assert [s.shape[0] for s in scores.scores] == [2, 2]
    # the teacher moved away from the base model (EMA of a trained student)
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                     teacher.state_dict().values(), strict=True))


def load_history(run_dir):
    from geodistill_core.training.state import read_training_meta
    return read_training_meta(run_dir / 'state')['progress']['history']


def test_orientation_script_trains_the_orientation_estimator_and_saves_it(tmp_path):
    conf = preset('tiny', 'orientation')
    best = train_orientation(conf, RunPaths(tmp_path))
    history = load_history(tmp_path)
    assert len(history) == 2 and all('abs_error_deg' in h and 'loss' in h for h in history)
    model, model_config, _ = load_trained_model(best)
    assert model_config.kind == 'orientation'
    assert type(model).__name__ == 'OrientationEstimator'


def test_orientation_objective_fits_a_batch():
    torch.manual_seed(0)
    conf = preset('tiny', 'orientation')
    model = build_model(conf.model)
    module = OrientationLossModule(model, conf.orientation)
    ds = FlatWorldDataset('train', size=8, ground_hw=(32, 64), sat_size=64)
    batch = {k: torch.stack([ds[i][k] for i in range(8)]) for k in ds[0]}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = module(batch, step_seed=1)['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_help_and_print_config(capsys):
    with pytest.raises(SystemExit) as info:
        cli_main('distill', ['--help'])
    assert info.value.code == 0 and '--no-sharpen' in capsys.readouterr().out
    assert cli_main('location', ['--preset', 'vigor_cross', '--output', 'x',
                                 '--print-config']) == 0
    assert '"area": "cross"' in capsys.readouterr().out


def test_augment_from_scratch_takes_the_base_schedule_unless_a_flag_says_otherwise():
    from geodistill_core.training.cli import build_parser, config_from_args
    from geodistill_core.training.presets import preset

    def conf(*flags):
        args = build_parser('distill').parse_args(['--preset', 'synthetic_bench', '--output',
                                                   'x', *flags])
        return config_from_args(args, 'distill')
    base, dist = preset('synthetic_bench', 'location'), preset('synthetic_bench', 'distill')
    scratch = conf('--mode', 'augment', '--augment-start', 'scratch')
    assert scratch.loop == base.loop and scratch.optim == base.optim
    assert scratch.loop.select_metric == 'loss' != dist.loop.select_metric
    flagged = conf('--mode', 'augment', '--augment-start', 'scratch', '--epochs', '7',
                   '--lr', '3e-4')
    assert flagged.loop.epochs == 7 and flagged.optim.lr == 3e-4
    # continuing the trained base, or distilling, keeps the distillation schedule
    assert conf('--mode', 'augment').loop == dist.loop
    assert conf().loop == dist.loop


def test_augment_from_scratch_trains_a_new_base_without_a_checkpoint(tmp_path):
    """The paper's Table 4 control: a base trained from the initial weights with the FoV
    augmentation (weak loss on masked images), not a continuation of the trained base."""
    from geodistill_core.training import DistillConfig, ModelConfig, RunPaths, build_model
    from geodistill_core.training.presets import preset
    from geodistill_core.training.run import distill
    out = tmp_path / 'augment'
    assert cli_main('distill', ['--preset', 'tiny', '--output', str(out), '--mode', 'augment',
                                '--augment-start', 'scratch', '--epochs', '1',
                                '--set', 'loop.steps_per_epoch=2']) == 0
    model, config, record = load_trained_model(out / 'best')
    assert record['provenance']['objective'] == 'geodistill/augment_from_scratch'
    assert 'base_checkpoint' not in record['provenance']
    assert load_config(out / 'config.json').distill.augment_start == 'scratch'
    # it started from the preset's initial weights (seed 0), and training moved them
    torch.manual_seed(0)
    assert config == preset('tiny', 'distill').model and isinstance(config, ModelConfig)
    initial = build_model(config)
    assert any(not torch.equal(a, b) for a, b in zip(initial.state_dict().values(),
                                                     model.state_dict().values(), strict=True))
    conf = preset('tiny', 'distill')
    scratch = replace(conf, distill=DistillConfig(mode='augment', augment_start='scratch'))
    with pytest.raises(ValueError, match='drop --base-checkpoint'):
        distill(scratch, RunPaths(tmp_path / 'x', None, tmp_path / 'base'))
    with pytest.raises(ValueError, match='--base-checkpoint'):
        distill(conf, RunPaths(tmp_path / 'y', None, None))
    with pytest.raises(ValueError, match="mode 'augment' only"):
        DistillConfig(augment_start='scratch')
