"""Malformed and good camera messages for fuzzing hydranet_node, each with its expected fate.

Every maker takes a random generator and a header and returns ``(message, expected)`` where
``expected`` is the rejection kind the node must count (see ``hydranet_ros.node.input_checks``),
``DECODER`` for compressed data whose header is valid but whose body is cut off or garbled
(the decoder decides: rejected as undecodable, or decoded and answered), or ``GOOD``.
"""
import math
from typing import Callable, Dict, List, Tuple

import numpy as np

import cv2
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from hydranet_ros.node.messages import array_to_image, encode_compressed
from hydranet_ros.node.input_checks import (CAMERA_INFO, DATA_LENGTH, ENCODING, FORMAT, SIZE,
                                            STEP, TOO_LARGE, UNDECODABLE)

GOOD = 'good'
DECODER = 'decoder'
ABSURD_SIDE_PX = 100_000
UINT32_MAX = 2**32 - 1
UNKNOWN_ENCODINGS = ('', 'nv12', 'nv21', 'yuv420', 'jpeg', 'rgb8x', 'mono9', '32FC3', 'hsv8',
                     'bayer_rggb12')
# Known to ROS, but depth or other data, not a camera picture.
UNUSABLE_ENCODINGS = {'32FC1': (np.float32, 1), '16SC1': (np.int16, 1), '64FC1': (np.float64, 1),
                      '32SC1': (np.int32, 1)}
GOOD_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8')
MAX_PADDING_BYTES = 7
Case = Tuple[object, str]
Maker = Callable[[np.random.Generator, object], Case]


class FuzzImages:
    """Good pictures of one size in every encoding, and their PNG and JPEG data."""

    def __init__(self, rgb: np.ndarray, max_pixels: int) -> None:
        self.rgb = rgb
        self.height, self.width = rgb.shape[:2]
        self.max_pixels = max_pixels
        self.pixels = {
            'rgb8': rgb, 'bgr8': rgb[:, :, ::-1].copy(),
            'rgba8': np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
            'bgra8': np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 255, np.uint8)]),
            'mono8': rgb[:, :, 1].copy(),
        }
        bgr = self.pixels['bgr8']
        self.png = cv2.imencode('.png', bgr)[1].tobytes()
        self.jpeg = cv2.imencode('.jpg', bgr)[1].tobytes()
        self.png16 = cv2.imencode('.png', rgb[:, :, 0].astype(np.uint16) * 257)[1].tobytes()
        self.tiny_png = cv2.imencode('.png', bgr[:4, :4])[1].tobytes()
        self.jpeg_frame_offset = _jpeg_frame_offset(self.jpeg)


def _jpeg_frame_offset(data: bytes) -> int:
    for marker in (b'\xff\xc0', b'\xff\xc2'):
        offset = data.find(marker)
        if offset > 0:
            return offset
    raise ValueError('the encoded JPEG has no frame header')


def _image(header, width: int, height: int, encoding: str, step: int, data: bytes,
           big_endian: bool = False) -> Image:
    msg = Image(header=header, width=width, height=height, encoding=encoding, step=step,
                is_bigendian=int(big_endian))
    msg.data = data
    return msg


def _compressed(header, image_format: str, data: bytes) -> CompressedImage:
    msg = CompressedImage(header=header, format=image_format)
    msg.data = data
    return msg


def _random_bytes(rng: np.random.Generator, size: int) -> bytes:
    return rng.integers(0, 256, size, dtype=np.uint8).tobytes()


# ------------------------------------------------------------------ raw images
def _good_raw(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    encoding = GOOD_ENCODINGS[rng.integers(len(GOOD_ENCODINGS))]
    msg = array_to_image(images.pixels[encoding], encoding, header)
    variant = rng.integers(3)
    if variant == 1:  # rows padded by an odd number of bytes: unusual, valid
        padding = int(rng.integers(1, MAX_PADDING_BYTES + 1))
        rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
        padded = np.zeros((msg.height, msg.step + padding), np.uint8)
        padded[:, :msg.step] = rows
        msg.step += padding
        msg.data = padded.tobytes()
    elif variant == 2:  # a big-endian flag on 8-bit data changes nothing
        msg.is_bigendian = 1
    return msg, GOOD


def _unknown_encoding(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    msg = array_to_image(images.rgb, 'rgb8', header)
    if rng.random() < 0.5:
        msg.encoding = UNKNOWN_ENCODINGS[rng.integers(len(UNKNOWN_ENCODINGS))]
    else:
        letters = rng.integers(33, 127, int(rng.integers(1, 12)), dtype=np.uint8)
        msg.encoding = '#' + letters.tobytes().decode('ascii')
    return msg, ENCODING


def _unusable_encoding(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    names = list(UNUSABLE_ENCODINGS)
    encoding = names[rng.integers(len(names))]
    dtype, channels = UNUSABLE_ENCODINGS[encoding]
    item = np.dtype(dtype).itemsize * channels
    step = images.width * item
    data = _random_bytes(rng, step * images.height)
    return _image(header, images.width, images.height, encoding, step, data,
                  big_endian=bool(rng.integers(2))), ENCODING


def _mismatched_encoding(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    """Declare rgba8 or bgra8 over rgb8 rows: the step is too short for 4 bytes a pixel."""
    msg = array_to_image(images.rgb, 'rgb8', header)
    msg.encoding = ('rgba8', 'bgra8')[rng.integers(2)]
    return msg, STEP


def _step_too_small(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    row_bytes = images.width * 3
    step = int(rng.integers(0, row_bytes))
    return _image(header, images.width, images.height, 'rgb8', step,
                  _random_bytes(rng, step * images.height)), STEP


def _data_too_short(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    msg = array_to_image(images.rgb, 'rgb8', header)
    msg.data = bytes(msg.data)[:int(rng.integers(0, len(msg.data) - 1))]
    return msg, DATA_LENGTH


def _data_too_long(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    msg = array_to_image(images.rgb, 'rgb8', header)
    msg.data = bytes(msg.data) + _random_bytes(rng, int(rng.integers(1, 1000)))
    return msg, DATA_LENGTH


def _size_disagrees_with_data(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    msg = array_to_image(images.rgb, 'rgb8', header)
    msg.width, msg.height = images.width + int(rng.integers(1, 64)), images.height + 8
    msg.step = msg.width * 3
    return msg, DATA_LENGTH


def _odd_stride_unpadded_data(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    msg = array_to_image(images.rgb, 'rgb8', header)
    msg.step += 2 * int(rng.integers(1, MAX_PADDING_BYTES)) + 1
    return msg, DATA_LENGTH


def _big_endian_short(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    msg = array_to_image(images.pixels['bgr8'], 'bgr8', header)
    msg.is_bigendian = 1
    msg.data = bytes(msg.data)[:len(msg.data) // 2]
    return msg, DATA_LENGTH


def _zero_or_tiny_size(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    width, height = (int(v) for v in rng.integers(0, 8, 2))
    if rng.random() < 0.5:
        width, height = (0, images.height) if rng.random() < 0.5 else (images.width, 0)
    return _image(header, width, height, 'rgb8', width * 3,
                  _random_bytes(rng, width * height * 3)), SIZE


def _absurd_size(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    side = (ABSURD_SIDE_PX, UINT32_MAX)[rng.integers(2)]
    width, height = (side, side) if rng.random() < 0.5 else (side, 8)
    return _image(header, width, height, 'rgb8', min(width * 3, UINT32_MAX),
                  _random_bytes(rng, int(rng.integers(0, 64)))), TOO_LARGE


def _too_many_pixels(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    """Return a complete mono8 frame just over max_input_pixels: well formed, too big."""
    width = int(math.isqrt(images.max_pixels)) + 8
    pixels = np.zeros((width, width), np.uint8)
    return array_to_image(pixels, 'mono8', header), TOO_LARGE


def _random_fields(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    """Return random sizes, step and data length that never agree."""
    encoding = GOOD_ENCODINGS[rng.integers(len(GOOD_ENCODINGS))]
    channels = {'mono8': 1, 'rgb8': 3, 'bgr8': 3}.get(encoding, 4)
    width, height = (int(v) for v in rng.integers(8, 400, 2))
    step = width * channels + int(rng.integers(0, 16))
    size = int(rng.integers(0, 4096))
    while size in (step * height, step * (height - 1) + width * channels):
        size += 1
    return _image(header, width, height, encoding, step, _random_bytes(rng, size)), DATA_LENGTH


# ------------------------------------------------------------------ compressed images
def _good_compressed(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    image_format = ('png', 'jpeg')[rng.integers(2)]
    return encode_compressed(images.rgb, 'rgb8', image_format, header), GOOD


def _compressed_depth(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    return _compressed(header, '16UC1; compressedDepth png', images.png), FORMAT


def _empty_compressed(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    return _compressed(header, ('png', 'jpeg', '')[rng.integers(3)], b''), UNDECODABLE


def _garbage_compressed(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    data = bytearray(_random_bytes(rng, int(rng.integers(1, 5000))))
    if data[0] in (0x89, 0xFF):
        data[0] = 0x00
    return _compressed(header, 'jpeg', bytes(data)), FORMAT


def _png_cut_in_header(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    return _compressed(header, 'png', images.png[:int(rng.integers(1, 26))]), UNDECODABLE


def _jpeg_cut_before_frame(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    cut = int(rng.integers(2, images.jpeg_frame_offset + 4))
    return _compressed(header, 'jpeg', images.jpeg[:cut]), UNDECODABLE


def _png_claiming_absurd_size(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    data = bytearray(images.png)
    data[16:24] = (ABSURD_SIDE_PX.to_bytes(4, 'big') + ABSURD_SIDE_PX.to_bytes(4, 'big'))
    return _compressed(header, 'png', bytes(data)), TOO_LARGE


def _jpeg_claiming_absurd_size(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    data = bytearray(images.jpeg)
    offset = images.jpeg_frame_offset + 5  # marker, length, precision
    data[offset:offset + 4] = b'\xea\x60\xea\x60'  # 60000 x 60000
    return _compressed(header, 'jpeg', bytes(data)), TOO_LARGE


def _tiny_png(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    return _compressed(header, 'png', images.tiny_png), SIZE


def _body_cut_off(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    if rng.random() < 0.5:
        return _compressed(header, 'png', images.png[:int(rng.integers(40, len(images.png)))]), \
            DECODER
    start = images.jpeg_frame_offset + 20
    return _compressed(header, 'jpeg',
                       images.jpeg[:int(rng.integers(start, len(images.jpeg)))]), DECODER


def _body_garbled(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    source = images.png if rng.random() < 0.5 else images.jpeg
    start = 40 if source is images.png else images.jpeg_frame_offset + 20
    data = bytearray(source)
    for index in rng.integers(start, len(data), int(rng.integers(1, 50))):
        data[index] = int(rng.integers(0, 256))
    return _compressed(header, 'png' if source is images.png else 'jpeg', bytes(data)), DECODER


# ------------------------------------------------------------------ camera_info
def _good_camera_info(width: int, height: int, header) -> CameraInfo:
    focal = 0.5 * width / math.tan(math.radians(30.0))
    info = CameraInfo(header=header, width=width, height=height, distortion_model='plumb_bob')
    info.d = [0.0] * 5
    info.k = [focal, 0.0, width / 2.0, 0.0, focal, height / 2.0, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [focal, 0.0, width / 2.0, 0.0, 0.0, focal, height / 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def _bad_camera_info(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    info = _good_camera_info(images.width, images.height, header)
    variant = int(rng.integers(6))
    if variant == 0:
        info.k = [0.0] * 9
    elif variant == 1:
        k = list(info.k)
        k[int(rng.integers(9))] = math.nan
        info.k = k
    elif variant == 2:
        info.d = [0.0, math.inf, 0.0, 0.0, 0.0]
    elif variant == 3:
        k = list(info.k)
        k[0] = -k[0]
        info.k = k
    elif variant == 4:
        info.p = [0.0] * 12
    else:
        info.r = [math.nan] * 9
    return info, CAMERA_INFO


RAW_MALFORMED: Dict[str, Tuple[Callable, float]] = {
    'unknown_encoding': (_unknown_encoding, 1.0),
    'unusable_encoding': (_unusable_encoding, 1.0),
    'mismatched_encoding': (_mismatched_encoding, 1.0),
    'step_too_small': (_step_too_small, 1.0),
    'data_too_short': (_data_too_short, 1.0),
    'data_too_long': (_data_too_long, 1.0),
    'size_disagrees_with_data': (_size_disagrees_with_data, 1.0),
    'odd_stride_unpadded_data': (_odd_stride_unpadded_data, 1.0),
    'big_endian_short': (_big_endian_short, 0.5),
    'zero_or_tiny_size': (_zero_or_tiny_size, 1.0),
    'absurd_size': (_absurd_size, 1.0),
    'too_many_pixels': (_too_many_pixels, 0.1),
    'random_fields': (_random_fields, 1.0),
    'bad_camera_info': (_bad_camera_info, 1.0),
}
COMPRESSED_MALFORMED: Dict[str, Tuple[Callable, float]] = {
    'compressed_depth': (_compressed_depth, 1.0),
    'empty': (_empty_compressed, 1.0),
    'garbage': (_garbage_compressed, 1.0),
    'png_cut_in_header': (_png_cut_in_header, 1.0),
    'jpeg_cut_before_frame': (_jpeg_cut_before_frame, 1.0),
    'png_claiming_absurd_size': (_png_claiming_absurd_size, 1.0),
    'jpeg_claiming_absurd_size': (_jpeg_claiming_absurd_size, 1.0),
    'tiny_png': (_tiny_png, 1.0),
    'body_cut_off': (_body_cut_off, 1.0),
    'body_garbled': (_body_garbled, 1.0),
    'bad_camera_info': (_bad_camera_info, 1.0),
}


class CaseDeck:
    """Draws malformed cases by weight, so that every case appears in proportion."""

    def __init__(self, makers: Dict[str, Tuple[Callable, float]]) -> None:
        self.names: List[str] = list(makers)
        self.makers = [makers[name][0] for name in self.names]
        weights = np.array([makers[name][1] for name in self.names], np.float64)
        self.probabilities = weights / weights.sum()

    def draw(self, images: FuzzImages, rng: np.random.Generator, header) -> Tuple[str, Case]:
        """Return (case name, (message, expected)) of one random case."""
        index = int(rng.choice(len(self.names), p=self.probabilities))
        return self.names[index], self.makers[index](images, rng, header)


def good_raw(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    """Return a good raw frame (any encoding, sometimes padded rows)."""
    return _good_raw(images, rng, header)


def good_compressed(images: FuzzImages, rng: np.random.Generator, header) -> Case:
    """Return a good PNG or JPEG frame."""
    return _good_compressed(images, rng, header)


def good_camera_info(images: FuzzImages, header) -> CameraInfo:
    """Return a valid calibration of the fuzz pictures."""
    return _good_camera_info(images.width, images.height, header)


CASE_DESCRIPTIONS = {
    'unknown_encoding': 'encoding unknown to ROS or made-up text (nv12, empty, random)',
    'unusable_encoding': '32FC1, 16SC1, 64FC1 or 32SC1 data (random big-endian flag)',
    'mismatched_encoding': 'rgba8/bgra8 declared over rgb8 rows (step too short)',
    'step_too_small': 'step shorter than width x bytes per pixel (0 included)',
    'data_too_short': 'data cut anywhere below height x step (empty included)',
    'data_too_long': '1-1000 bytes more data than height x step',
    'size_disagrees_with_data': 'width and height larger than the data holds',
    'odd_stride_unpadded_data': 'odd step beyond the row length, data not padded to it',
    'big_endian_short': 'big-endian flag and half the data',
    'zero_or_tiny_size': 'width or height 0, or both below 8 px',
    'absurd_size': 'header claiming 100000x100000 (or 2^32-1 wide) with < 64 bytes of data',
    'too_many_pixels': 'complete mono8 frame just over max_input_pixels',
    'random_fields': 'random width, height, step and data length that never agree',
    'bad_camera_info': 'camera_info with zero K, NaN in K or R, Inf in D, negative fx or zero P',
    'compressed_depth': 'a compressedDepth stream on the colour topic',
    'empty': 'no data',
    'garbage': 'random bytes (neither PNG nor JPEG)',
    'png_cut_in_header': 'PNG cut before the end of its IHDR header',
    'jpeg_cut_before_frame': 'JPEG cut before its frame header',
    'png_claiming_absurd_size': 'PNG whose header claims 100000x100000 (decompression bomb)',
    'jpeg_claiming_absurd_size': 'JPEG whose frame header claims 60000x60000',
    'tiny_png': 'PNG of 4x4 px',
    'body_cut_off': 'PNG or JPEG with a valid header, cut off in its image data',
    'body_garbled': 'PNG or JPEG with a valid header and 1-50 bytes of image data overwritten',
}
