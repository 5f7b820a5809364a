"""Messages and arrays: sensor_msgs images to NumPy and back, and images as CDR bytes.

Output encodings (both directions): rgb8, bgr8, rgba8, bgra8, mono8, 16UC1, mono16, 32FC1, and
CompressedImage (JPEG or PNG of 8-bit images). Camera input is decoded by the engine's image
table (``hydranet_ros.engine.images``); this module only reads and writes message fields.

Serialised images: taking a camera image already serialised and reading its few fields costs
a third less than rclpy's deserialisation, and its pixels are a view of the serialised bytes.
Writing an output image straight to bytes (published as such) saves the copies of building a
message that rclpy then serialises. The layout is plain CDR (XCDR1, and XCDR2 for a final type,
which Image is): a 4-byte encapsulation header (second byte odd: little endian), then the
fields in order, each aligned to its size (at most 4 here) from the end of that header.
"""
import array
import struct
import sys
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

import cv2
from builtin_interfaces.msg import Time
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


ENCAPSULATION_BYTES = 4
# CDR_BE, CDR_LE, PLAIN_CDR2_BE, PLAIN_CDR2_LE: the kinds whose layout is the one read here.
PLAIN_KINDS = (0x0000, 0x0001, 0x0006, 0x0007)


LITTLE_ENDIAN_CDR = b'\x00\x01\x00\x00'


def serialize_image(pixels: np.ndarray, encoding: str, header: Header) -> bytes:
    """Return the little-endian plain-CDR bytes of the Image ``array_to_image`` would make."""
    layout = image_layout(pixels, encoding)
    writer = _Writer()
    writer.pack('iI', header.stamp.sec, header.stamp.nanosec)
    writer.string(header.frame_id)
    writer.pack('II', layout.height, layout.width)
    writer.string(layout.encoding)
    writer.octet(layout.is_bigendian)
    writer.pack('II', layout.step, layout.pixels.nbytes)
    return b''.join(writer.parts + [memoryview(layout.pixels).cast('B')])


def serialize_compressed(image_format: str, data: bytes, header: Header) -> bytes:
    """Return the little-endian plain-CDR bytes of a CompressedImage (format and data)."""
    writer = _Writer()
    writer.pack('iI', header.stamp.sec, header.stamp.nanosec)
    writer.string(header.frame_id)
    writer.string(image_format)
    writer.pack('I', len(data))
    return b''.join(writer.parts + [data])


# sensor_msgs/PointField datatypes of the NumPy types a cloud's fields may have.
POINT_FIELD_TYPES = {
    np.dtype(np.int8): 1, np.dtype(np.uint8): 2, np.dtype('<i2'): 3, np.dtype('<u2'): 4,
    np.dtype('<i4'): 5, np.dtype('<u4'): 6, np.dtype('<f4'): 7, np.dtype('<f8'): 8,
}


def point_fields(dtype: np.dtype) -> List[Tuple[str, int, int]]:
    """Return (name, offset, PointField datatype) of each field of a structured point type."""
    fields = []
    for name in dtype.names:
        field_type, offset = dtype.fields[name][:2]
        if field_type not in POINT_FIELD_TYPES:
            raise ImageConversionError(f'point field {name!r} has type {field_type}, which '
                                       f'PointField cannot describe')
        fields.append((name, int(offset), POINT_FIELD_TYPES[field_type]))
    return fields


def serialize_point_cloud(cloud: np.ndarray, header: Header) -> bytes:
    """Return the little-endian plain-CDR bytes of a PointCloud2 holding ``cloud``.

    ``cloud`` is a structured array, (height, width) organised or (N,) unorganised (height 1);
    ``is_dense`` says whether every point is finite (no NaN x).
    """
    if cloud.ndim not in (1, 2):
        raise ImageConversionError(f'a cloud is (height, width) or (N,) points, got shape '
                                   f'{cloud.shape}')
    height, width = cloud.shape if cloud.ndim == 2 else (1, cloud.shape[0])
    cloud = np.ascontiguousarray(cloud)
    point_step = cloud.dtype.itemsize
    writer = _Writer()
    writer.pack('iI', header.stamp.sec, header.stamp.nanosec)
    writer.string(header.frame_id)
    writer.pack('II', height, width)
    fields = point_fields(cloud.dtype)
    writer.pack('I', len(fields))
    for name, offset, datatype in fields:
        writer.string(name)
        writer.pack('I', offset)
        writer.octet(datatype)
        writer.pack('I', 1)
    writer.octet(int(HOST_IS_BIG_ENDIAN))
    writer.pack('III', point_step, point_step * width, cloud.nbytes)
    dense = bool(np.isfinite(cloud['x']).all()) if cloud.size else True
    data = cloud.reshape(-1).view(np.uint8)
    return b''.join(writer.parts + [memoryview(data), bytes([int(dense)])])


class SerializedImageError(ValueError):
    """The bytes are not a plain-CDR sensor_msgs/Image (the caller deserialises instead)."""


class SerializedImage:
    """The fields of a serialised Image, with ``data`` a memoryview of its pixel bytes."""

    __slots__ = ('header', 'height', 'width', 'encoding', 'is_bigendian', 'step', 'data')

    def __init__(self, serialized: bytes) -> None:
        view = memoryview(serialized)
        if len(view) < ENCAPSULATION_BYTES:
            raise SerializedImageError('shorter than a CDR encapsulation header')
        kind = (view[0] << 8) | view[1]
        if kind not in PLAIN_KINDS:
            raise SerializedImageError(f'CDR encapsulation 0x{kind:04x} is not plain CDR')
        reader = _Reader(view, '<' if kind & 1 else '>')
        sec, nanosec = reader.unpack('iI')
        frame_id = reader.string()
        self.header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)
        self.height, self.width = reader.unpack('II')
        self.encoding = reader.string()
        self.is_bigendian = reader.octet()
        (self.step,) = reader.unpack('I')
        self.data = reader.octets()


class _Reader:
    """Reads CDR primitives in order from a buffer, checking every bound."""

    def __init__(self, view: memoryview, order: str) -> None:
        self._view = view
        self._order = order
        self._position = ENCAPSULATION_BYTES

    def _align(self, size: int) -> None:
        offset = self._position - ENCAPSULATION_BYTES
        self._position += (-offset) % size

    def _need(self, size: int) -> None:
        if size < 0 or self._position + size > len(self._view):
            raise SerializedImageError('the message ends before its last field')

    def unpack(self, codes: str) -> Tuple[int, ...]:
        """Read 4-byte integers (``i``/``I`` codes)."""
        self._align(4)
        size = 4 * len(codes)
        self._need(size)
        values = struct.unpack_from(self._order + codes, self._view, self._position)
        self._position += size
        return values

    def octet(self) -> int:
        """Read one byte."""
        self._need(1)
        value = self._view[self._position]
        self._position += 1
        return value

    def _length(self) -> int:
        (length,) = self.unpack('I')
        self._need(length)
        return length

    def string(self) -> str:
        """Read a CDR text: its length (with the terminating NUL), then its bytes."""
        length = self._length()
        raw = bytes(self._view[self._position:self._position + length])
        self._position += length
        return raw.rstrip(b'\0').decode('utf-8', errors='replace')

    def octets(self) -> memoryview:
        """Read a byte sequence as a view (no copy)."""
        length = self._length()
        data = self._view[self._position:self._position + length]
        self._position += length
        return data


class _Writer:
    """Writes CDR primitives (little endian) as a list of byte strings."""

    def __init__(self) -> None:
        self.parts: List[bytes] = [LITTLE_ENDIAN_CDR]
        self._position = 0  # from the end of the encapsulation header

    def _add(self, raw: bytes) -> None:
        self.parts.append(raw)
        self._position += len(raw)

    def pack(self, codes: str, *values: int) -> None:
        """Write 4-byte integers (``i``/``I`` codes), aligned."""
        self._add(bytes((-self._position) % 4))
        self._add(struct.pack('<' + codes, *values))

    def octet(self, value: int) -> None:
        """Write one byte."""
        self._add(bytes([value]))

    def string(self, text: str) -> None:
        """Write a CDR text: its length (with the terminating NUL), then its bytes."""
        raw = text.encode('utf-8') + b'\0'
        self.pack('I', len(raw))
        self._add(raw)
