"""Supervised CCVPE loss: analytic terms, gradients to every parameter, a tiny overfit."""
import math

import pytest
import torch

from geodistill_core.losses import gaussian_target
from geodistill_core.models.ccvpe import (
    CcvpeLossConfig,
    DescriptorScores,
    build_descriptor_estimator,
    ccvpe_supervised_loss,
    tiny_descriptor_config,
)
from geodistill_core.models.ccvpe.supervised_loss import info_nce, level_position

SAT_PX = 64


def test_gaussian_target_is_normalised_and_centred():
    target = gaussian_target(16, 16, torch.tensor([[3.0, 11.0], [7.5, 7.5]]), 1.5)
    assert target.shape == (2, 16, 16)
    torch.testing.assert_close(target.sum(dim=(1, 2)), torch.ones(2))
    assert divmod(int(target[0].argmax()), 16) == (3, 11)
    rows = torch.arange(16.0)
    mean_row = (target[1].sum(dim=1) * rows).sum()
    assert float(mean_row) == pytest.approx(7.5, abs=1e-4)


def test_level_position_uses_pixel_centres():
    rc = torch.tensor([[0.0, 511.0], [255.5, 3.5]])
    # (p + 0.5) / 64 - 0.5: pixel 0 of 512 lies at -0.4922 of 8 cells; the centre stays
    torch.testing.assert_close(level_position(rc, 512, 8),
                               torch.tensor([[-0.4921875, 7.4921875], [3.5, -0.4375]]))


def test_info_nce_equals_the_hand_computed_value():
    matching = torch.zeros(1, 3, 2, 2)
    matching[0, 1, 0, 1] = 0.5  # best orientation at cell (0, 1)
    matching[0, 2, 1, 1] = -0.2  # not the max there (0 from the other orientations)
    loss = info_nce(matching, torch.tensor([[0.2, 0.9]]), temperature=0.1)
    expected = -(5.0 - math.log(3 + math.exp(5.0)))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_perfect_prediction_has_only_the_entropy_floor():
    """Logits = log of the target and an exact orientation field: the CE equals the
    target's entropy, the orientation term is zero."""
    rc = torch.tensor([[20.0, 33.0]])
    sizes = [8, 16, 32, 64]
    scores = [torch.log(gaussian_target(s, s, level_position(rc, 64, s), 4 * s / 512)
                        + 1e-30) for s in sizes]
    field = torch.zeros(1, 2, 64, 64)
    field[:, 1] = 1.0  # (cos, sin) of pi / 2 everywhere
    matching = [torch.zeros(1, 4, s, s) for s in sizes]
    out = DescriptorScores(scores, [1.0] * 4, field, matching)
    terms = ccvpe_supervised_loss(out, rc, torch.tensor([math.pi / 2]))
    entropy = torch.stack([-(p.exp() * p).sum() for p in scores]).mean()
    assert float(terms['heatmap']) == pytest.approx(float(entropy), abs=1e-4)
    assert float(terms['orientation']) == pytest.approx(0.0, abs=1e-10)
    assert float(terms['infonce']) == pytest.approx(
        sum(math.log(s * s) for s in sizes) / 4, rel=1e-5)
    finest = ccvpe_supervised_loss(out, rc, torch.tensor([math.pi / 2]),
                                   CcvpeLossConfig(heatmap_levels='finest'))
    entropy_finest = -(scores[-1].exp() * scores[-1]).sum()
    assert float(finest['heatmap']) == pytest.approx(float(entropy_finest), abs=1e-4)
    wrong = ccvpe_supervised_loss(out, rc, torch.tensor([-math.pi / 2]))
    assert float(wrong['orientation']) == pytest.approx(4.0)


def _problem():
    torch.manual_seed(0)
    model = build_descriptor_estimator(tiny_descriptor_config(SAT_PX))
    generator = torch.Generator().manual_seed(1)
    ground = torch.randn(2, 3, 64, 640, generator=generator)  # 2 feature rows: attention
    satellite = torch.randn(2, 3, SAT_PX, SAT_PX, generator=generator)
    true_rc = torch.tensor([[12.0, 45.0], [50.0, 20.0]])
    true_yaw = torch.tensor([math.pi / 2, 0.3])
    return model, ground, satellite, true_rc, true_yaw


def test_gradients_reach_every_parameter():
    model, ground, satellite, true_rc, true_yaw = _problem()
    model.train()
    visible = torch.ones(2, 640, dtype=torch.bool)
    visible[0, 200:400] = False
    out = model(ground, satellite, sat_meters_per_px=0.5, ground_visible_cols=visible)
    ccvpe_supervised_loss(out, true_rc, true_yaw)['loss'].backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f'{name} got no gradient'
        assert parameter.grad.abs().sum() > 0, f'{name} got a zero gradient'


def _yaw_error_at_target(out, true_rc, true_yaw):
    yaw = torch.atan2(out.orientation_field[:, 1], out.orientation_field[:, 0])
    at_target = yaw[torch.arange(len(true_yaw)), true_rc[:, 0].long(), true_rc[:, 1].long()]
    return torch.remainder(at_target - true_yaw + math.pi, 2 * math.pi).sub(math.pi).abs()


def test_overfitting_two_samples_moves_the_argmax_to_the_target():
    model, ground, satellite, true_rc, true_yaw = _problem()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()  # evaluated in train mode too: batch statistics, as fitted
    with torch.no_grad():
        yaw_error_start = _yaw_error_at_target(model(ground, satellite, sat_meters_per_px=0.5),
                                               true_rc, true_yaw)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        terms = ccvpe_supervised_loss(model(ground, satellite, sat_meters_per_px=0.5),
                                      true_rc, true_yaw)
        terms['loss'].backward()
        optimizer.step()
        losses.append(terms['loss'].item())
    with torch.no_grad():
        out = model(ground, satellite, sat_meters_per_px=0.5)
    finest = out.scores[-1].flatten(1).argmax(dim=1)
    predicted = torch.stack([finest // SAT_PX, finest % SAT_PX], dim=1).float()
    assert losses[-1] < 0.5 * losses[0]
    assert (predicted - true_rc).norm(dim=1).max() <= 1.5, predicted  # within a diagonal px
    yaw_error = _yaw_error_at_target(out, true_rc, true_yaw)
    assert yaw_error.mean() < 0.5 * yaw_error_start.mean(), (yaw_error_start, yaw_error)
