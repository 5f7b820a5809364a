"""sensor_msgs/Image in its serialised (CDR) form: read in place, and written from pixels.

Taking a camera image already serialised and reading its few fields here costs a third less
than rclpy's deserialisation into a message, and its pixels are a view of the serialised
bytes: no copy. Writing an output image straight to bytes (published as such) saves the
copies and conversions of building a message that rclpy then serialises. The layout is that
of plain CDR (XCDR1, and XCDR2 for a final type, which Image is): a 4-byte encapsulation
header (second byte odd: little endian), then the fields in order, each aligned to its size
(at most 4 here) from the end of that header.
"""
import struct
from typing import List, Tuple

import numpy as np

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from .conversions import image_layout

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
