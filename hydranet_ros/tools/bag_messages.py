"""Conversions between recorded sensor_msgs messages (rosbags objects) and NumPy images."""
from typing import Any, Dict, Tuple

import numpy as np

import cv2

from .image_io import to_uint8_rgb

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
_COMPRESSED_READ_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH

# encoding -> (channels, bytes per channel, OpenCV conversion to RGB or None for rgb8)
_PACKED: Dict[str, Tuple[int, int, Any]] = {
    'rgb8': (3, 1, None),
    'bgr8': (3, 1, cv2.COLOR_BGR2RGB),
    '8UC3': (3, 1, cv2.COLOR_BGR2RGB),
    'rgba8': (4, 1, cv2.COLOR_RGBA2RGB),
    'bgra8': (4, 1, cv2.COLOR_BGRA2RGB),
    '8UC4': (4, 1, cv2.COLOR_BGRA2RGB),
    'mono8': (1, 1, cv2.COLOR_GRAY2RGB),
    '8UC1': (1, 1, cv2.COLOR_GRAY2RGB),
    'mono16': (1, 2, cv2.COLOR_GRAY2RGB),
    '16UC1': (1, 2, cv2.COLOR_GRAY2RGB),
    'rgb16': (3, 2, None),
    'bgr16': (3, 2, cv2.COLOR_BGR2RGB),
    'rgba16': (4, 2, cv2.COLOR_RGBA2RGB),
    'bgra16': (4, 2, cv2.COLOR_BGRA2RGB),
    # Bayer names follow cv_bridge: OpenCV names the pattern by its second row.
    'bayer_rggb8': (1, 1, cv2.COLOR_BayerBG2RGB),
    'bayer_bggr8': (1, 1, cv2.COLOR_BayerRG2RGB),
    'bayer_gbrg8': (1, 1, cv2.COLOR_BayerGR2RGB),
    'bayer_grbg8': (1, 1, cv2.COLOR_BayerGB2RGB),
}
_YUV422: Dict[str, int] = {
    'yuv422': cv2.COLOR_YUV2RGB_UYVY,
    'uyvy': cv2.COLOR_YUV2RGB_UYVY,
    'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2,
    'yuyv': cv2.COLOR_YUV2RGB_YUY2,
}
SUPPORTED_IMAGE_ENCODINGS = tuple(_PACKED) + tuple(_YUV422)


class MessageConversionError(ValueError):
    """A recorded message cannot be converted (unsupported encoding, wrong size, bad data)."""


def _rows(msg: Any, row_bytes: int) -> np.ndarray:
    """Return the (height, row_bytes) pixel bytes of an Image, dropping row padding."""
    data = np.asarray(msg.data, dtype=np.uint8)
    step = int(msg.step) or row_bytes
    height = int(msg.height)
    if step < row_bytes or data.size < step * height:
        raise MessageConversionError(
            f'{msg.encoding} image of {msg.width}x{height} px needs {row_bytes} bytes per row '
            f'and {row_bytes * height} in all; the message has step {msg.step} and '
            f'{data.size} bytes')
    return data[:step * height].reshape(height, step)[:, :row_bytes]


def image_to_rgb(msg: Any) -> np.ndarray:
    """Return a sensor_msgs/Image as HxWx3 RGB uint8 (16-bit and YUV/Bayer images converted)."""
    encoding = str(msg.encoding)
    width, height = int(msg.width), int(msg.height)
    if encoding.lower() in _YUV422:
        pixels = _rows(msg, width * 2).reshape(height, width, 2)
        return cv2.cvtColor(np.ascontiguousarray(pixels), _YUV422[encoding.lower()])
    if encoding not in _PACKED:
        raise MessageConversionError(
            f'image encoding {encoding!r} is not supported; supported: '
            f'{", ".join(SUPPORTED_IMAGE_ENCODINGS)}')
    channels, depth_bytes, conversion = _PACKED[encoding]
    pixels = _rows(msg, width * channels * depth_bytes)
    if depth_bytes == 2:
        dtype = np.dtype('>u2') if msg.is_bigendian else np.dtype('<u2')
        wide = np.ascontiguousarray(pixels).view(dtype).astype(np.uint16)
        pixels = cv2.convertScaleAbs(wide, alpha=1.0 / 257.0)
    pixels = np.ascontiguousarray(pixels.reshape(height, width, channels) if channels > 1
                                  else pixels.reshape(height, width))
    return pixels if conversion is None else cv2.cvtColor(pixels, conversion)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """Return a sensor_msgs/CompressedImage (JPEG, PNG, ...) as HxWx3 RGB uint8."""
    image_format = str(msg.format)
    if 'compresseddepth' in image_format.lower():
        raise MessageConversionError(
            f'compressed image format {image_format!r} is a depth image, not a camera image')
    data = np.asarray(msg.data, dtype=np.uint8)
    image = cv2.imdecode(data, _COMPRESSED_READ_FLAGS) if data.size else None
    if image is None:
        raise MessageConversionError(
            f'compressed image ({image_format!r}, {data.size} bytes) cannot be decoded')
    return to_uint8_rgb(image)


def message_to_rgb(msg: Any, msgtype: str) -> np.ndarray:
    """Return an Image or CompressedImage message as RGB uint8."""
    if msgtype == IMAGE_TYPE:
        return image_to_rgb(msg)
    if msgtype == COMPRESSED_IMAGE_TYPE:
        return compressed_to_rgb(msg)
    raise MessageConversionError(f'{msgtype} is not an image type')


def image_message(types: Dict[str, Any], header: Any, array: np.ndarray, encoding: str) -> Any:
    """Return a sensor_msgs/Image with ``header`` holding ``array`` (little-endian)."""
    height, width = array.shape[:2]
    little_endian = array.astype(array.dtype.newbyteorder('<'), copy=False)
    data = np.ascontiguousarray(little_endian).view(np.uint8).reshape(-1)
    return types[IMAGE_TYPE](header=header, height=height, width=width, encoding=encoding,
                             is_bigendian=0, step=data.size // height, data=data)


def restamped_camera_info(types: Dict[str, Any], info: Any, header: Any) -> Any:
    """Return a copy of a sensor_msgs/CameraInfo carrying ``header`` (stamp and frame id)."""
    fields = {name: getattr(info, name) for name in info.__dataclass_fields__}
    fields['header'] = header
    return types[CAMERA_INFO_TYPE](**fields)
