"""The descriptor (CCVPE) estimator through the training machinery: its supervised teacher
loss, GeoDistill in paired mode only, and the label-free validation fallback."""
import pytest
import torch
from torch.utils.data import default_collate

from geodistill_core.losses import DistillationLossConfig
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
    # mask and student = teacher it is the teacher's entropy at logits_tau (1: CCVPE scores
    # are logits read at temperature 1 by inference, not cosines), level mean:
    same = DistillObjective(ccvpe_model().eval(), DistillConfig(mask='none'), WeakConfig())
    val = same.validation_step(unlabelled)
    with torch.no_grad():
        scores = location_scores(same.teacher, batch_to_location_inputs(unlabelled)).scores
    entropies = []
    for level in scores:
        p = torch.softmax(level.double().flatten(1), dim=1)
        entropies.append(float(-(p * p.clamp_min(1e-300).log()).sum(dim=1).mean()))
    expected = sum(entropies) / len(entropies)
    loss_sum, count = val['loss']
    assert count == 4 and loss_sum / count == pytest.approx(expected, rel=1e-4)
    assert val['distill_loss'] == val['loss'] and expected > 0.1
    with pytest.raises(ValueError, match='all-pairs'):
        DistillObjective(ccvpe_model(), DistillConfig(mode='augment'), WeakConfig())


def test_ccvpe_targets_use_logits_tau_not_the_cosine_tau():
    """CCVPE scores are logits: the distillation target uses loss.logits_tau (1 by
    default, the teacher's inference distribution), not the cosine tau 0.06 (which would
    multiply the logit gaps by 16.7); the value of the loss is pinned by
    test_geodistill_runs_on_the_descriptor_estimator_without_labels."""
    objective = DistillObjective(ccvpe_model().eval(), DistillConfig(), WeakConfig())
    assert objective.train_module.loss_config.tau == 1.0
    sharp = DistillObjective(ccvpe_model().eval(), DistillConfig(
        loss=DistillationLossConfig(logits_tau=0.5)), WeakConfig())
    assert sharp.train_module.loss_config.tau == 0.5
    # the correlation estimator keeps tau 0.06 on its cosine scores
    from geodistill_core.training import ModelConfig as MC
    corr = build_model(MC(ground_backbone='vgg16_unet_tiny', satellite_backbone='vgg16_unet_tiny',
                          pretrained=False))
    assert DistillObjective(corr, DistillConfig(), WeakConfig()).train_module.loss_config.tau \
        == 0.06


def test_supervised_loss_weights_come_from_the_config(ccvpe_batch):
    """loss = w_h heatmap + w_i InfoNCE + w_o orientation, the weights from
    TrainConfig.supervised (CCVPE's 1e4 / 10 available as CCVPE_PAPER_LOSS)."""
    from geodistill_core.models.ccvpe import CCVPE_PAPER_LOSS, CcvpeLossConfig
    from geodistill_core.training import TrainConfig
    from geodistill_core.training.config_json import apply_overrides
    conf = apply_overrides(TrainConfig(), ['supervised.infonce_weight=1e4',
                                           'supervised.orientation_weight=10'])
    assert (conf.supervised.infonce_weight, conf.supervised.orientation_weight) == (1e4, 10.0)
    assert (CCVPE_PAPER_LOSS.infonce_weight, CCVPE_PAPER_LOSS.orientation_weight,
            CCVPE_PAPER_LOSS.heatmap_levels) == (1e4, 10.0, 'finest')
    model = ccvpe_model()
    with torch.no_grad():
        plain = SupervisedObjective(model).train_module(ccvpe_batch, 0)
        weighted = SupervisedObjective(model, ccvpe_loss=CcvpeLossConfig(
            heatmap_weight=0.5, infonce_weight=1e4, orientation_weight=10.0)).train_module(
            ccvpe_batch, 0)
    expected = (0.5 * plain['heatmap'] + 1e4 * plain['infonce'] + 10 * plain['orientation'])
    assert weighted['loss'].item() == pytest.approx(expected.item(), rel=1e-5)
    assert float(plain['loss']) == pytest.approx(
        float(plain['heatmap'] + plain['infonce'] + plain['orientation']), rel=1e-6)


def test_pretrained_b0_encoders_load_the_configured_files(tmp_path):
    from safetensors.torch import save_file
    import timm
    torch.manual_seed(0)
    state = timm.create_model('efficientnet_b0', pretrained=False).state_dict()
    path = tmp_path / 'b0.safetensors'
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    from geodistill_core.models.ccvpe import DescriptorEstimatorConfig
    b0 = DescriptorEstimatorConfig(satellite_size_px=64, n_orientations=4).to_dict()
    model = build_model(ModelConfig(kind='ccvpe', estimator=b0, ground_weights=str(path),
                                    satellite_weights=str(path)))
    for encoder in (model.estimator.ground_encoder, model.estimator.satellite_encoder):
        torch.testing.assert_close(encoder.blocks[6][0].conv_pwl.weight,
                                   state['blocks.6.0.conv_pwl.weight'])
    with pytest.raises(FileNotFoundError, match='satellite_weights'):
        build_model(ModelConfig(kind='ccvpe', estimator=b0, ground_weights=str(path)))
    random_init = build_model(ModelConfig(kind='ccvpe', estimator=b0, pretrained=False))
    assert not torch.equal(random_init.estimator.satellite_encoder.conv_stem.weight,
                           state['conv_stem.weight'])
