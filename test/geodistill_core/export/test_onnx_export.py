"""ONNX export and the onnxruntime backend: files, metadata, parity with eager torch on
both embedded default models (heatmap scores and poses), batching, providers, errors."""
import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from geodistill_core.export import runtime
from geodistill_core.export.cli import main as export_main
from geodistill_core.export.metadata import read_metadata
from geodistill_core.export.runtime import (
    OnnxLocationRunner,
    cache_key,
    exported_location_dir,
    select_providers,
)
from geodistill_core.localizer import ASSETS_DIR, Localizer

CAMERAS = ('pinhole', 'panorama')
SCORE_TOLERANCE = 1e-4  # issue 15: max abs heatmap difference in float32


def checkpoint(camera: str) -> Path:
    return ASSETS_DIR / f'default_{camera}_location'


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """camera -> directory written by the CLI for that default model (exported once)."""
    out = {}
    for camera in CAMERAS:
        directory = tmp_path_factory.mktemp(f'onnx_{camera}')
        assert export_main(['--checkpoint', str(checkpoint(camera)), '--out',
                            str(directory)]) == 0
        out[camera] = directory
    return out


def smooth_images(batch: int, hw, seed: int) -> torch.Tensor:
    """(batch, 3, H, W) in [0, 1]: bilinearly upsampled coarse noise (image-like content)."""
    coarse = torch.rand(batch, 3, hw[0] // 8, hw[1] // 8,
                        generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=tuple(hw), mode='bilinear', align_corners=False)


def frame_inputs(localizer: Localizer, batch: int, seed: int = 0):
    H, W = localizer.ground_hw
    ground = smooth_images(batch, (H, W), seed)
    satellite = smooth_images(batch, (localizer.sat_size_px,) * 2, seed + 1)
    K = None
    if localizer.camera_model == 'pinhole':
        K = np.array([[0.6 * W, 0.0, (W - 1) / 2], [0.0, 0.6 * W, (H - 1) / 2], [0, 0, 1.0]])
    return ground, satellite, K


@pytest.mark.parametrize('camera', CAMERAS)
def test_export_writes_a_checked_model_its_metadata_and_the_config(exported, camera):
    directory = exported[camera]
    assert sorted(p.name for p in directory.iterdir()) == ['config.json', 'location.json',
                                                           'location.onnx']
    with np.errstate(divide='ignore', invalid='ignore'):  # the checker's constant folding
        onnx.checker.check_model(onnx.load(str(directory / 'location.onnx')), full_check=True)
    assert (directory / 'config.json').read_bytes() == \
        (checkpoint(camera) / 'config.json').read_bytes()
    meta = read_metadata(directory / 'location.json')
    config = json.loads((checkpoint(camera) / 'config.json').read_text())
    assert meta['camera_model'] == camera
    assert meta['input_sizes'] == config['input_sizes']
    assert meta['calibration']['temperature'] == config.get('calibration', {}).get(
        'temperature', 1.0)
    assert meta['validation']['onnxruntime_cpu_max_abs_diff'] <= SCORE_TOLERANCE
    runner = OnnxLocationRunner(directory)
    expected = ['ground_rgb', 'satellite_rgb', 'yaw_rad', 'camera_height_m', 'meters_per_px']
    assert runner.input_names == expected + (['ground_K'] if camera == 'pinhole' else [])
    batch_axis = runner.session.get_inputs()[0].shape[0]
    assert isinstance(batch_axis, str), 'the batch axis must be dynamic'


@pytest.mark.parametrize('camera', CAMERAS)
def test_heatmap_and_pose_parity_with_eager_torch(exported, camera):
    """Same frames through both backends: scores within 1e-4, the same poses."""
    # the same location graph: the eager side without its rotation search (the ONNX
    # backend has none, so its default is the prior's yaw)
    eager = Localizer.default(camera, device='cpu', yaw_search='none')
    ort = Localizer.default(camera, device='cpu', backend='onnxruntime',
                            onnx_dir=exported[camera])
    assert (eager.backend, ort.backend) == ('torch', 'onnxruntime')
    assert ort.yaw_search == 'none'
    ground, satellite, K = frame_inputs(eager, batch=3)
    yaw = torch.tensor([0.4, 2.5, -2.0])
    mpp = 0.25
    K_t = None if K is None else torch.as_tensor(K, dtype=torch.float32).expand(3, 3, 3)
    with torch.inference_mode():
        reference = eager.location_model(ground, satellite, sat_meters_per_px=mpp,
                                         camera_height_m=eager.camera_height_m,
                                         ground_yaw_rad=yaw, ground_K=K_t)
    scores = ort.onnx_runner(ground, satellite, sat_meters_per_px=mpp,
                             camera_height_m=eager.camera_height_m, ground_yaw_rad=yaw,
                             ground_K=K_t)
    diff = (scores.scores[-1] - reference.scores[-1]).abs().max().item()
    assert diff <= SCORE_TOLERANCE
    assert scores.cell_m[-1] == pytest.approx(reference.cell_m[-1], rel=1e-9)

    a = eager.localize(ground, satellite, mpp, yaw_prior_rad=yaw, K=K)
    b = ort.localize(ground, satellite, mpp, yaw_prior_rad=yaw, K=K)
    torch.testing.assert_close(b.heatmap_log_prob_base, a.heatmap_log_prob_base,
                               atol=SCORE_TOLERANCE / 0.06 * 2, rtol=0)
    torch.testing.assert_close(b.heatmap_prob, a.heatmap_prob, atol=1e-6, rtol=1e-3)
    torch.testing.assert_close(b.offset_en_m, a.offset_en_m, atol=1e-3, rtol=0)
    torch.testing.assert_close(b.covariance_en_m2, a.covariance_en_m2, atol=1e-2, rtol=1e-3)
    torch.testing.assert_close(b.confidence, a.confidence, atol=1e-4, rtol=0)
    assert b.heatmap_cell_m == pytest.approx(a.heatmap_cell_m)


def test_parity_check_can_fail(exported):
    """Counter-example: a model whose weights moved slightly is told apart (so the parity
    test above compares the two backends, not two copies of one)."""
    eager = Localizer.default('pinhole', device='cpu')
    ort = Localizer.default('pinhole', device='cpu', backend='onnxruntime',
                            onnx_dir=exported['pinhole'])
    ground, satellite, K = frame_inputs(eager, batch=1)
    with torch.no_grad():
        for parameter in eager.location_model.parameters():
            parameter.mul_(1.01)
    a = eager.localize(ground, satellite, 0.25, yaw_prior_rad=0.4, K=K)
    b = ort.localize(ground, satellite, 0.25, yaw_prior_rad=0.4, K=K)
    assert (a.heatmap_log_prob_base - b.heatmap_log_prob_base).abs().max() > 1e-3


def test_shared_crop_scores_yaw_candidates_in_one_pass(exported):
    """Bs = 1: every ground image (here one image at several yaws) against one crop in a
    single run equals the eager model item by item; paired batches too."""
    eager = Localizer.default('panorama', device='cpu')
    runner = OnnxLocationRunner(exported['panorama'])
    ground, satellite, _ = frame_inputs(eager, batch=1, seed=5)
    yaws = torch.linspace(-math.pi, math.pi, 6)[:-1]
    candidates = ground.expand(5, -1, -1, -1)
    heights = torch.full((5,), eager.camera_height_m)
    shared = runner.scores(candidates, satellite, yaws, heights, torch.tensor([0.25]))
    with torch.inference_mode():
        for index, yaw in enumerate(yaws):
            single = eager.location_model(ground, satellite, sat_meters_per_px=0.25,
                                          camera_height_m=eager.camera_height_m,
                                          ground_yaw_rad=yaw.reshape(1)).scores[-1][0]
            assert (shared[index] - single).abs().max() <= SCORE_TOLERANCE
    assert (shared[0] - shared[2]).abs().max() > 1e-2  # the yaw changes the scores
    paired = runner.scores(candidates, satellite.expand(5, -1, -1, -1), yaws, heights,
                           torch.full((5,), 0.25))
    torch.testing.assert_close(paired, shared, atol=1e-5, rtol=0)


def test_providers_prefer_tensorrt_then_cuda_and_say_when_falling_back():
    cpu = 'CPUExecutionProvider'
    everything = ['TensorrtExecutionProvider', 'CUDAExecutionProvider', cpu]
    assert select_providers('cpu', everything) == ([cpu], None)
    assert select_providers('cuda', everything) == (everything, None)
    assert select_providers('cuda', ['CUDAExecutionProvider', cpu]) == (
        ['CUDAExecutionProvider', cpu], None)
    providers, note = select_providers('cuda', [cpu])
    assert providers == [cpu] and 'CPU' in note and 'onnxruntime-gpu' in note
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        select_providers('tpu', everything)


def test_export_of_another_checkpoint_is_refused(exported):
    with pytest.raises(ValueError, match='another checkpoint'):
        exported_location_dir(checkpoint('pinhole'), exported['panorama'])
    assert exported_location_dir(checkpoint('pinhole'), exported['pinhole']) == \
        exported['pinhole']


def test_cache_is_used_without_exporting_again(exported, tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path))
    cached = tmp_path / cache_key(checkpoint('pinhole'))
    cached.mkdir()
    for path in exported['pinhole'].iterdir():
        (cached / path.name).write_bytes(path.read_bytes())

    def no_export(*args, **kwargs):
        raise AssertionError('the cached export should have been used')

    monkeypatch.setattr('geodistill_core.export.onnx_export.export_checkpoint', no_export)
    localizer = Localizer.default('pinhole', device='cpu', backend='onnxruntime')
    assert localizer.backend == 'onnxruntime'
    assert cache_key(checkpoint('pinhole')) != cache_key(checkpoint('panorama'))


def test_unknown_backend_and_bad_checkpoint_fail_loudly(tmp_path, capsys):
    with pytest.raises(ValueError, match='backend must be one of'):
        Localizer.default('pinhole', device='cpu', backend='tensorflow')
    assert export_main(['--checkpoint', str(tmp_path / 'missing'), '--out',
                        str(tmp_path / 'out')]) == 1
    assert 'missing' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
