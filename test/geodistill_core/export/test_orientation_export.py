"""ONNX export of an orientation checkpoint: logits equal the eager estimator's, and the
decoded yaw (same yaw_bins decoding) equals OrientationEstimator.forward's."""
import json

import onnxruntime
import pytest
import torch

from geodistill_core.export.cli import main as export_main
from geodistill_core.export.metadata import read_metadata
from geodistill_core.geodesy import wrap_angle_rad
from geodistill_core.models.orientation import tiny_orientation_config
from geodistill_core.models.orientation.yaw_bins import decode_yaw_offset_deg
from geodistill_core.training.config import ModelConfig
from geodistill_core.training.models import build_model, save_trained_model

SAT_PX, PANO_HW = 64, (32, 64)


@pytest.fixture(scope='module')
def orientation_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    config = ModelConfig(kind='orientation', pretrained=False,
                         estimator=tiny_orientation_config(SAT_PX).to_dict())
    model = build_model(config).eval()
    path = tmp_path_factory.mktemp('orientation') / 'checkpoint'
    save_trained_model(path, model, config, {'ground_hw': list(PANO_HW),
                                             'satellite_hw': [SAT_PX, SAT_PX]}, 0.5,
                       {'objective': 'test'})
    return path, model


def test_orientation_export_matches_the_estimator(orientation_checkpoint, tmp_path):
    path, model = orientation_checkpoint
    out = tmp_path / 'onnx'
    assert export_main(['--checkpoint', str(path), '--out', str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ['config.json', 'orientation.json',
                                                     'orientation.onnx']
    meta = read_metadata(out / 'orientation.json')
    assert meta['bin_centers_deg'] == model.bin_centers_deg.tolist()
    assert json.loads((out / 'config.json').read_text())['hyper_parameters']['model'][
        'kind'] == 'orientation'
    session = onnxruntime.InferenceSession(str(out / 'orientation.onnx'),
                                           providers=['CPUExecutionProvider'])
    generator = torch.Generator().manual_seed(1)
    satellite = torch.rand(3, 3, SAT_PX, SAT_PX, generator=generator)
    panorama = torch.rand(3, 3, *PANO_HW, generator=generator)
    prior = torch.tensor([0.2, 1.9, -2.5])
    logits = torch.from_numpy(session.run(None, {
        'satellite_rgb': satellite.numpy(), 'panorama_rgb': panorama.numpy(),
        'prior_yaw_rad': prior.numpy()})[0])
    with torch.inference_mode():
        eager = model(satellite, panorama, prior)
    torch.testing.assert_close(logits, eager.logits, atol=1e-4, rtol=0)
    offset = torch.deg2rad(decode_yaw_offset_deg(logits, model.bin_centers_deg))
    torch.testing.assert_close(wrap_angle_rad(prior + offset), eager.yaw_rad, atol=1e-4,
                               rtol=0)
    # counter-example: another prior yaw projects another BEV, so other logits
    other = session.run(None, {'satellite_rgb': satellite.numpy(),
                               'panorama_rgb': panorama.numpy(),
                               'prior_yaw_rad': (prior + 1.0).numpy()})[0]
    assert (torch.from_numpy(other) - logits).abs().max() > 1e-4
