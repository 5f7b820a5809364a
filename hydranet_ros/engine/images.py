"""The camera images the engine takes: one table of encodings, decoded to RGB uint8.

Encoding names follow ``sensor_msgs/image_encodings`` and cv_bridge (8UC3 and 8UC4 are read as
BGR and BGRA, as cv_bridge does). 16-bit images are scaled to 8 bits (value / 257, rounded);
Bayer mosaics are demosaiced bilinearly; YUV 4:2:2 is read with BT.601 coefficients. Raw images
may pad their rows (``step``) and store 16-bit values in either byte order. Everything here
takes plain fields, so an rclpy message, a serialised-image view and a rosbags message decode
the same way.
"""
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

import cv2

MIN_SIDE_PX = 8
UINT16_TO_UINT8 = 1.0 / 257.0  # 65535 -> 255

# Kinds of ImageFormatError, for callers that count rejections by kind.
ENCODING = 'encoding'          # unknown encoding, or one that is not a camera image
SIZE = 'size'                  # too small, or a size the encoding cannot have
STEP = 'step'                  # rows shorter than width x bytes per pixel
DATA_LENGTH = 'data_length'    # data size disagrees with height x step
SHAPE = 'shape'                # an array whose dtype or shape does not match its encoding
FORMAT = 'format'              # compressed data of a kind that is not a camera picture
UNDECODABLE = 'undecodable'    # compressed data that is empty, cut off or corrupt


class ImageFormatError(ValueError):
    """An image does not match its declared encoding or cannot be used as a camera image.

    ``kind`` says what was wrong (one of the kinds above), for counting.
    """

    def __init__(self, message: str, kind: str = ENCODING) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Encoding:
    """How one encoding stores a pixel and how it becomes RGB.

    ``channels`` values of ``value_bytes`` bytes each per pixel; ``conversion`` is the OpenCV
    code applied after 16-bit values are scaled to 8 bits (None: the values are RGB already).
    ``even_width``: pixels come in pairs (YUV 4:2:2).
    """

    name: str
    channels: int
    value_bytes: int
    conversion: Optional[int]
    even_width: bool = False

    @property
    def pixel_bytes(self) -> int:
        """Return the bytes of one pixel."""
        return self.channels * self.value_bytes


def _table(*entries: Tuple[Any, ...]) -> Dict[str, Encoding]:
    return {entry[0]: Encoding(*entry) for entry in entries}


ENCODINGS: Dict[str, Encoding] = _table(
    ('rgb8', 3, 1, None),
    ('bgr8', 3, 1, cv2.COLOR_BGR2RGB),
    ('rgba8', 4, 1, cv2.COLOR_RGBA2RGB),
    ('bgra8', 4, 1, cv2.COLOR_BGRA2RGB),
    ('mono8', 1, 1, cv2.COLOR_GRAY2RGB),
    ('8UC1', 1, 1, cv2.COLOR_GRAY2RGB),
    ('8UC3', 3, 1, cv2.COLOR_BGR2RGB),
    ('8UC4', 4, 1, cv2.COLOR_BGRA2RGB),
    ('mono16', 1, 2, cv2.COLOR_GRAY2RGB),
    ('16UC1', 1, 2, cv2.COLOR_GRAY2RGB),
    ('rgb16', 3, 2, None),
    ('bgr16', 3, 2, cv2.COLOR_BGR2RGB),
    ('rgba16', 4, 2, cv2.COLOR_RGBA2RGB),
    ('bgra16', 4, 2, cv2.COLOR_BGRA2RGB),
    # cv_bridge's Bayer names give the first two pixels of the first row; OpenCV's codes name
    # the second and third pixels of the second row, hence the apparent swap.
    ('bayer_rggb8', 1, 1, cv2.COLOR_BayerBG2RGB),
    ('bayer_bggr8', 1, 1, cv2.COLOR_BayerRG2RGB),
    ('bayer_gbrg8', 1, 1, cv2.COLOR_BayerGR2RGB),
    ('bayer_grbg8', 1, 1, cv2.COLOR_BayerGB2RGB),
    ('bayer_rggb16', 1, 2, cv2.COLOR_BayerBG2RGB),
    ('bayer_bggr16', 1, 2, cv2.COLOR_BayerRG2RGB),
    ('bayer_gbrg16', 1, 2, cv2.COLOR_BayerGR2RGB),
    ('bayer_grbg16', 1, 2, cv2.COLOR_BayerGB2RGB),
    # YUV 4:2:2, two bytes per pixel: yuv422 (and uyvy) is U Y0 V Y1, yuv422_yuy2 (yuyv) is
    # Y0 U Y1 V.
    ('yuv422', 2, 1, cv2.COLOR_YUV2RGB_UYVY, True),
    ('uyvy', 2, 1, cv2.COLOR_YUV2RGB_UYVY, True),
    ('yuv422_yuy2', 2, 1, cv2.COLOR_YUV2RGB_YUY2, True),
    ('yuyv', 2, 1, cv2.COLOR_YUV2RGB_YUY2, True),
)
SUPPORTED_ENCODINGS: Tuple[str, ...] = tuple(ENCODINGS)
_BY_LOWER_NAME = {name.lower(): encoding for name, encoding in ENCODINGS.items()}
_DECODED_TO_RGB = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}


def encoding_info(encoding: str) -> Encoding:
    """Return the table entry of ``encoding`` (case and surrounding spaces ignored).

    Raise ``ImageFormatError`` naming the encoding as sent, with a hint, when it is not one.
    """
    found = _BY_LOWER_NAME.get(str(encoding).strip().lower())
    if found is None:
        raise ImageFormatError(
            f'image encoding {encoding!r} cannot be used as a camera image; publish rgb8 (or '
            f'another supported encoding: {", ".join(SUPPORTED_ENCODINGS)}), or put image_proc '
            f'in front', ENCODING)
    return found


def row_bytes(encoding: str, width: int) -> int:
    """Return the bytes of one unpadded row of ``width`` pixels in ``encoding``."""
    return encoding_info(encoding).pixel_bytes * int(width)


def _check_size(info: Encoding, sent: str, width: int, height: int) -> None:
    if width < MIN_SIDE_PX or height < MIN_SIDE_PX:
        raise ImageFormatError(f'{sent} image of {width}x{height} px is too small; both sides '
                               f'must be >= {MIN_SIDE_PX} px', SIZE)
    if info.even_width and width % 2:
        raise ImageFormatError(f'{sent} image has an odd width {width}; YUV 4:2:2 stores '
                               f'pixels in pairs', SIZE)


def check_raw(encoding: str, width: int, height: int, step: int, data_size: int) -> Encoding:
    """Check the fields of a raw image and return its table entry.

    The data must hold ``height`` rows of ``step`` bytes, the last one possibly without its
    padding. Raise ``ImageFormatError`` (with its kind) otherwise.
    """
    info = encoding_info(encoding)
    width, height, step, data_size = int(width), int(height), int(step), int(data_size)
    _check_size(info, encoding, width, height)
    needed = info.pixel_bytes * width
    if step < needed:
        raise ImageFormatError(f'{encoding} image {width}x{height} needs step >= {needed} bytes '
                               f'(width x {info.pixel_bytes} bytes per pixel), got step {step}',
                               STEP)
    if data_size not in (step * height, step * (height - 1) + needed):
        raise ImageFormatError(f'{encoding} image {width}x{height} with step {step} needs '
                               f'{step * height} bytes of data, got {data_size}', DATA_LENGTH)
    return info


def _byte_view(data: Any) -> np.ndarray:
    """Return the bytes of ``data`` as a 1-D uint8 array, without a copy where possible."""
    if isinstance(data, np.ndarray):
        flat = data.reshape(-1)
        return flat if flat.dtype == np.uint8 else flat.view(np.uint8)
    try:
        return np.frombuffer(data, np.uint8)
    except TypeError:  # a sequence of ints
        return np.asarray(data, np.uint8)


def _opencv_reason(error: Exception) -> str:
    return str(getattr(error, 'err', '') or error).strip()


def _convert(pixels: np.ndarray, info: Encoding, sent: str) -> np.ndarray:
    """Return (H, W[, C]) pixels of ``info`` (uint8, or uint16 in any byte order) as RGB."""
    if info.value_bytes == 2:
        if not pixels.dtype.isnative or not pixels.flags.aligned or \
                pixels.strides[0] % pixels.itemsize:
            # OpenCV misreads rows that do not start on a value boundary: copy them first.
            pixels = np.ascontiguousarray(pixels, np.uint16)
        pixels = cv2.convertScaleAbs(pixels, alpha=UINT16_TO_UINT8)
    if info.conversion is None:
        return np.ascontiguousarray(pixels)
    try:
        return cv2.cvtColor(pixels, info.conversion)
    except cv2.error as error:
        raise ImageFormatError(f'{sent} image of shape {pixels.shape} cannot be converted to '
                               f'RGB: {_opencv_reason(error)}', SHAPE) from error


def decode_raw(data: Any, encoding: str, width: int, height: int, step: int,
               is_bigendian: bool) -> np.ndarray:
    """Return a raw image (the fields of a sensor_msgs/Image) as contiguous (H, W, 3) RGB uint8.

    ``data`` is bytes, bytearray, memoryview, array or a uint8 array; rgb8 without row padding
    comes back as a view of it, everything else in one new array (plus a byte swap for
    16-bit values stored in the other byte order).
    """
    buffer = _byte_view(data)
    info = check_raw(encoding, width, height, step, buffer.size)
    width, height, step = int(width), int(height), int(step)
    dtype = np.dtype(np.uint8) if info.value_bytes == 1 else \
        np.dtype('>u2' if is_bigendian else '<u2')
    shape: Tuple[int, ...] = (height, width) if info.channels == 1 else \
        (height, width, info.channels)
    strides: Tuple[int, ...] = (step, info.pixel_bytes) if info.channels == 1 else \
        (step, info.pixel_bytes, info.value_bytes)
    pixels = np.ndarray(shape, dtype, buffer=buffer, strides=strides)
    return _convert(pixels, info, encoding)


def to_rgb(image: np.ndarray, encoding: str = 'rgb8') -> np.ndarray:
    """Return an array in ``encoding`` as a contiguous (H, W, 3) RGB uint8 array.

    The array is (H, W) or (H, W, 1) for one channel and (H, W, C) otherwise, uint8 for 8-bit
    encodings and uint16 for 16-bit ones. Raise ``ImageFormatError`` when it does not match.
    """
    info = encoding_info(encoding)
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f'expected a numpy array, got {type(image).__name__}', SHAPE)
    wanted = np.uint8 if info.value_bytes == 1 else np.uint16
    if image.dtype.kind != 'u' or image.dtype.itemsize != info.value_bytes:
        raise ImageFormatError(f'expected {np.dtype(wanted)} pixels for {encoding}, got '
                               f'{image.dtype}', SHAPE)
    if info.channels == 1 and image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != (2 if info.channels == 1 else 3) or \
            (info.channels > 1 and image.shape[2] != info.channels):
        expected = '(H, W)' if info.channels == 1 else f'(H, W, {info.channels})'
        raise ImageFormatError(f'{encoding} needs shape {expected}, got {image.shape}', SHAPE)
    _check_size(info, encoding, image.shape[1], image.shape[0])
    return _convert(image, info, encoding)


def decoded_to_rgb(image: np.ndarray) -> np.ndarray:
    """Return a picture decoded by OpenCV (grey, BGR or BGRA; 8 or 16 bits) as RGB uint8."""
    if image.dtype == np.uint16:
        image = cv2.convertScaleAbs(image, alpha=UINT16_TO_UINT8)
    elif image.dtype != np.uint8:
        raise ImageFormatError(f'decoded pictures of {image.dtype} values are not camera images; '
                               f'expected 8 or 16 bits', FORMAT)
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in _DECODED_TO_RGB:
        raise ImageFormatError(f'decoded picture has {channels} channels; expected 1, 3 or 4',
                               FORMAT)
    return cv2.cvtColor(image, _DECODED_TO_RGB[channels])


def decode_compressed(data: Any, image_format: str) -> np.ndarray:
    """Return the JPEG or PNG picture of a sensor_msgs/CompressedImage as (H, W, 3) RGB uint8.

    Grey, colour and colour with alpha, 8 or 16 bits. A compressedDepth stream is refused.
    """
    shown = str(image_format).strip()
    if 'compresseddepth' in shown.lower():
        raise ImageFormatError(
            f'compressed image format {shown!r} is a compressedDepth stream (depth, not a camera '
            f'picture); subscribe to the camera image or its image/compressed topic', FORMAT)
    buffer = _byte_view(data)
    if not buffer.size:
        raise ImageFormatError(f'compressed image ({shown or "no format"}) has no data; '
                               f'expected jpeg or png bytes', UNDECODABLE)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # OpenCV raises for some corrupt streams instead of failing
        raise ImageFormatError(f'cannot decode {buffer.size} bytes of compressed image data '
                               f'(format {shown!r}): {_opencv_reason(error)}',
                               UNDECODABLE) from error
    if image is None:
        raise ImageFormatError(f'cannot decode {buffer.size} bytes of compressed image data '
                               f'(format {shown!r}); expected a complete jpeg or png',
                               UNDECODABLE)
    return decoded_to_rgb(image)
