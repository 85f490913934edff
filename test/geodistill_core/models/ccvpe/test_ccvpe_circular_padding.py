"""Width-circular convolutions: exact wrap-around, unchanged parameters, refusals."""
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from geodistill_core.models.ccvpe import is_width_circular, make_width_circular_, tiny_encoder


def test_conv_wraps_horizontally_and_zero_pads_vertically():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, kernel_size=(3, 5), stride=(1, 2), padding=(1, 2))
    x = torch.randn(1, 2, 4, 8)
    expected = F.conv2d(F.pad(x, (2, 2, 0, 0), mode='circular'), conv.weight, conv.bias,
                        stride=(1, 2), padding=(1, 0))
    keys = set(conv.state_dict())
    make_width_circular_(conv)
    make_width_circular_(conv)  # idempotent: padding is not applied twice
    torch.testing.assert_close(conv(x), expected)
    assert set(conv.state_dict()) == keys
    assert is_width_circular(conv)


def test_tiny_encoder_becomes_exactly_roll_equivariant():
    torch.manual_seed(1)
    encoder = tiny_encoder().eval()
    x = torch.randn(1, 3, 32, 320)
    rolled = torch.roll(x, 32, dims=-1)
    plain = encoder(x)[-1], encoder(rolled)[-1]
    assert not torch.allclose(torch.roll(plain[0], 1, dims=-1), plain[1], atol=1e-4)
    make_width_circular_(encoder)
    deep, deep_rolled = encoder(x)[-1], encoder(rolled)[-1]
    torch.testing.assert_close(torch.roll(deep, 1, dims=-1), deep_rolled, atol=1e-5, rtol=0)


def test_timm_efficientnet_b0_can_be_made_circular():
    from geodistill_core.models.ccvpe import efficientnet_b0_encoder

    encoder = make_width_circular_(efficientnet_b0_encoder()).eval()
    assert is_width_circular(encoder)
    x = torch.randn(1, 3, 32, 64 * 5)
    with torch.no_grad():
        deep, deep_rolled = encoder(x)[-1], encoder(torch.roll(x, 32, dims=-1))[-1]
    torch.testing.assert_close(torch.roll(deep, 1, dims=-1), deep_rolled, atol=1e-4, rtol=1e-4)


def test_refuses_paddings_it_cannot_wrap():
    with pytest.raises(ValueError, match='circular'):
        make_width_circular_(nn.Conv2d(1, 1, 3, padding='same'))
    with pytest.raises(ValueError, match='reflect'):
        make_width_circular_(nn.Conv2d(1, 1, 3, padding=1, padding_mode='reflect'))
    with pytest.raises(ValueError, match='pooling'):
        make_width_circular_(nn.Sequential(nn.Conv2d(1, 1, 1), nn.MaxPool2d(3, 2, padding=1)))
