"""Camera response and sensor degradations: linear render -> 8-bit image (ViewLook)."""
from __future__ import annotations

import cv2
import numpy as np

from geodistill_core.data.synthetic.config import ViewLook

_LUT_SIZE = 4096
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def _srgb_lut() -> np.ndarray:
    x = np.linspace(0.0, 1.0, _LUT_SIZE, dtype=np.float64)
    y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return y.astype(np.float32)


_SRGB = _srgb_lut()


def linear_to_srgb(rgb: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB-encoded [0, 1] (same shape, float32, via a 4096-entry LUT)."""
    idx = np.clip(rgb * (_LUT_SIZE - 1) + 0.5, 0, _LUT_SIZE - 1).astype(np.int32)
    return _SRGB[idx]


def _tone_lut(look: ViewLook) -> np.ndarray:
    """Linear [0, 1] (4096 steps) -> encoded value: sRGB, then contrast, then gamma."""
    y = 0.5 + look.contrast * (_SRGB - 0.5)
    return np.power(np.clip(y, 0.0, 1.0), look.gamma).astype(np.float32)


def apply_look(rgb_linear: np.ndarray, look: ViewLook, rng: np.random.Generator,
               ) -> np.ndarray:
    """Render a linear image through a ViewLook.

    rgb_linear: (H, W, 3) float32 linear RGB (about [0, 1]). rng draws the per-image
    exposure/white-balance jitter and the noise. Returns (H, W, 3) uint8 RGB.
    """
    if rgb_linear.ndim != 3 or rgb_linear.shape[2] != 3:
        raise ValueError(f'rgb_linear must be (H, W, 3), got {rgb_linear.shape}')
    gain = look.exposure * np.array(look.white_balance_rgb, dtype=np.float64)
    gain = gain * np.exp(rng.normal(0.0, 1.0) * look.exposure_jitter
                         + rng.normal(0.0, 1.0, 3) * look.white_balance_jitter)
    if look.saturation != 1.0:
        s = look.saturation
        mix = (1 - s) * np.repeat(_LUMA[None, :], 3, axis=0) + s * np.eye(3)
        x = rgb_linear @ (mix * gain[None, :]).T.astype(np.float32)
    else:
        x = rgb_linear * gain.astype(np.float32)
    idx = np.clip(x * np.float32(_LUT_SIZE - 1) + np.float32(0.5), 0, _LUT_SIZE - 1)
    x = _tone_lut(look)[idx.astype(np.int32)]
    if look.blur_sigma_px > 0:
        x = cv2.GaussianBlur(x, (0, 0), look.blur_sigma_px)
    if look.noise_std > 0:
        x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(look.noise_std)
    out = np.clip(x * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)
    if look.jpeg_quality > 0:
        ok, buf = cv2.imencode('.jpg', out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY,
                                                       int(look.jpeg_quality)])
        if not ok:
            raise RuntimeError('OpenCV failed to JPEG-encode the render')
        out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return out
