"""The payloads of image_transport's ``compressed`` and ``compressedDepth`` formats (no ROS).

What the stock plugins publish, so that their subscribers (RViz, Foxglove, web viewers) decode
this package's outputs unchanged (facts read from ros-perception/image_transport_plugins,
``compressed_image_transport`` and ``compressed_depth_image_transport``):

- ``compressed``: a ``sensor_msgs/CompressedImage`` whose ``format`` is
  ``'<encoding>; <jpeg|png> compressed <stored>'``, where colour images are stored as ``bgr8``
  and grey ones leave ``<stored>`` empty (the string then ends with a space); ``data`` is the
  JPEG or PNG file.
- ``compressedDepth`` (png): ``format`` is ``'32FC1; compressedDepth png'``; ``data`` is a
  12-byte configuration header (int32 compression format, 0 = inverse depth, then two float32
  quantisation parameters ``a`` and ``b``, native byte order) followed by a 16-bit PNG of
  ``v = uint16(a / depth + b)`` (truncated), ``a = z0 * (z0 + 1)`` and ``b = 1 - a / depth_max``;
  ``z0`` is the depth at which one step of ``v`` is about one metre (plugin default 100 m).
  ``v = 0`` marks invalid pixels (NaN, and depths at or beyond ``depth_max``); the decoder
  returns ``a / (v - b)``. A decoded depth ``d'`` of a true depth ``d`` satisfies
  ``0 <= d' - d < d^2 / (a - d)``: about 1 cm at 10 m and 0.6 m at 80 m with ``z0`` = 100 m.
  Depths too near for 16 bits (``a / d + b > 65535``, below ~0.15 m with the defaults) are
  marked invalid too (the plugin's own conversion overflows there).
"""
import struct
from typing import NamedTuple, Tuple

import numpy as np

import cv2

PNG_LEVEL = 3  # OpenCV's default and the plugins' default png_level
DEFAULT_JPEG_QUALITY = 80
DEFAULT_DEPTH_QUANTIZATION_M = 100.0
INVERSE_DEPTH_FORMAT = 0  # compressed_depth_image_transport's INV_DEPTH
CONFIG_HEADER = struct.Struct('=iff')  # the plugin's ConfigHeader, in native byte order
MAX_INVERSE_DEPTH = np.iinfo(np.uint16).max
DEPTH_MAX_MARGIN = 1e-3  # relative: depth_max just beyond a frame's farthest depth
COLOUR_ENCODINGS = {'rgb8': cv2.COLOR_RGB2BGR, 'bgr8': None}
GREY_ENCODINGS = {'mono8': np.uint8, '16UC1': np.uint16, 'mono16': np.uint16}
COMPRESSED_DEPTH_FORMAT = '32FC1; compressedDepth png'


class TransportFormatError(ValueError):
    """An image cannot be written in, or read from, an image_transport format."""


class CompressedPayload(NamedTuple):
    """The two fields of a sensor_msgs/CompressedImage besides its header."""

    format: str
    data: bytes


def _png(pixels: np.ndarray, png_level: int) -> bytes:
    ok, encoded = cv2.imencode('.png', pixels, [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
    if not ok:
        raise TransportFormatError(f'OpenCV could not write a PNG of {pixels.dtype} pixels '
                                   f'of shape {pixels.shape}')
    return encoded.tobytes()


def png_compressed(pixels: np.ndarray, encoding: str,
                   png_level: int = PNG_LEVEL) -> CompressedPayload:
    """Return the lossless ``compressed`` payload of a grey (mono8, 16UC1) or colour image."""
    if encoding in GREY_ENCODINGS:
        if pixels.ndim != 2 or pixels.dtype != GREY_ENCODINGS[encoding]:
            raise TransportFormatError(
                f'{encoding} needs (H, W) {np.dtype(GREY_ENCODINGS[encoding])} pixels, got '
                f'{pixels.dtype} of shape {pixels.shape}')
        return CompressedPayload(f'{encoding}; png compressed ', _png(pixels, png_level))
    return CompressedPayload(f'{encoding}; png compressed bgr8',
                             _png(_bgr(pixels, encoding), png_level))


def jpeg_compressed(pixels: np.ndarray, encoding: str,
                    quality: int = DEFAULT_JPEG_QUALITY) -> CompressedPayload:
    """Return the ``compressed`` JPEG payload of an rgb8 or bgr8 image (lossy, for people)."""
    ok, encoded = cv2.imencode('.jpg', _bgr(pixels, encoding),
                               [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise TransportFormatError(f'OpenCV could not write a JPEG of shape {pixels.shape}')
    return CompressedPayload(f'{encoding}; jpeg compressed bgr8', encoded.tobytes())


def _bgr(pixels: np.ndarray, encoding: str) -> np.ndarray:
    if encoding not in COLOUR_ENCODINGS:
        raise TransportFormatError(f'cannot compress a {encoding} image; expected one of '
                                   f'{", ".join(list(COLOUR_ENCODINGS) + list(GREY_ENCODINGS))}')
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise TransportFormatError(f'{encoding} needs (H, W, 3) uint8 pixels, got '
                                   f'{pixels.dtype} of shape {pixels.shape}')
    conversion = COLOUR_ENCODINGS[encoding]
    return cv2.cvtColor(pixels, conversion) if conversion is not None else pixels


def decode_compressed(payload: CompressedPayload) -> Tuple[np.ndarray, str]:
    """Return (pixels, encoding) of a ``compressed`` payload, as the stock subscriber does."""
    encoding, _, stored = payload.format.partition(';')
    encoding = encoding.strip()
    pixels = cv2.imdecode(np.frombuffer(payload.data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise TransportFormatError(f'cannot decode {len(payload.data)} bytes of format '
                                   f'{payload.format!r}')
    if 'compressed bgr' in stored and encoding == 'rgb8':
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    return pixels, encoding


def depth_quantization(quantization_m: float, depth_max_m: float) -> Tuple[float, float]:
    """Return the plugin's (a, b) in float32 arithmetic: a = z0 (z0 + 1), b = 1 - a / max."""
    z0 = np.float32(quantization_m)
    a = np.float32(z0 * (z0 + np.float32(1.0)))
    b = np.float32(np.float32(1.0) - a / np.float32(depth_max_m))
    return float(a), float(b)


def frame_depth_max(depth_m: np.ndarray) -> float:
    """Return a depth_max just beyond the farthest finite positive depth (1 m when none)."""
    finite = depth_m[np.isfinite(depth_m) & (depth_m > 0.0)]
    farthest = float(finite.max()) if finite.size else 1.0
    return farthest * (1.0 + DEPTH_MAX_MARGIN)


def inverse_depth(depth_m: np.ndarray, a: float, b: float, depth_max_m: float) -> np.ndarray:
    """Return the 16-bit inverse depth of a 32FC1 image (0 where it cannot be represented)."""
    if depth_m.ndim != 2 or depth_m.dtype != np.float32:
        raise TransportFormatError(f'compressedDepth needs (H, W) float32 depth, got '
                                   f'{depth_m.dtype} of shape {depth_m.shape}')
    with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
        value = np.float32(a) / depth_m + np.float32(b)
        valid = ((depth_m > 0.0) & (depth_m < np.float32(depth_max_m)) & (value >= 1.0)
                 & (value <= MAX_INVERSE_DEPTH))
    return np.where(valid, value, np.float32(0.0)).astype(np.uint16)


def compressed_depth(depth_m: np.ndarray, depth_max_m: float = 0.0,
                     quantization_m: float = DEFAULT_DEPTH_QUANTIZATION_M,
                     png_level: int = PNG_LEVEL) -> CompressedPayload:
    """Return the ``compressedDepth`` payload of a 32FC1 depth image in metres.

    ``depth_max_m`` 0 puts the limit just beyond the frame's farthest depth (every valid pixel
    kept; the accuracy depends on ``quantization_m`` only).
    """
    if depth_max_m <= 0.0:
        depth_max_m = frame_depth_max(depth_m)
    if quantization_m <= 0.0:
        raise TransportFormatError(f'the depth quantisation must be positive, got '
                                   f'{quantization_m} m')
    a, b = depth_quantization(quantization_m, depth_max_m)
    header = CONFIG_HEADER.pack(INVERSE_DEPTH_FORMAT, a, b)
    return CompressedPayload(COMPRESSED_DEPTH_FORMAT,
                             header + _png(inverse_depth(depth_m, a, b, depth_max_m), png_level))


def decode_compressed_depth(payload: CompressedPayload) -> np.ndarray:
    """Return the 32FC1 depth of a ``compressedDepth`` png payload (NaN where invalid)."""
    encoding = payload.format.partition(';')[0].strip()
    if encoding != '32FC1' or 'compressedDepth' not in payload.format:
        raise TransportFormatError(f'format {payload.format!r} is not a 32FC1 compressedDepth '
                                   f'image')
    if len(payload.data) <= CONFIG_HEADER.size:
        raise TransportFormatError(f'compressedDepth data of {len(payload.data)} bytes has no '
                                   f'image after its {CONFIG_HEADER.size}-byte header')
    kind, a, b = CONFIG_HEADER.unpack_from(payload.data)
    if kind != INVERSE_DEPTH_FORMAT:
        raise TransportFormatError(f'compressedDepth format {kind} is not inverse depth '
                                   f'({INVERSE_DEPTH_FORMAT})')
    inverse = cv2.imdecode(np.frombuffer(payload.data, np.uint8, offset=CONFIG_HEADER.size),
                           cv2.IMREAD_UNCHANGED)
    if inverse is None or inverse.dtype != np.uint16:
        raise TransportFormatError('compressedDepth data does not hold a 16-bit PNG')
    with np.errstate(divide='ignore'):
        depth = np.float32(a) / (inverse.astype(np.float32) - np.float32(b))
    depth[inverse == 0] = np.nan
    return depth


def depth_error_bound_m(depth_m: np.ndarray, quantization_m: float) -> np.ndarray:
    """Return the largest decoding error of each depth: d^2 / (a - d)."""
    z0 = float(quantization_m)
    a = z0 * (z0 + 1.0)
    return depth_m.astype(np.float64) ** 2 / (a - depth_m.astype(np.float64))
