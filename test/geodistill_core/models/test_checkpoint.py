"""Checkpoints: bit-identical round trips, provenance, atomic writes, and clear failures."""
import hashlib
import json
import pickle
import subprocess
import sys

import pytest
from safetensors.torch import load_file, save_file
import torch
from torch import nn

from geodistill_core import atomic_dir
from geodistill_core.models.backbones import BackboneConfig, build_backbone
from geodistill_core.models.backbones.architecture import backbone_checkpoint_config
from geodistill_core.models.checkpoint import (
    ArchitectureMismatchError,
    CheckpointConfigError,
    CheckpointError,
    CheckpointExistsError,
    CheckpointFormatVersionError,
    CheckpointNotFoundError,
    CheckpointWeightsError,
    CorruptCheckpointError,
    UnknownArchitectureError,
    load_checkpoint,
    register_architecture,
    registered_architectures,
    save_checkpoint,
    update_checkpoint_config,
)
from geodistill_core.version import __version__

TEST_ARCHITECTURE = 'test_tiny_net'


def build_test_net(config: dict) -> nn.Module:
    """(B, 3, H, W) -> (B, 2, H, W); BatchNorm so buffers (incl. int64) round-trip too."""
    channels = config['hyper_parameters']['channels']
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels),
                         nn.ReLU(), nn.Conv2d(channels, 2, 1))


register_architecture(TEST_ARCHITECTURE, build_test_net)


def _config(channels: int = 4) -> dict:
    return {'architecture': TEST_ARCHITECTURE, 'hyper_parameters': {'channels': channels},
            'input_sizes': {'satellite_hw': [16, 16]}, 'meters_per_px': 0.5}


@pytest.fixture
def saved(tmp_path):
    """A trained-looking test net saved at tmp_path / 'run' / 'ckpt'."""
    torch.manual_seed(0)
    model = build_test_net(_config())
    model.train()(torch.rand(4, 3, 16, 16))  # non-default BatchNorm statistics
    model.eval()
    path = save_checkpoint(tmp_path / 'run' / 'ckpt', model, _config(),
                           {'dataset': 'synthetic', 'steps': 12})
    return path, model


def _outputs(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(images)
    return out if isinstance(out, list) else [out]


def test_round_trip_is_bit_identical(saved):
    path, model = saved
    loaded, record = load_checkpoint(path, architecture=TEST_ARCHITECTURE)
    images = torch.rand(2, 3, 16, 16)
    assert not loaded.training
    for a, b in zip(_outputs(model, images), _outputs(loaded, images), strict=True):
        assert torch.equal(a, b)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value) and loaded.state_dict()[key].dtype \
            == value.dtype


def test_config_json_describes_the_model(saved):
    path, _ = saved
    record = json.loads((path / 'config.json').read_text())
    assert record['format'] == 'geodistill-checkpoint' and record['format_version'] == 1
    assert record['architecture'] == TEST_ARCHITECTURE
    assert record['hyper_parameters'] == {'channels': 4}
    assert record['input_sizes'] == {'satellite_hw': [16, 16]}
    assert record['meters_per_px'] == 0.5
    assert record['geodistill_version'] == __version__
    provenance = record['provenance']
    assert provenance['dataset'] == 'synthetic' and provenance['steps'] == 12
    assert provenance['date'].endswith('+00:00')
    assert 'git_commit' in provenance and 'git_dirty' in provenance
    weights = (path / 'model.safetensors').read_bytes()
    assert record['weights']['sha256'] == hashlib.sha256(weights).hexdigest()
    assert sorted(p.name for p in path.iterdir()) == ['config.json', 'model.safetensors']


def test_given_provenance_wins_over_detected(tmp_path):
    path = save_checkpoint(tmp_path / 'c', build_test_net(_config()), _config(),
                           {'git_commit': 'abc123', 'date': '2025-01-01'})
    provenance = json.loads((path / 'config.json').read_text())['provenance']
    assert provenance['git_commit'] == 'abc123' and provenance['date'] == '2025-01-01'


def test_loading_never_unpickles(saved, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('unpickling during load_checkpoint')
    monkeypatch.setattr(pickle, 'loads', refuse)
    monkeypatch.setattr(pickle, 'load', refuse)
    monkeypatch.setattr(pickle, 'Unpickler', refuse)
    monkeypatch.setattr(torch, 'load', refuse)
    load_checkpoint(saved[0])


@pytest.mark.parametrize(('name', 'pretrained'), [
    ('vgg16_unet_tiny', False), ('efficientnet_b0_tiny', False),
    ('efficientnet_lite0_tiny', False), ('dinov2_dpt_tiny', False),
    ('efficientnet_lite0', True)])
def test_bare_backbones_round_trip(tmp_path, name, pretrained):
    config = BackboneConfig(name, weights=None, pretrained=pretrained)
    model = build_backbone(config).eval()
    path = save_checkpoint(tmp_path / name, model, backbone_checkpoint_config(config, (64, 96)),
                           {'dataset': None, 'steps': 0})
    loaded, record = load_checkpoint(path, architecture='backbone')
    assert record['hyper_parameters']['backbone'] == config.to_dict()
    images = torch.rand(2, 3, 64, 96)
    for a, b in zip(_outputs(model, images), _outputs(loaded, images), strict=True):
        assert torch.equal(a, b)
    if name == 'dinov2_dpt_tiny':
        assert not any(p.requires_grad for p in loaded.trunk.parameters())


def test_overwrite_replaces_atomically_and_leaves_no_temporaries(saved):
    path, _ = saved
    model = build_test_net(_config())
    save_checkpoint(path, model, _config(), {'steps': 13})
    assert load_checkpoint(path)[1]['provenance']['steps'] == 13
    assert sorted(p.name for p in path.parent.iterdir()) == ['ckpt']


def test_failed_write_keeps_the_previous_checkpoint(saved, monkeypatch):
    path, model = saved
    before = (path / 'model.safetensors').read_bytes()

    def fail(*args, **kwargs):
        raise OSError('disk full')
    monkeypatch.setattr(atomic_dir, '_write_synced', fail)
    with pytest.raises(OSError, match='disk full'):
        save_checkpoint(path, model, _config(), {'steps': 99})
    assert (path / 'model.safetensors').read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ['ckpt']


def test_refuses_to_overwrite_what_is_not_a_checkpoint(tmp_path):
    (tmp_path / 'notes').mkdir()
    (tmp_path / 'notes' / 'todo.txt').write_text('keep me')
    with pytest.raises(CheckpointExistsError, match='not a geodistill checkpoint'):
        save_checkpoint(tmp_path / 'notes', build_test_net(_config()), _config(), {})
    assert (tmp_path / 'notes' / 'todo.txt').read_text() == 'keep me'


# ---- save-time validation -----------------------------------------------------------------

@pytest.mark.parametrize(('config', 'error', 'message'), [
    ({k: v for k, v in _config().items() if k != 'meters_per_px'}, CheckpointConfigError,
     'lacks'),
    ({**_config(), 'provenance': {}}, CheckpointConfigError, 'reserved'),
    ({**_config(), 'meters_per_px': float('nan')}, CheckpointConfigError, 'JSON'),
    ({**_config(), 'input_sizes': {'hw': torch.tensor([16, 16])}}, CheckpointConfigError,
     'JSON'),
    ({**_config(), 'architecture': 'nobody_registered_this'}, UnknownArchitectureError,
     'nobody_registered_this'),
    (_config(channels=5), CheckpointConfigError, 'does not rebuild'),
])
def test_save_refuses_configs_that_could_not_be_loaded(tmp_path, config, error, message):
    with pytest.raises(error, match=message):
        save_checkpoint(tmp_path / 'c', build_test_net(_config()), config, {})
    assert not (tmp_path / 'c').exists()


def test_registering_a_taken_name_is_refused():
    register_architecture(TEST_ARCHITECTURE, build_test_net)  # same builder: harmless
    with pytest.raises(ValueError, match='already registered'):
        register_architecture(TEST_ARCHITECTURE, lambda config: nn.Identity())
    assert {'backbone', TEST_ARCHITECTURE} <= set(registered_architectures())


# ---- load-time failures -------------------------------------------------------------------

def _edit_config(path, **changes):
    record = json.loads((path / 'config.json').read_text())
    record.update(changes)
    (path / 'config.json').write_text(json.dumps(record))


def _rewrite_weights(path, edit):
    """Apply edit(tensors) and keep the checksum consistent (a well-formed but wrong file)."""
    tensors = load_file(str(path / 'model.safetensors'))
    edit(tensors)
    save_file(tensors, str(path / 'model.safetensors'))
    digest = hashlib.sha256((path / 'model.safetensors').read_bytes()).hexdigest()
    record = json.loads((path / 'config.json').read_text())
    _edit_config(path, weights={**record['weights'], 'sha256': digest})


def _truncate(path):
    data = (path / 'model.safetensors').read_bytes()
    (path / 'model.safetensors').write_bytes(data[: len(data) // 2])


def _flip_header(path):
    data = bytearray((path / 'model.safetensors').read_bytes())
    for index in range(8, 16):  # the JSON header starts after its 8-byte length
        data[index] ^= 0xFF
    (path / 'model.safetensors').write_bytes(bytes(data))


def _flip_tensor_byte(path):
    data = bytearray((path / 'model.safetensors').read_bytes())
    data[-3] ^= 0x01
    (path / 'model.safetensors').write_bytes(bytes(data))


CORRUPTIONS = {
    'truncated weights': (_truncate, CorruptCheckpointError, 'truncated or damaged'),
    'flipped header bytes': (_flip_header, CorruptCheckpointError, 'truncated or damaged'),
    'flipped tensor byte': (_flip_tensor_byte, CorruptCheckpointError, 'SHA-256'),
    'weights missing': (lambda p: (p / 'model.safetensors').unlink(), CorruptCheckpointError,
                        'model.safetensors is missing'),
    'config missing': (lambda p: (p / 'config.json').unlink(), CorruptCheckpointError,
                       'config.json is missing'),
    'config not JSON': (lambda p: (p / 'config.json').write_text('{"format": "geodis'),
                        CorruptCheckpointError, 'not valid JSON'),
    'config not ours': (lambda p: (p / 'config.json').write_text('{"format": "other"}'),
                        CorruptCheckpointError, 'not a geodistill checkpoint config'),
    'newer format': (lambda p: _edit_config(p, format_version=2),
                     CheckpointFormatVersionError, 'newer than the supported 1.*upgrade'),
    'older format': (lambda p: _edit_config(p, format_version=0),
                     CheckpointFormatVersionError, 'older than the oldest supported'),
    'version not int': (lambda p: _edit_config(p, format_version='1'), CorruptCheckpointError,
                        'must be an integer'),
    'architecture renamed': (lambda p: _edit_config(p, architecture='renamed_net'),
                             UnknownArchitectureError, "unknown architecture 'renamed_net'"),
    'hyper-parameters edited': (
        lambda p: _edit_config(p, hyper_parameters={'channels': 5}), CheckpointWeightsError,
        r'shape mismatches \[.*file \(4, 3, 3, 3\) vs model \(5, 3, 3, 3\)'),
    'tensor removed': (lambda p: _rewrite_weights(p, lambda t: t.pop('1.running_var')),
                       CheckpointWeightsError, r"1 missing \['1.running_var'\]"),
    'tensor added': (lambda p: _rewrite_weights(p, lambda t: t.update(extra=torch.zeros(1))),
                     CheckpointWeightsError, r"1 unexpected \['extra'\]"),
    'tensor reshaped': (
        lambda p: _rewrite_weights(p, lambda t: t.update({'3.bias': torch.zeros(3)})),
        CheckpointWeightsError, r'3.bias: file \(3,\) vs model \(2,\)'),
}


@pytest.mark.parametrize('case', list(CORRUPTIONS))
def test_corruption_raises_a_clear_error(saved, case):
    path, _ = saved
    corrupt, error, message = CORRUPTIONS[case]
    corrupt(path)
    with pytest.raises(error, match=message) as raised:
        load_checkpoint(path)
    assert str(path) in str(raised.value)
    assert isinstance(raised.value, CheckpointError)
    assert isinstance(raised.value, (ValueError, RuntimeError))


def test_requested_architecture_must_match(saved):
    with pytest.raises(ArchitectureMismatchError, match="'test_tiny_net', not the requested "
                       "'backbone'"):
        load_checkpoint(saved[0], architecture='backbone')


def test_missing_checkpoint_is_a_file_not_found_error(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match='no checkpoint directory') as raised:
        load_checkpoint(tmp_path / 'absent')
    assert isinstance(raised.value, FileNotFoundError)


def test_passing_the_weights_file_points_to_the_directory(saved):
    path, _ = saved
    with pytest.raises(CheckpointNotFoundError, match=f'pass {path}$'):
        load_checkpoint(path / 'model.safetensors')


def test_a_fresh_process_loads_a_backbone_checkpoint_from_the_path_alone(tmp_path):
    """Only geodistill_core.models.checkpoint is imported: built-ins register themselves."""
    config = BackboneConfig('vgg16_unet_tiny', weights=None, pretrained=False)
    model = build_backbone(config).eval()
    path = save_checkpoint(tmp_path / 'vgg', model, backbone_checkpoint_config(config), {})
    images = torch.rand(1, 3, 16, 24)
    save_file({'images': images, 'expected': _outputs(model, images)[0]},
              str(tmp_path / 'io.safetensors'))
    script = (
        'import sys, torch\n'
        'from safetensors.torch import load_file\n'
        'from geodistill_core.models.checkpoint import load_checkpoint\n'
        'model, _ = load_checkpoint(sys.argv[1])\n'
        'io = load_file(sys.argv[2])\n'
        'with torch.no_grad():\n'
        '    assert torch.equal(model(io["images"])[0], io["expected"])\n')
    subprocess.run([sys.executable, '-c', script, str(path), str(tmp_path / 'io.safetensors')],
                   check=True, timeout=120)


def test_config_update_in_place_or_in_a_copy_keeps_the_weights(saved, tmp_path):
    path, model = saved

    def add_note(record):
        record['note'] = 'calibrated'
    copy = update_checkpoint_config(path, add_note, tmp_path / 'copy')
    assert json.loads((copy / 'config.json').read_text())['note'] == 'calibrated'
    assert 'note' not in json.loads((path / 'config.json').read_text())
    assert (copy / 'model.safetensors').read_bytes() == (path / 'model.safetensors').read_bytes()
    loaded, _ = load_checkpoint(copy)  # the weights hash still binds the two files
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert update_checkpoint_config(path, add_note) == path
    assert json.loads((path / 'config.json').read_text())['note'] == 'calibrated'
    with pytest.raises(FileExistsError, match='choose a new output folder'):
        update_checkpoint_config(path, add_note, copy)

    def refuse(record):
        raise ValueError('not this one')
    with pytest.raises(ValueError, match='not this one'):
        update_checkpoint_config(path, refuse, tmp_path / 'refused')
    assert not (tmp_path / 'refused').exists()
