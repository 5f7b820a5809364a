"""Conversions between sensor_msgs images and NumPy arrays, without copies where possible.

Supported encodings: rgb8, bgr8, rgba8, bgra8, mono8, 16UC1 and 32FC1 in both directions, plus
decoding of sensor_msgs/CompressedImage (JPEG or PNG of 8-bit images).
"""
import array
import sys
from typing import NamedTuple, Optional, Tuple

import numpy as np

import cv2
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

# encoding -> (dtype, channels)
ENCODINGS = {
    'rgb8': (np.dtype(np.uint8), 3),
    'bgr8': (np.dtype(np.uint8), 3),
    'rgba8': (np.dtype(np.uint8), 4),
    'bgra8': (np.dtype(np.uint8), 4),
    'mono8': (np.dtype(np.uint8), 1),
    '16UC1': (np.dtype(np.uint16), 1),
    'mono16': (np.dtype(np.uint16), 1),
    '32FC1': (np.dtype(np.float32), 1),
}
SUPPORTED_ENCODINGS = tuple(ENCODINGS)
HOST_IS_BIG_ENDIAN = sys.byteorder == 'big'
DECODED_CHANNEL_ENCODINGS = {1: 'mono8', 3: 'bgr8', 4: 'bgra8'}


class ImageConversionError(ValueError):
    """An image message does not match its declared encoding, size or format."""


def _canonical_encoding(encoding: str) -> str:
    for name in ENCODINGS:
        if name.lower() == encoding.strip().lower():
            return name
    raise ImageConversionError(
        f'unsupported encoding {encoding!r}; expected one of {", ".join(SUPPORTED_ENCODINGS)}')


def image_to_array(msg: Image) -> np.ndarray:
    """Return a view (H, W) or (H, W, C) of the pixels of ``msg`` (no copy for native data).

    Rows padded by ``step`` become a strided view; big-endian multi-byte data is swapped
    into native byte order (one copy).
    """
    encoding = _canonical_encoding(msg.encoding)
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'{encoding} image has size {width}x{height}; expected '
                                   f'a positive width and height')
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f'{encoding} image {width}x{height} needs step >= {row_bytes} bytes '
            f'(width x {channels * dtype.itemsize} bytes per pixel), got step {step}')
    data = msg.data
    buffer = data if isinstance(data, (bytes, bytearray, memoryview, array.array)) \
        else np.asarray(data, np.uint8)
    size = memoryview(buffer).nbytes
    needed = step * (height - 1) + row_bytes
    if size < needed:
        raise ImageConversionError(
            f'{encoding} image {width}x{height} with step {step} needs {step * height} bytes '
            f'of data, got {size}')
    shape = (height, width) if channels == 1 else (height, width, channels)
    strides = ((step, dtype.itemsize) if channels == 1
               else (step, channels * dtype.itemsize, dtype.itemsize))
    stored = dtype.newbyteorder('>' if msg.is_bigendian else '<') if dtype.itemsize > 1 \
        else dtype
    pixels = np.ndarray(shape, stored, buffer=buffer, strides=strides)
    if dtype.itemsize > 1 and bool(msg.is_bigendian) != HOST_IS_BIG_ENDIAN:
        return pixels.astype(dtype)
    return pixels


class ImageLayout(NamedTuple):
    """What an Image message of some pixels holds, besides its header."""

    pixels: np.ndarray  # C-contiguous
    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: int


def image_layout(pixels: np.ndarray, encoding: str) -> ImageLayout:
    """Check ``pixels`` against ``encoding`` and return the fields of their Image message."""
    encoding = _canonical_encoding(encoding)
    dtype, channels = ENCODINGS[encoding]
    if pixels.dtype != dtype:
        raise ImageConversionError(
            f'{encoding} needs {dtype} pixels, got {pixels.dtype}')
    if channels == 1 and pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    expected_ndim = 2 if channels == 1 else 3
    if pixels.ndim != expected_ndim or (channels > 1 and pixels.shape[2] != channels):
        expected = '(H, W)' if channels == 1 else f'(H, W, {channels})'
        raise ImageConversionError(
            f'{encoding} needs an array of shape {expected}, got {pixels.shape}')
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    return ImageLayout(pixels, encoding, height, width, width * channels * dtype.itemsize,
                       int(HOST_IS_BIG_ENDIAN and dtype.itemsize > 1))


def array_to_image(pixels: np.ndarray, encoding: str,
                   header: Optional[Header] = None) -> Image:
    """Return an Image message holding ``pixels`` (one copy into the message buffer)."""
    layout = image_layout(pixels, encoding)
    data = array.array('B')
    data.frombytes(memoryview(layout.pixels).cast('B'))
    msg = Image(height=layout.height, width=layout.width, encoding=layout.encoding,
                is_bigendian=layout.is_bigendian, step=layout.step)
    if header is not None:
        msg.header = header
    msg.data = data
    return msg


def quiet_decoder_warnings() -> None:
    """Keep OpenCV's per-image decoder warnings out of the log (the node reports them itself).

    A camera sending corrupt frames would otherwise print a line for each, unthrottled.
    """
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def compressed_to_array(msg: CompressedImage) -> Tuple[np.ndarray, str]:
    """Decode a JPEG or PNG CompressedImage; return (pixels, encoding: mono8, bgr8 or bgra8)."""
    image_format = msg.format.strip()
    if 'compresseddepth' in image_format.lower():
        raise ImageConversionError(
            f'compressed image format {image_format!r} is a compressedDepth stream; expected '
            f'a colour or grey image (jpeg or png of rgb8, bgr8, rgba8, bgra8 or mono8)')
    data = np.frombuffer(msg.data, np.uint8) if len(msg.data) else None
    if data is None:
        raise ImageConversionError(
            f'compressed image ({image_format or "no format"}) has no data; expected jpeg '
            f'or png bytes')
    try:
        pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # OpenCV raises for some corrupt streams instead of failing
        raise ImageConversionError(
            f'cannot decode {data.size} bytes of compressed image data (format '
            f'{image_format!r}): {str(error).strip().splitlines()[-1]}') from error
    if pixels is None:
        raise ImageConversionError(
            f'cannot decode {data.size} bytes of compressed image data (format '
            f'{image_format!r}); expected jpeg or png')
    if pixels.dtype != np.uint8:
        raise ImageConversionError(
            f'compressed image decodes to {pixels.dtype} pixels (format {image_format!r}); '
            f'expected 8-bit colour or grey')
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels not in DECODED_CHANNEL_ENCODINGS:
        raise ImageConversionError(
            f'compressed image decodes to {channels} channels; expected 1, 3 or 4')
    return pixels, DECODED_CHANNEL_ENCODINGS[channels]


def encode_compressed(pixels: np.ndarray, encoding: str, image_format: str = 'png',
                      header: Optional[Header] = None) -> CompressedImage:
    """Return a CompressedImage of an 8-bit image (as image_transport's compressed plugin)."""
    encoding = _canonical_encoding(encoding)
    to_bgr = {'rgb8': cv2.COLOR_RGB2BGR, 'rgba8': cv2.COLOR_RGBA2BGRA}
    bgr = cv2.cvtColor(pixels, to_bgr[encoding]) if encoding in to_bgr else pixels
    stored = {'rgb8': 'bgr8', 'rgba8': 'bgra8'}.get(encoding, encoding)
    ok, payload = cv2.imencode(f'.{image_format}', bgr)
    if not ok:
        raise ImageConversionError(f'cannot encode a {encoding} image as {image_format}')
    msg = CompressedImage(format=f'{encoding}; {image_format} compressed {stored}')
    if header is not None:
        msg.header = header
    data = array.array('B')
    data.frombytes(payload.tobytes())
    msg.data = data
    return msg
