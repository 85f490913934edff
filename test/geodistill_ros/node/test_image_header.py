"""Compressed image headers read without decoding: sizes against OpenCV's decode, a size
limit enforced before any pixel is decoded, and JPEGs whose image data stops early."""
import struct
import time

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage

from geodistill_ros.node.image_header import HeaderError, jpeg_ends_early, read_header
from geodistill_ros.node.messages import ImageDecodeError, compressed_image_to_rgb


def encoded(ext: str, hw=(37, 53), params=()) -> bytes:
    rgb = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, hw + (3,), np.uint8),
                           (5, 5), 2.0)
    ok, buf = cv2.imencode(ext, rgb, list(params))
    assert ok
    return buf.tobytes()


def declaring(jpeg: bytes, width: int, height: int) -> bytes:
    sof = jpeg.index(b'\xff\xc0')
    return jpeg[:sof + 5] + struct.pack('>HH', height, width) + jpeg[sof + 9:]


def msg_of(data: bytes, fmt: str = 'jpeg') -> CompressedImage:
    return CompressedImage(format=fmt, data=data)


@pytest.mark.parametrize('ext, kind', [('.jpg', 'jpeg'), ('.png', 'png')])
def test_header_size_equals_the_decoded_size(ext, kind):
    data = encoded(ext)
    header = read_header(data)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert (header.kind, header.height_px, header.width_px) == (kind, *decoded.shape[:2])


@pytest.mark.parametrize('sampling, mcu', [(cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, (16, 16)),
                                           (cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422, (8, 16)),
                                           (cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444, (8, 8))])
def test_jpeg_block_size_follows_the_chroma_subsampling(sampling, mcu):
    data = encoded('.jpg', params=(cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling))
    assert read_header(data).mcu_hw_px == mcu


def test_unknown_payload_has_no_header_and_a_cut_header_is_an_error():
    assert read_header(b'GIF89a') is None
    with pytest.raises(HeaderError, match='SOF'):
        read_header(encoded('.jpg')[:20])
    with pytest.raises(HeaderError, match='IHDR'):
        read_header(encoded('.png')[:12])


@pytest.mark.parametrize('width, height', [(20000, 20000), (65500, 65500)])
def test_huge_declared_size_is_refused_before_decoding(width, height):
    data = declaring(encoded('.jpg'), width, height)
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=f'{width}x{height} = {width * height} pixels'):
        compressed_image_to_rgb(msg_of(data), max_pixels=40_000_000)
    assert time.perf_counter() - started < 0.5  # a decode of 20000^2 takes seconds


def test_png_over_the_limit_is_refused_and_under_it_decoded():
    data = encoded('.png')
    with pytest.raises(ImageDecodeError, match='max_image_pixels 1000'):
        compressed_image_to_rgb(msg_of(data, 'png'), max_pixels=1000)
    assert compressed_image_to_rgb(msg_of(data, 'png'), max_pixels=37 * 53).shape == (37, 53, 3)


def test_opencv_size_error_is_a_decode_error_without_a_limit():
    data = declaring(encoded('.jpg'), 65500, 65500)
    with pytest.raises(ImageDecodeError):
        compressed_image_to_rgb(msg_of(data))


@pytest.mark.parametrize('hw', [(240, 320), (61, 83)])
def test_jpeg_cut_in_half_with_an_end_marker_is_detected(hw):
    whole = encoded('.jpg', hw)
    half = whole[:len(whole) // 2] + b'\xff\xd9'
    header = read_header(whole)
    assert not jpeg_ends_early(cv2.imdecode(np.frombuffer(whole, np.uint8), 1),
                               header.mcu_hw_px)
    assert jpeg_ends_early(cv2.imdecode(np.frombuffer(half, np.uint8), 1), header.mcu_hw_px)
    with pytest.raises(ImageDecodeError, match='truncated jpeg'):
        compressed_image_to_rgb(msg_of(half))
    assert compressed_image_to_rgb(msg_of(whole)).shape == hw + (3,)
