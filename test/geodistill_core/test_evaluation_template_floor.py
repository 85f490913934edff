"""Choosing the template energy floor: the checkpoint edit round-trips into the model, the
choice is the lowest validation mean, bad inputs are clear errors."""
import json

import pytest
from test_evaluation import conf, save_tiny

from geodistill_core.evaluation.template_floor import choose_template_floor, write_template_floor
from geodistill_core.localizer import Localizer


def test_written_floor_reaches_the_loaded_estimator_and_the_weights_stay(tmp_path):
    ckpt = save_tiny(tmp_path / 'ckpt')
    before = Localizer.from_checkpoints(ckpt, device='cpu')
    assert before.location_model.estimator.config.template_energy_floor == 1.0
    copy = write_template_floor(ckpt, 0.5, tmp_path / 'copy')
    after = Localizer.from_checkpoints(copy, device='cpu')
    assert after.location_model.estimator.config.template_energy_floor == 0.5
    for (name, a), (_, b) in zip(before.location_model.state_dict().items(),
                                 after.location_model.state_dict().items(), strict=True):
        assert a.equal(b), name
    original = json.loads((ckpt / 'config.json').read_text())
    assert original['hyper_parameters']['model'].get('template_energy_floor', 1.0) == 1.0
    with pytest.raises(FileExistsError):
        write_template_floor(ckpt, 0.5, tmp_path / 'copy')
    with pytest.raises(ValueError, match='in \\[0, 1\\]'):
        write_template_floor(ckpt, 1.5)


def test_non_correlation_models_are_refused(tmp_path):
    ckpt = save_tiny(tmp_path / 'orientation', 'orientation')
    with pytest.raises(ValueError, match='not a correlation location model'):
        write_template_floor(ckpt, 0.5)
    with pytest.raises(ValueError, match='not a correlation location model'):
        write_template_floor(ckpt, 0.5, tmp_path / 'copy')
    assert not (tmp_path / 'copy').exists()  # a refused update leaves no copy behind


def test_choice_is_the_candidate_with_the_lowest_validation_mean(tmp_path):
    ckpt = save_tiny(tmp_path / 'ckpt')
    report = choose_template_floor(ckpt, conf(max_items=4, yaw_noise_deg=0.0), None,
                                   ['test'], [1.0, 0.0], work_dir=tmp_path)
    means = {row['floor']: row['mean_m'] for row in report['candidates']}
    assert set(means) == {1.0, 0.0} and all(row['items'] == 4 for row in report['candidates'])
    assert report['chosen'] == min(means, key=means.get)
    assert report['candidates'][0]['per_split']['test']['items'] == 4
    with pytest.raises(ValueError, match='candidate'):
        choose_template_floor(ckpt, conf(), None, ['test'], [])
