"""Configs: presets round trip through JSON, overrides parse by type, resume refusal."""
from dataclasses import replace
import json

import pytest

from geodistill_core.training import (
    PRESET_NAMES,
    ConfigMismatchError,
    DataConfig,
    TrainConfig,
    apply_overrides,
    check_resume_config,
    config_diff,
    from_dict,
    load_config,
    preset,
    save_config,
    to_dict,
)
from geodistill_core.training.cli import build_parser, config_from_args


@pytest.mark.parametrize('name', PRESET_NAMES)
@pytest.mark.parametrize('task', ['location', 'distill', 'orientation'])
def test_every_preset_round_trips_through_json(tmp_path, name, task):
    conf = preset(name, task)
    path = save_config(conf, tmp_path / 'config.json')
    back = load_config(path)
    assert back == conf
    assert config_diff(conf, back) == []
    assert json.loads(path.read_text())['task'] == task


def test_preset_values_follow_the_paper():
    base, dist = preset('vigor_cross', 'location'), preset('vigor_cross', 'distill')
    assert (base.optim.lr, base.optim.weight_decay, base.optim.grad_clip_norm) == (1e-4, 1e-5, 1.0)
    assert base.data.batch_size == 8 and base.data.area == 'cross'
    assert (base.loop.epochs, dist.loop.epochs) == (10, 20)
    assert dist.distill.loss.tau == 0.06 and dist.distill.fov_range_deg == (180.0, 240.0)
    assert dist.distill.ema_alpha == 0.9 and dist.distill.ema_every_steps == 0
    assert preset('vigor_same').data.area == 'same'
    kitti = preset('kitti', 'distill')
    assert kitti.model.camera_model == 'pinhole' and kitti.loop.epochs == 10
    assert kitti.distill.stripe_frac_range == (0.17, 0.25)
    for paper in ('vigor_cross', 'vigor_same', 'kitti'):  # G2SWeakly's correlation details
        conf = preset(paper, 'distill')
        assert (conf.model.ground_backbone, conf.model.satellite_backbone) == (
            'vgg16_unet_g2s', 'vgg16_unet_g2s')
        assert (conf.model.positions, conf.model.confidence_weighting) == ('valid', 'both')
        assert conf.distill.ema_scope == 'parameters'
        assert conf.distill.patch_px == (14, 14)
        assert conf.distill.patch_frac_range == (1 / 3, 1 / 2)
    assert preset('synthetic_bench', 'distill').distill.ema_scope == 'state'
    assert preset('synthetic_bench').model.confidence_weighting == 'ground'
    with pytest.raises(ValueError, match='unknown preset'):
        preset('nope')


def test_from_dict_rejects_unknown_keys_and_wrong_types():
    values = to_dict(preset('tiny'))
    values['optim']['lrr'] = 1.0
    with pytest.raises(ValueError, match='lrr'):
        from_dict(TrainConfig, values)
    values = to_dict(preset('tiny'))
    values['loop']['progress'] = 'False'
    with pytest.raises(ValueError, match='true or false'):
        from_dict(TrainConfig, values)


def test_overrides_parse_with_the_field_type():
    conf = apply_overrides(preset('tiny', 'distill'), [
        'optim.lr=3e-4', 'loop.progress=false', 'distill.loss.sharpen=no',
        'distill.fov_range_deg=[90, 120]', 'data.cities=["A", "B"]', 'optim.grad_clip_norm=none'])
    assert conf.optim.lr == 3e-4 and conf.loop.progress is False
    assert conf.distill.loss.sharpen is False
    assert conf.distill.fov_range_deg == (90.0, 120.0) and conf.data.cities == ('A', 'B')
    assert conf.optim.grad_clip_norm is None
    with pytest.raises(ValueError, match='boolean'):
        apply_overrides(conf, ['loop.progress=maybe'])
    with pytest.raises(ValueError, match='no field'):
        apply_overrides(conf, ['optim.momentum=1'])


def test_resume_is_refused_with_a_diff(tmp_path):
    conf = preset('tiny')
    path = save_config(conf, tmp_path / 'config.json')
    check_resume_config(path, conf)  # same config: fine
    other = replace(conf, optim=replace(conf.optim, lr=5e-4))
    with pytest.raises(ConfigMismatchError, match=r'optim\.lr: 0\.0001 -> 0\.0005'):
        check_resume_config(path, other)


def test_resume_may_extend_the_epochs_but_not_shorten_them(tmp_path):
    conf = preset('tiny')
    path = save_config(conf, tmp_path / 'config.json')
    longer = replace(conf, loop=replace(conf.loop, epochs=conf.loop.epochs + 3))
    assert check_resume_config(path, longer) is True
    assert check_resume_config(path, conf) is False
    shorter = replace(conf, loop=replace(conf.loop, epochs=conf.loop.epochs - 1))
    with pytest.raises(ConfigMismatchError, match='not shortened'):
        check_resume_config(path, shorter)
    longer_other = replace(longer, optim=replace(conf.optim, lr=5e-4))
    with pytest.raises(ConfigMismatchError, match=r'optim\.lr') as err:
        check_resume_config(path, longer_other)
    assert 'loop.epochs' not in str(err.value)


def test_validation_on_a_test_split_is_refused():
    with pytest.raises(ValueError, match='test split'):
        DataConfig(val_split='test1')
    with pytest.raises(ValueError, match='test split'):
        DataConfig(val_split='Test')


def test_cli_booleans_never_parse_a_string_as_true():
    parser = build_parser('distill')
    base = ['--preset', 'tiny', '--output', 'x', '--base-checkpoint', 'b']
    with pytest.raises(SystemExit):
        parser.parse_args(base + ['--sharpen', 'False'])
    off = config_from_args(parser.parse_args(base + ['--no-sharpen']), 'distill')
    on = config_from_args(parser.parse_args(base + ['--sharpen']), 'distill')
    default = config_from_args(parser.parse_args(base), 'distill')
    assert off.distill.loss.sharpen is False and on.distill.loss.sharpen is True
    assert default.distill.loss.sharpen is True


def test_cli_flags_reach_the_config():
    args = build_parser('distill').parse_args([
        '--preset', 'vigor_cross', '--output', 'x', '--base-checkpoint', 'b', '--mask',
        'random_patch', '--fov-range', '90', '150', '--mode', 'augment', '--target',
        'single_mode', '--teacher-update', 'fixed', '--ema-every-steps', '50', '--epochs', '3',
        '--set', 'data.batch_size=6'])
    conf = config_from_args(args, 'distill')
    d = conf.distill
    assert (d.mask, d.fov_range_deg, d.mode, d.loss.target, d.teacher_update,
            d.ema_every_steps) == ('random_patch', (90.0, 150.0), 'augment', 'single_mode',
                                   'fixed', 50)
    assert conf.loop.epochs == 3 and conf.data.batch_size == 6 and conf.task == 'distill'
