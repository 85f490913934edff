"""What a compressed image declares before it is decoded: format, size, JPEG block size.

A CompressedImage is untrusted input: a 631-byte JPEG can declare 20000 x 20000 pixels, and
decoding it first costs seconds and gigabytes. ``read_header`` parses the PNG IHDR chunk or
the JPEG start-of-frame segment (no pixel data is touched) so the size can be checked
before ``cv2.imdecode``. ``jpeg_ends_early`` recognises what libjpeg does with scan data
that stops before the last block (its "premature end of data segment" warning goes to
stderr only): the missing blocks decode with all-zero coefficients, i.e. flat grey 128.
"""
from __future__ import annotations

from dataclasses import dataclass
import struct

import numpy as np

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
JPEG_SOI = b'\xff\xd8\xff'
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_NO_LENGTH = {0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7}
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9


class HeaderError(ValueError):
    """A compressed image whose header cannot be read; the message says why."""


@dataclass(frozen=True)
class ImageHeader:
    """kind: 'jpeg' | 'png'; width_px, height_px as declared; mcu_hw_px: JPEG block size
    (rows, cols) of one MCU (8 or 16 with chroma subsampling), (0, 0) for PNG."""

    kind: str
    width_px: int
    height_px: int
    mcu_hw_px: tuple[int, int] = (0, 0)

    @property
    def pixels(self) -> int:
        return self.width_px * self.height_px


def read_header(data: bytes) -> ImageHeader | None:
    """Header of a PNG or JPEG payload; None when it is neither (unknown signature).

    Raises HeaderError when the signature is known but the size cannot be read.
    """
    if data.startswith(PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b'IHDR':
            raise HeaderError(f'png without an IHDR chunk ({len(data)} bytes)')
        width, height = struct.unpack('>II', data[16:24])
        return ImageHeader('png', width, height)
    if data.startswith(JPEG_SOI):
        return _jpeg_header(data)
    return None


def _jpeg_header(data: bytes) -> ImageHeader:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise HeaderError(f'corrupt jpeg: no marker at byte {pos}')
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            pos += 2
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            break
        (length,) = struct.unpack('>H', data[pos + 2:pos + 4])
        if marker in _JPEG_SOF:
            frame = data[pos + 4:pos + 2 + length]
            if length < 8 or len(frame) < 6:
                break
            height, width, n_components = struct.unpack('>HHB', frame[1:6])
            factors = frame[6:6 + 3 * n_components]
            h_max = max((factors[i + 1] >> 4 for i in range(0, len(factors) - 2, 3)),
                        default=1)
            v_max = max((factors[i + 1] & 0x0F for i in range(0, len(factors) - 2, 3)),
                        default=1)
            return ImageHeader('jpeg', width, height, (8 * max(v_max, 1), 8 * max(h_max, 1)))
        pos += 2 + length
    raise HeaderError(f'jpeg without a frame header (SOF) before its image data '
                      f'({len(data)} bytes)')


def jpeg_ends_early(bgr: np.ndarray, mcu_hw_px: tuple[int, int]) -> bool:
    """The decoded JPEG's last MCU (bottom-right block) is exactly grey 128 in every channel:
    libjpeg's fill for scan data that ended before the last block.

    bgr: (H, W, 3) uint8 as decoded. A camera frame whose bottom-right block is flat
    (128, 128, 128) to the last bit would be rejected too; sensor noise makes that unlikely.
    """
    rows, cols = mcu_hw_px
    if rows <= 0 or cols <= 0:
        return False
    height, width = bgr.shape[:2]
    block = bgr[(height - 1) // rows * rows:, (width - 1) // cols * cols:]
    return bool((block == 128).all())
