"""preprocess_images: analytic values and the input checks at the boundary."""
import pytest
import torch

from geodistill_core.models.backbones import Preprocess, preprocess_images

PRE = Preprocess(mean_rgb=(0.5, 0.25, 0.0), std_rgb=(0.5, 0.25, 2.0), input_multiple_px=8)


def test_normalises_per_channel():
    images = torch.stack([torch.full((8, 16), v) for v in (1.0, 0.25, 1.0)])[None]
    out = preprocess_images(images.double(), PRE)
    assert out.dtype == torch.float64 and out.shape == (1, 3, 8, 16)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.5],
                                                             dtype=torch.float64))


def test_channel_order_is_rgb_not_bgr():
    """Counter-example pin: swapping R and B changes the result."""
    images = torch.zeros(1, 3, 8, 8)
    images[:, 0] = 1.0
    assert preprocess_images(images, PRE)[0, 0, 0, 0] == 1.0
    assert preprocess_images(images.flip(1), PRE)[0, 0, 0, 0] == -1.0


@pytest.mark.parametrize(('images', 'error', 'message'), [
    (torch.rand(3, 8, 8), ValueError, r'\(B, 3, H, W\), got \(3, 8, 8\)'),
    (torch.rand(1, 4, 8, 8), ValueError, r'got \(1, 4, 8, 8\)'),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), TypeError, r'/ 255'),
    (torch.rand(1, 3, 12, 8), ValueError, r'\(12, 8\) is not a multiple of 8'),
    (torch.rand(1, 3, 8, 8) * 255, ValueError, r'\[0, 1\].*0\.\.255'),
])
def test_bad_inputs_are_refused(images, error, message):
    with pytest.raises(error, match=message):
        preprocess_images(images, PRE)


def test_record_validation():
    with pytest.raises(ValueError, match='positive'):
        Preprocess((0.0, 0.0, 0.0), (1.0, 0.0, 1.0), 8)
    with pytest.raises(ValueError, match='>= 1'):
        Preprocess((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 0)
