"""Validation and conversion of camera images (any common encoding) to RGB uint8."""
import numpy as np

import cv2

CHANNELS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}
SUPPORTED_ENCODINGS = tuple(CHANNELS)
_TO_RGB = {
    'bgr8': cv2.COLOR_BGR2RGB,
    'rgba8': cv2.COLOR_RGBA2RGB,
    'bgra8': cv2.COLOR_BGRA2RGB,
    'mono8': cv2.COLOR_GRAY2RGB,
}
MIN_SIDE_PX = 8


class ImageFormatError(ValueError):
    """An image does not match its declared encoding or cannot be processed."""


def to_rgb(image: np.ndarray, encoding: str = 'rgb8') -> np.ndarray:
    """Return ``image`` as a contiguous HxWx3 RGB uint8 array, or raise ``ImageFormatError``."""
    encoding = encoding.lower()
    if encoding not in CHANNELS:
        raise ImageFormatError(
            f'unsupported encoding {encoding!r}; supported: {", ".join(SUPPORTED_ENCODINGS)}')
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f'expected a numpy array, got {type(image).__name__}')
    if image.dtype != np.uint8:
        raise ImageFormatError(f'expected uint8 pixels for {encoding}, got {image.dtype}')
    channels = CHANNELS[encoding]
    if channels == 1 and image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    expected_ndim = 2 if channels == 1 else 3
    if image.ndim != expected_ndim or (channels > 1 and image.shape[2] != channels):
        raise ImageFormatError(
            f'{encoding} needs shape (H, W{"" if channels == 1 else f", {channels}"}), '
            f'got {image.shape}')
    height, width = image.shape[:2]
    if height < MIN_SIDE_PX or width < MIN_SIDE_PX:
        raise ImageFormatError(
            f'image of {width}x{height} px is too small; both sides must be >= {MIN_SIDE_PX} px')
    if encoding == 'rgb8':
        return np.ascontiguousarray(image)
    return cv2.cvtColor(np.ascontiguousarray(image), _TO_RGB[encoding])
