"""The descriptor (CCVPE) estimator through the training machinery: its supervised teacher
loss, GeoDistill in paired mode only, and the label-free validation fallback."""
import pytest
import torch
from torch.utils.data import default_collate

from geodistill_core.models.ccvpe import tiny_descriptor_config
from geodistill_core.training import (
    DistillConfig,
    DistillObjective,
    ModelConfig,
    SupervisedObjective,
    WeakConfig,
    batch_to_location_inputs,
    build_model,
    location_scores,
)
from geodistill_core.training.flat_world import FlatWorldDataset


@pytest.fixture(scope='module')
def ccvpe_batch():
    ds = FlatWorldDataset('train', size=4, ground_hw=(32, 128), sat_size=64)
    return default_collate([ds[i] for i in range(4)])


def ccvpe_model():
    torch.manual_seed(0)
    estimator = tiny_descriptor_config(64, n_orientations=4).to_dict()
    return build_model(ModelConfig(kind='ccvpe', estimator=estimator))


def test_supervised_teacher_uses_the_ccvpe_loss_and_keeps_labels(ccvpe_batch):
    objective = SupervisedObjective(ccvpe_model())
    assert objective.strip_labels is False
    terms = objective.train_module(ccvpe_batch, 0)
    assert set(terms) == {'loss', 'heatmap', 'infonce', 'orientation'}
    terms['loss'].backward()
    assert all(p.grad is not None for p in objective.model.parameters() if p.requires_grad)
    unlabelled = {k: v for k, v in ccvpe_batch.items() if k != 'eval_true_offset_en_m'}
    with pytest.raises(KeyError, match='eval_true_offset_en_m'):
        objective.train_module(unlabelled, 0)


def test_geodistill_runs_on_the_descriptor_estimator_without_labels(ccvpe_batch):
    unlabelled = {k: v for k, v in ccvpe_batch.items() if k != 'eval_true_offset_en_m'}
    objective = DistillObjective(ccvpe_model(), DistillConfig(), WeakConfig())
    out = objective.train_module(unlabelled, 3)
    out['loss'].backward()
    assert all(p.grad is None for p in objective.teacher.parameters())
    assert 0.4 < out['visible_fraction'].item() < 0.7
    # no all-pairs mode: the label-free validation loss is the distillation loss. With no
    # mask and student = teacher it is the teacher's entropy at tau 0.06, level mean:
    same = DistillObjective(ccvpe_model().eval(), DistillConfig(mask='none'), WeakConfig())
    val = same.validation_step(unlabelled)
    with torch.no_grad():
        scores = location_scores(same.teacher, batch_to_location_inputs(unlabelled)).scores
    entropies = []
    for level in scores:
        p = torch.softmax(level.double().flatten(1) / 0.06, dim=1)
        entropies.append(float(-(p * p.clamp_min(1e-300).log()).sum(dim=1).mean()))
    expected = sum(entropies) / len(entropies)
    loss_sum, count = val['loss']
    assert count == 4 and loss_sum / count == pytest.approx(expected, rel=1e-4)
    assert val['distill_loss'] == val['loss'] and expected > 0.1
    with pytest.raises(ValueError, match='all-pairs'):
        DistillObjective(ccvpe_model(), DistillConfig(mode='augment'), WeakConfig())
