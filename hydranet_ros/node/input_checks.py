"""Cheap checks of camera messages as they arrive, before they can displace a good frame.

A malformed image never enters the newest-frame slot: the camera input rejects it as it takes
it, with a kind (for counting) and a reason naming what was expected and what was found. The
checks read only the header fields and the data length (and, for compressed data, the picture
size from the PNG or JPEG header, without decoding pixels, so that a small message claiming a
huge picture is refused before anything of that size is allocated); they cost microseconds
whatever the message claims.
"""
import math
from typing import Sequence

from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ..engine.images import ImageFormatError, MIN_SIDE_PX, row_bytes
from ..engine.picture_header import CompressedHeaderError, EIGHT_BITS, picture_header, \
    UnknownPictureFormat

# Kinds of rejection, counted separately in the diagnostics (frames_rejected_<kind>).
ENCODING = 'encoding'          # unknown encoding, or one the network cannot use
SIZE = 'size'                  # zero or tiny width/height
STEP = 'step'                  # row length shorter than width x bytes per pixel
DATA_LENGTH = 'data_length'    # data size disagrees with height x step
TOO_LARGE = 'too_large'        # more pixels than max_input_pixels
FORMAT = 'format'              # compressed data that is neither PNG nor JPEG, or compressedDepth
UNDECODABLE = 'undecodable'    # compressed data that is cut off or corrupt
OUT_OF_MEMORY = 'out_of_memory'  # inference ran out of (GPU) memory on this frame
REJECTION_KINDS = (ENCODING, SIZE, STEP, DATA_LENGTH, TOO_LARGE, FORMAT, UNDECODABLE,
                   OUT_OF_MEMORY)
CAMERA_INFO = 'camera_info'    # camera_info with zero or non-finite intrinsics


class RejectedInput(ValueError):
    """A message the node will not process; ``kind`` is one of REJECTION_KINDS."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


def _check_pixel_count(width: int, height: int, max_pixels: int, what: str) -> None:
    if width < MIN_SIDE_PX or height < MIN_SIDE_PX:
        raise RejectedInput(SIZE, f'{what} has size {width}x{height}; both sides must be '
                                  f'>= {MIN_SIDE_PX} px')
    if width * height > max_pixels:
        raise RejectedInput(TOO_LARGE, f'{what} has {width}x{height} = {width * height} px, '
                                       f'more than max_input_pixels {max_pixels}')


def check_image(msg: Image, max_pixels: int) -> None:
    """Raise ``RejectedInput`` unless ``msg`` is an image the network can process."""
    encoding = msg.encoding
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    try:
        needed = row_bytes(encoding, max(width, 0))
    except ImageFormatError as error:
        raise RejectedInput(ENCODING, str(error)) from error
    _check_pixel_count(width, height, max_pixels, f'{encoding} image')
    if step < needed:
        raise RejectedInput(STEP, f'{encoding} image {width}x{height} needs step >= '
                                  f'{needed} bytes, got step {step}')
    size = len(msg.data)
    if size not in (step * height, step * (height - 1) + needed):
        raise RejectedInput(DATA_LENGTH, f'{encoding} image {width}x{height} with step {step} '
                                         f'needs {step * height} bytes of data, got {size}')


def check_compressed(msg: CompressedImage, max_pixels: int) -> None:
    """Raise ``RejectedInput`` unless ``msg`` holds PNG or JPEG of an acceptable size."""
    image_format = msg.format.strip()
    if 'compresseddepth' in image_format.lower():
        raise RejectedInput(FORMAT, f'compressed image format {image_format!r} is a '
                                    f'compressedDepth stream; expected jpeg or png of a colour '
                                    f'or grey image')
    if not len(msg.data):
        raise RejectedInput(UNDECODABLE, f'compressed image ({image_format or "no format"}) '
                                         f'has no data; expected jpeg or png bytes')
    try:
        header = picture_header(msg.data)
    except CompressedHeaderError as error:
        kind = FORMAT if isinstance(error, UnknownPictureFormat) else UNDECODABLE
        raise RejectedInput(kind, f'compressed image (format {image_format!r}, '
                                  f'{len(msg.data)} bytes): {error}') from error
    if header.bit_depth > EIGHT_BITS:
        raise RejectedInput(ENCODING, f'compressed image is a {header.bit_depth}-bit '
                                      f'{header.image_format}; expected 8-bit colour or grey')
    _check_pixel_count(header.width, header.height, max_pixels,
                       f'compressed {header.image_format} image')


def _non_finite(values: Sequence[float]) -> bool:
    return not all(math.isfinite(v) for v in values)


def check_camera_info(msg: CameraInfo) -> None:
    """Raise ``RejectedInput`` (kind CAMERA_INFO) for a calibration that cannot be used."""
    for name in ('k', 'p', 'r', 'd'):
        if _non_finite(getattr(msg, name)):
            shown = ', '.join(f'{float(v):g}' for v in getattr(msg, name))
            raise RejectedInput(CAMERA_INFO, f'camera_info {name.upper()} has non-finite values '
                                             f'[{shown}]')
    if not any(msg.k):
        raise RejectedInput(CAMERA_INFO, 'camera_info K is all zero (an uncalibrated camera)')
    fx, fy = msg.k[0], msg.k[4]
    if fx <= 0.0 or fy <= 0.0:
        raise RejectedInput(CAMERA_INFO, f'camera_info K has focal lengths fx {fx}, fy {fy}; '
                                         f'expected positive values')
    if msg.p[0] <= 0.0 or msg.p[5] <= 0.0:
        raise RejectedInput(CAMERA_INFO, f'camera_info P has focal lengths fx {msg.p[0]}, '
                                         f'fy {msg.p[5]}; expected positive values')
