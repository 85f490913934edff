"""The node with a real Localizer loaded from a checkpoint file (tiny random weights).

Nothing here depends on the weights being trained: the checks are the loading path, the
shapes and conventions of the real LocalizationResult through the node, and the refusal
to start on broken or mismatched checkpoints.
"""
import json

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')
from test_node_harness import (  # noqa: E402
    STAMP_NS,
    NodeHarness,
    base_overrides,
    en_to_latlon,
    test_image,
    write_geotiff,
    yaw_of,
)

from geodistill_ros.node.params import ParameterError  # noqa: E402

pytestmark = pytest.mark.ros
GROUND_HW, SAT_PX, SAT_MPP = (32, 128), 64, 0.5


def save_tiny_checkpoint(path, camera_model='pinhole'):
    from geodistill_core.training.config import ModelConfig
    from geodistill_core.training.models import build_model, save_trained_model
    config = ModelConfig(kind='correlation', ground_backbone='vgg16_unet_tiny',
                         satellite_backbone='vgg16_unet_tiny', pretrained=False,
                         camera_model=camera_model)
    torch.manual_seed(0)
    return save_trained_model(path, build_model(config), config,
                              {'ground_hw': list(GROUND_HW), 'satellite_hw': [SAT_PX, SAT_PX]},
                              SAT_MPP, {'note': 'node test, random weights'})


@pytest.fixture(scope='module')
def tif(tmp_path_factory):
    return write_geotiff(tmp_path_factory.mktemp('node_model_map') / 'map.tif')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp('ckpt') / 'tiny_pinhole')


def model_overrides(tif, checkpoint, **extra):
    return base_overrides(tif, location_checkpoint=str(checkpoint), **extra)


def test_real_localizer_through_the_node(ros_isolation, tif, checkpoint):
    with NodeHarness(model_overrides(tif, checkpoint)) as h:
        assert str(h.node.localizer.device) == 'cpu'
        h.send_camera_info()
        h.send_fix(STAMP_NS, *en_to_latlon(4.0, -2.0))
        for i in range(3):
            h.send_image(test_image(STAMP_NS + i, seed=i), timeout_s=20.0)
        h.spin_until(lambda: len(h.poses) == 3 and h.heatmaps, 10.0, 'three poses')
        pose = h.poses[-1]
        assert pose.header.frame_id == 'map' and pose.header.stamp.nanosec == 2
        cov = np.array(pose.pose.covariance).reshape(6, 6)
        assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > 0.0
        # the crop (32 m) bounds the estimate: within its half-diagonal of the fix
        offset = np.hypot(pose.pose.pose.position.x - 4.0, pose.pose.pose.position.y + 2.0)
        assert offset <= 16.0 * np.sqrt(2.0) + 1e-6
        grid = h.heatmaps[-1]
        values = np.array(grid.data, np.int8).reshape(grid.info.height, grid.info.width)
        # the published position lies within one cell of a peak cell (an untrained model
        # has ties, so look at the cells around the position rather than at argmax)
        res = grid.info.resolution
        col = (pose.pose.pose.position.x - grid.info.origin.position.x) / res - 0.5
        row = (pose.pose.pose.position.y - grid.info.origin.position.y) / res - 0.5
        near = values[max(int(np.floor(row)), 0):int(np.ceil(row)) + 1,
                      max(int(np.floor(col)), 0):int(np.ceil(col)) + 1]
        assert near.size and near.max() == values.max() == 100
        assert grid.info.width * grid.info.resolution == pytest.approx(32.0, rel=0.1)
        diag = h.last_diagnostics()
        assert diag['device'] == 'cpu' and float(diag['latency_inference_p50_ms']) > 0.0
        assert 0.0 <= float(diag['confidence']) <= 1.0


def test_crop_at_another_resolution_than_trained_warns(ros_isolation, tif, checkpoint, capfd):
    with NodeHarness(model_overrides(tif, checkpoint, crop_size_m=64.0)):
        pass
    assert ('crop_size_m 64 gives the model 1.000 m/px but it was trained at 0.500 m/px: set '
            'crop_size_m to about 32.0') in capfd.readouterr().err
    with NodeHarness(model_overrides(tif, checkpoint, crop_size_m=32.0)):
        pass
    assert 'crop_size_m' not in capfd.readouterr().err


def test_missing_checkpoint_refuses_to_start(ros_isolation, tif, tmp_path):
    with pytest.raises(ParameterError, match='location_checkpoint .*nope.* does not exist'):
        NodeHarness(model_overrides(tif, tmp_path / 'nope'))


def test_corrupt_checkpoint_refuses_to_start(ros_isolation, tif, checkpoint, tmp_path):
    import shutil
    broken = tmp_path / 'broken'
    shutil.copytree(checkpoint, broken)
    weights = next(p for p in broken.iterdir() if p.suffix == '.safetensors')
    weights.write_bytes(weights.read_bytes()[:100])  # truncated weights file
    with pytest.raises(Exception, match='model.safetensors is not a readable safetensors'):
        NodeHarness(model_overrides(tif, broken))
    config = broken / 'config.json'
    record = json.loads(config.read_text())
    record['architecture'] = 'no_such_architecture'
    config.write_text(json.dumps(record))
    with pytest.raises(Exception, match='no_such_architecture'):
        NodeHarness(model_overrides(tif, broken))


def test_checkpoint_for_another_camera_refuses_to_start(ros_isolation, tif, tmp_path):
    panorama = save_tiny_checkpoint(tmp_path / 'pano', camera_model='panorama')
    with pytest.raises(ParameterError, match="camera_model is 'pinhole' but .* 'panorama'"):
        NodeHarness(model_overrides(tif, panorama))


def localize_one_frame(h):
    """CameraInfo, a fix and one image through the harness node -> (pose, yaw variance,
    newest diagnostics)."""
    h.send_camera_info()
    h.send_fix(STAMP_NS, *en_to_latlon(4.0, -2.0))
    h.send_image(test_image(STAMP_NS, seed=3), timeout_s=20.0)
    h.spin_until(lambda: h.poses, 10.0, 'a pose')
    pose = h.poses[-1]
    return pose, np.array(pose.pose.covariance).reshape(6, 6)[5, 5], h.last_diagnostics()


def test_rotation_search_yaw_is_published_with_its_own_variance(ros_isolation, tif,
                                                                checkpoint):
    prior_range_deg = 8.0
    overrides = model_overrides(tif, checkpoint, yaw_search='rotation', heading_source='fixed',
                                default_yaw_deg=30.0, default_yaw_range_deg=prior_range_deg)
    with NodeHarness(overrides) as h:
        assert h.node.localizer.yaw_search == 'rotation'
        pose, var_yaw, diag = localize_one_frame(h)
        # searched inside the prior's range around the prior
        assert abs(np.degrees(yaw_of(pose)) - 30.0) <= prior_range_deg + 1e-3
        # the search's own mean squared error about its estimate (a random model: a
        # near-flat curve), bounded by the squared width of the searched range
        r = np.radians(prior_range_deg)
        assert 0.0 < var_yaw <= (2.0 * r) ** 2
        assert diag['yaw_source'] == 'rotation_search'
        assert diag['yaw_prior_source'] == 'fixed'
        assert float(diag['yaw_std_deg']) == pytest.approx(np.degrees(np.sqrt(var_yaw)),
                                                           rel=1e-3)
        assert int(diag['yaw_source_rotation_search_total']) == 1


def test_without_yaw_search_the_prior_is_published_and_reported(ros_isolation, tif,
                                                                checkpoint):
    overrides = model_overrides(tif, checkpoint, yaw_search='none', heading_source='fixed',
                                default_yaw_deg=30.0, default_yaw_range_deg=8.0)
    with NodeHarness(overrides) as h:
        assert h.node.localizer.yaw_search == 'none'
        pose, var_yaw, diag = localize_one_frame(h)
        assert np.degrees(yaw_of(pose)) == pytest.approx(30.0, abs=1e-3)
        assert diag['yaw_source'] == 'prior'
        # at least the prior's spread (uniform over +-8 deg), and what the covariance says
        assert float(diag['yaw_std_deg']) >= 8.0 / np.sqrt(3.0) - 1e-3
        assert float(diag['yaw_std_deg']) == pytest.approx(np.degrees(np.sqrt(var_yaw)),
                                                           rel=1e-3)


def test_rotation_search_on_the_onnx_backend_refuses_to_start(ros_isolation, tif, checkpoint):
    with pytest.raises(ParameterError, match="yaw_search 'rotation' runs on the torch backend"):
        NodeHarness(model_overrides(tif, checkpoint, yaw_search='rotation',
                                    backend='onnxruntime'))


def test_auto_search_runs_without_a_heading_topic_and_keeps_an_ins_heading(ros_isolation, tif,
                                                                           checkpoint):
    """yaw_search 'auto' (the default): a fixed/track prior within
    yaw_search_auto_max_range_deg is searched, an unknown heading (+-180) is not; a
    heading_prior message (an INS) is published as it is, with the prior's spread."""
    from test_node_harness import quaternion_stamped
    with NodeHarness(model_overrides(tif, checkpoint, heading_source='fixed',
                                     default_yaw_deg=30.0, default_yaw_range_deg=8.0)) as h:
        assert h.node.config.yaw_search == 'auto' and h.node.localizer.yaw_search == 'rotation'
        _, _, diag = localize_one_frame(h)
        assert diag['yaw_source'] == 'rotation_search' and diag['yaw_prior_source'] == 'fixed'
    with NodeHarness(model_overrides(tif, checkpoint, heading_source='fixed',
                                     default_yaw_deg=30.0, default_yaw_range_deg=180.0)) as h:
        _, _, diag = localize_one_frame(h)  # an unknown heading: no full-circle search
        assert diag['yaw_source'] == 'prior' and diag['yaw_prior_source'] == 'fixed'
    with NodeHarness(model_overrides(tif, checkpoint, heading_source='topic',
                                     yaw_prior_range_deg=8.0)) as h:
        h.heading_pub.publish(quaternion_stamped(STAMP_NS, np.radians(30.0)))
        h.spin_until(lambda: h.node.heading is not None, 5.0, 'the heading')
        pose, var_yaw, diag = localize_one_frame(h)
        assert diag['yaw_source'] == 'prior' and diag['yaw_prior_source'] == 'topic'
        assert np.degrees(yaw_of(pose)) == pytest.approx(30.0, abs=1e-3)
        assert float(diag['yaw_std_deg']) >= 8.0 / np.sqrt(3.0) - 1e-3


def test_auto_search_refines_an_ins_heading_only_when_its_stated_error_is_large(
        ros_isolation, tif, checkpoint):
    """heading_prior_sigma_deg states the INS's accuracy: 3 deg (worse than the search's
    ~1 deg) is searched within +-4 sigma; 1 deg is kept, published with that std."""
    from test_node_harness import quaternion_stamped
    for sigma, searched in ((3.0, True), (1.0, False)):
        with NodeHarness(model_overrides(tif, checkpoint, heading_source='topic',
                                         heading_prior_sigma_deg=sigma)) as h:
            h.heading_pub.publish(quaternion_stamped(STAMP_NS, np.radians(30.0)))
            h.spin_until(lambda h=h: h.node.heading is not None, 5.0, 'the heading')
            pose, var_yaw, diag = localize_one_frame(h)
            assert diag['yaw_prior_source'] == 'topic'
            if searched:
                assert diag['yaw_source'] == 'rotation_search'
                assert abs(np.degrees(yaw_of(pose)) - 30.0) <= 4 * sigma + 1e-3
            else:
                assert diag['yaw_source'] == 'prior'
                assert np.degrees(yaw_of(pose)) == pytest.approx(30.0, abs=1e-3)
                assert float(diag['yaw_std_deg']) == pytest.approx(sigma, rel=1e-3)


def test_auto_search_on_the_onnx_backend_publishes_the_prior(ros_isolation, tif, checkpoint,
                                                             capfd):
    with NodeHarness(model_overrides(tif, checkpoint, backend='onnxruntime')) as h:
        assert h.node.localizer.yaw_search == 'none'
    assert ("yaw_search 'auto': the rotation search needs the torch backend"
            in capfd.readouterr().err)
