"""Training states: exact round trip, checksums, atomic replacement."""
import random

import numpy as np
import pytest
import torch
from torch import nn

from geodistill_core.training import load_training_state, save_training_state
from geodistill_core.training.state import TrainingStateError


def setup(seed):
    torch.manual_seed(seed)
    model = nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    return model, opt, sched


def step(model, opt, sched):
    loss = model(torch.randn(5, 4)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()


def test_round_trip_restores_weights_optimizer_scheduler_and_rng(tmp_path):
    model, opt, sched = setup(0)
    for _ in range(3):
        step(model, opt, sched)
    save_training_state(tmp_path / 'state', {'model': model}, opt, {'step': 3, 'epoch': 1},
                        sched)
    draws = (torch.rand(3), np.random.rand(2), random.random())
    step(model, opt, sched)  # the uninterrupted run's 4th step (random data from the RNG)

    resumed, opt2, sched2 = setup(1)  # another init: everything must come from the state
    progress = load_training_state(tmp_path / 'state', {'model': resumed}, opt2, sched2)
    assert progress == {'step': 3, 'epoch': 1}
    again = (torch.rand(3), np.random.rand(2), random.random())
    assert torch.equal(draws[0], again[0]) and np.array_equal(draws[1], again[1])
    assert draws[2] == again[2]
    step(resumed, opt2, sched2)
    for key, value in model.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert sched.get_last_lr() == sched2.get_last_lr() == [1e-2 / 5]


def test_damaged_or_mismatched_state_is_refused(tmp_path):
    model, opt, sched = setup(0)
    save_training_state(tmp_path / 's', {'model': model}, opt, {'step': 0})
    with pytest.raises(TrainingStateError, match='modules'):
        load_training_state(tmp_path / 's', {'student': model}, opt)
    data = bytearray((tmp_path / 's' / 'model.safetensors').read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / 's' / 'model.safetensors').write_bytes(bytes(data))
    with pytest.raises(TrainingStateError, match='SHA-256'):
        load_training_state(tmp_path / 's', {'model': model}, opt)
    with pytest.raises(TrainingStateError, match='no training state'):
        load_training_state(tmp_path / 'missing', {'model': model}, opt)


def test_a_failed_save_keeps_the_previous_state(tmp_path, monkeypatch):
    model, opt, _ = setup(0)
    save_training_state(tmp_path / 's', {'model': model}, opt, {'step': 1})
    with torch.no_grad():
        model.weight.add_(1.0)

    def crash(*args, **kwargs):
        raise OSError('disk full')
    monkeypatch.setattr('geodistill_core.atomic_dir._write_synced', crash)
    with pytest.raises(OSError):
        save_training_state(tmp_path / 's', {'model': model}, opt, {'step': 2})
    monkeypatch.undo()
    fresh, opt2, _ = setup(5)
    assert load_training_state(tmp_path / 's', {'model': fresh}, opt2) == {'step': 1}
    torch.testing.assert_close(fresh.weight, model.weight - 1.0)
    assert [p.name for p in tmp_path.iterdir()] == ['s']  # no temporary leftovers
