"""The training loop: kill-and-resume equivalence, label hygiene, selection on validation,
resume refusal, rerun skipping, logs."""
from dataclasses import replace

import pytest
import torch
from torch.utils.data import Dataset

from geodistill_core.training import (
    POSITION_LABEL_KEY,
    ConfigMismatchError,
    DistillObjective,
    DistributedContext,
    RunPaths,
    Trainer,
    WeakObjective,
    build_model,
    load_trained_model,
    preset,
    save_trained_model,
    train_location,
)
from geodistill_core.training.flat_world import FlatWorldDataset
from geodistill_core.training.state import read_training_meta

CPU = DistributedContext(0, 1, 0, torch.device('cpu'))


class Killed(Exception):
    pass


class WithoutLabels(Dataset):
    """A reader whose items lack the evaluation position label."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        item = dict(self.base[index])
        del item[POSITION_LABEL_KEY]
        return item

    def sampling_layout(self):
        return self.base.sampling_layout()


def datasets(labels=True):
    train = FlatWorldDataset('train', size=16, ground_hw=(16, 32), sat_size=32)
    val = FlatWorldDataset('val', size=8, ground_hw=(16, 32), sat_size=32)
    return (train, val) if labels else (WithoutLabels(train), WithoutLabels(val))


def make_trainer(conf, run_dir, seed, objective_kind='weak', labels=True):
    torch.manual_seed(seed)
    model = build_model(conf.model)
    if objective_kind == 'weak':
        objective = WeakObjective(model, conf.weak)
    else:
        objective = DistillObjective(model, conf.distill, conf.weak)
    train, val = datasets(labels)

    def save(path, module, provenance):
        return save_trained_model(path, module, conf.model, {}, None, provenance)
    return Trainer(conf, objective, train, val, run_dir, CPU, save), objective


def weights(objective):
    return {f'{name}.{k}': v.clone() for name, module in objective.state_modules().items()
            for k, v in module.state_dict().items()}


@pytest.mark.parametrize('kind', ['weak', 'distill'])
def test_kill_and_resume_gives_the_same_weights(tmp_path, toy_config, kind):
    conf = replace(toy_config, task='location' if kind == 'weak' else 'distill')
    straight, obj_a = make_trainer(conf, tmp_path / 'a', seed=0, objective_kind=kind)
    result = straight.fit()
    assert result.steps == 6

    killed, obj_b = make_trainer(conf, tmp_path / 'b', seed=0, objective_kind=kind)
    original = obj_b.after_step

    def crash_at_5(step):
        original(step)
        if step == 5:
            raise Killed
    obj_b.after_step = crash_at_5
    with pytest.raises(Killed):
        killed.fit()
    assert read_training_meta(tmp_path / 'b' / 'state')['progress']['step'] == 4  # lost 1 < 2

    resumed, obj_c = make_trainer(conf, tmp_path / 'b', seed=123, objective_kind=kind)
    assert resumed.fit().steps == 6
    a, c = weights(obj_a), weights(obj_c)
    assert a.keys() == c.keys()
    for key in a:
        assert torch.equal(a[key], c[key]), key
    assert result.history == resumed.progress['history']


@pytest.mark.parametrize('kind', ['weak', 'distill'])
def test_training_never_sees_the_position_label(tmp_path, toy_config, kind):
    conf = replace(toy_config, task='location' if kind == 'weak' else 'distill')
    trainer, objective = make_trainer(conf, tmp_path / 'with', 0, kind)
    seen = []
    forward = objective.train_module.forward

    def spy(batch, step_seed=0):
        seen.append(sorted(batch))
        return forward(batch, step_seed)
    objective.train_module.forward = spy
    trainer.fit()
    assert seen and all(POSITION_LABEL_KEY not in keys for keys in seen)
    # readers without the label at all: training and label-free selection still work
    trainer, _ = make_trainer(conf, tmp_path / 'without', 0, kind, labels=False)
    result = trainer.fit()
    assert result.best_path.is_dir() and result.steps == 6


def test_selection_on_validation_error_needs_labels_of_the_validation_split(tmp_path,
                                                                           toy_config):
    conf = replace(toy_config, loop=replace(toy_config.loop, select_metric='mean_error_m'))
    trainer, _ = make_trainer(conf, tmp_path / 'a', 0)
    result = trainer.fit()
    assert all('mean_error_m' in h for h in result.history)
    trainer, _ = make_trainer(conf, tmp_path / 'b', 0, labels=False)
    with pytest.raises(KeyError, match=POSITION_LABEL_KEY):
        trainer.fit()


def test_reported_validation_error_is_logged_but_selection_stays_on_the_loss(tmp_path,
                                                                            toy_config):
    conf = replace(toy_config, loop=replace(toy_config.loop, epochs=3, report_val_error=True))
    trainer, _ = make_trainer(conf, tmp_path, 0)
    result = trainer.fit()
    for h in result.history:
        assert {'mean_error_m', 'r1_m', 'r5_m', 'lateral_r1_m', 'longitudinal_r1_m'} <= set(h)
        assert 0.0 <= h['r1_m'] <= h['r5_m'] <= 1.0
    losses = [h['loss'] for h in result.history]
    best_epoch = min(range(3), key=losses.__getitem__) + 1
    _, _, record = load_trained_model(result.best_path)
    assert record['provenance']['epoch'] == best_epoch


def test_best_checkpoint_is_the_lowest_validation_loss(tmp_path, toy_config):
    conf = replace(toy_config, loop=replace(toy_config.loop, epochs=3))
    trainer, _ = make_trainer(conf, tmp_path, 0)
    result = trainer.fit()
    losses = [h['loss'] for h in result.history]
    best_epoch = min(range(3), key=losses.__getitem__) + 1
    model, _, record = load_trained_model(result.best_path)
    assert record['provenance']['epoch'] == best_epoch
    assert record['provenance']['validation']['loss'] == pytest.approx(min(losses))
    assert (tmp_path / 'last').is_dir()


def test_fixed_schedule_keeps_the_final_epoch_whatever_the_validation_loss(tmp_path,
                                                                           toy_config):
    rising = [0.1, 0.5, 0.9]  # validation loss that grows: 'loss' would keep epoch 1
    best_epochs = {}
    for select in ('last', 'loss'):
        conf = replace(toy_config, loop=replace(toy_config.loop, epochs=3, select_metric=select))
        trainer, _ = make_trainer(conf, tmp_path / select, 0)
        trainer.validate = lambda epoch: {'loss': rising[epoch]}
        result = trainer.fit()
        assert [h['loss'] for h in result.history] == rising  # still validated and logged
        best, _, record = load_trained_model(result.best_path)
        best_epochs[select] = record['provenance']['epoch']
    assert best_epochs == {'last': 3, 'loss': 1}
    last, _, _ = load_trained_model(tmp_path / 'last' / 'last')
    best, _, _ = load_trained_model(tmp_path / 'last' / 'best')
    for a, b in zip(best.state_dict().values(), last.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_distillation_presets_use_a_fixed_schedule():
    assert preset('synthetic_bench', 'distill').loop.select_metric == 'last'
    assert preset('vigor_cross', 'distill').loop.select_metric == 'last'
    assert preset('vigor_cross', 'location').loop.select_metric == 'loss'


def test_run_refuses_a_different_config_and_skips_a_finished_run(tmp_path, toy_config,
                                                                 monkeypatch):
    paths = RunPaths(tmp_path / 'run')
    best = train_location(toy_config, paths)
    assert best == tmp_path / 'run' / 'best'
    model, model_config, _ = load_trained_model(best)
    assert model_config == toy_config.model
    monkeypatch.setattr(Trainer, 'fit', lambda self: pytest.fail('finished run retrained'))
    assert train_location(toy_config, paths) == best
    other = replace(toy_config, optim=replace(toy_config.optim, lr=1e-3))
    with pytest.raises(ConfigMismatchError, match='optim.lr'):
        train_location(other, paths)


def test_tensorboard_and_loss_logs(tmp_path, toy_config):
    conf = replace(toy_config, loop=replace(toy_config.loop, tensorboard=True))
    trainer, _ = make_trainer(conf, tmp_path, 0)
    trainer.fit()
    events = list((tmp_path / 'tensorboard').glob('events.out.tfevents.*'))
    assert events and events[0].stat().st_size > 0


def test_a_finished_run_extended_with_more_epochs_equals_the_longer_run(tmp_path, toy_config):
    """Resuming with a larger loop.epochs continues from the saved state: with the constant
    schedule the weights are those of one run started with that many epochs."""
    longer = replace(toy_config, loop=replace(toy_config.loop, epochs=3))
    extended = train_location(toy_config, RunPaths(tmp_path / 'extended'))
    assert read_training_meta(tmp_path / 'extended' / 'state')['progress']['epoch'] == 2
    extended = train_location(longer, RunPaths(tmp_path / 'extended'))
    straight = train_location(longer, RunPaths(tmp_path / 'straight'))
    assert read_training_meta(tmp_path / 'extended' / 'state')['progress']['epoch'] == 3
    a, _, _ = load_trained_model(extended)
    b, _, _ = load_trained_model(straight)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    with pytest.raises(ConfigMismatchError, match='not shortened'):
        train_location(toy_config, RunPaths(tmp_path / 'extended'))
