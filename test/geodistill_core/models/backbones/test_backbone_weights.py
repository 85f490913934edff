"""read_state_dict and load_state_dict_strict: file formats and the refusal of mismatches."""
import pytest
from safetensors.torch import save_file
import torch
from torch import nn

from geodistill_core.models.backbones import (
    WeightsMismatchError,
    load_state_dict_strict,
    read_state_dict,
)


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


@pytest.mark.parametrize('wrapper', [None, 'state_dict', 'model'])
def test_reads_torch_files_and_common_wrappers(tmp_path, wrapper):
    state_dict = _net().state_dict()
    path = tmp_path / 'w.pth'
    torch.save({wrapper: state_dict} if wrapper else state_dict, path)
    assert read_state_dict(path, '').keys() == state_dict.keys()


def test_reads_safetensors(tmp_path):
    state_dict = _net().state_dict()
    save_file(state_dict, str(tmp_path / 'w.safetensors'))
    loaded = read_state_dict(tmp_path / 'w.safetensors', '')
    assert all(torch.equal(loaded[k], v) for k, v in state_dict.items())


def test_refuses_pickled_objects_and_non_state_dicts(tmp_path):
    torch.save(_net(), tmp_path / 'module.pth')  # a whole pickled module: weights_only refuses
    with pytest.raises(Exception, match='(?i)weights_only|unsupported|global'):
        read_state_dict(tmp_path / 'module.pth', '')
    torch.save([torch.zeros(1)], tmp_path / 'list.pth')
    with pytest.raises(ValueError, match='does not hold a state dict'):
        read_state_dict(tmp_path / 'list.pth', '')


def test_missing_file_carries_the_hint(tmp_path):
    with pytest.raises(FileNotFoundError, match='absent.pth. get it from X'):
        read_state_dict(tmp_path / 'absent.pth', 'get it from X')


def test_strict_load_and_explicit_allow_list(caplog):
    source, target = _net(), _net()
    state_dict = {**source.state_dict(), 'fc.weight': torch.zeros(2)}
    with pytest.raises(WeightsMismatchError, match=r"1 unexpected \['fc.weight'\]"):
        load_state_dict_strict(target, state_dict, source='file.pth')
    with pytest.raises(WeightsMismatchError):  # patterns must match the whole key
        load_state_dict_strict(target, state_dict, 'file.pth', ignorable_unexpected=['fc'])
    with caplog.at_level('INFO'):
        load_state_dict_strict(target, state_dict, 'file.pth', ignorable_unexpected=[r'fc\..+'])
    assert "ignored 1 allowed keys ['fc.weight']" in caplog.text
    assert torch.equal(target[0].weight, source[0].weight)


def test_missing_and_mis_shaped_keys_are_refused_and_logged(caplog):
    state_dict = _net().state_dict()
    del state_dict['1.running_var']
    state_dict['0.weight'] = torch.zeros(4, 3, 5, 5)
    with pytest.raises(WeightsMismatchError, match=r"1 missing \['1.running_var'\]") as error:
        load_state_dict_strict(_net(), state_dict, source='file.pth')
    assert '0.weight: file (4, 3, 5, 5) vs model (4, 3, 3, 3)' in str(error.value)
    assert 'missing' in caplog.text and 'shape mismatch' in caplog.text
