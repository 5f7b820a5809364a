"""Image size from the header of PNG and JPEG data, read without decoding any pixels.

The node reads it before decoding so that a small message claiming a huge picture (a
decompression bomb) is refused before anything of that size is allocated.
"""
import struct
from typing import NamedTuple, Optional

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_HEADER_BYTES = 26  # signature, IHDR length and type, width, height, bit depth, colour type
JPEG_START = b'\xff\xd8'
JPEG_START_OF_SCAN = 0xDA
# Start-of-frame markers (baseline, progressive, lossless, arithmetic); C4, C8, CC are not.
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI, EOI.
JPEG_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xDA)])


class CompressedHeaderError(ValueError):
    """The PNG or JPEG header is cut off or invalid."""


class UnknownPictureFormat(CompressedHeaderError):
    """The data is neither PNG nor JPEG."""


class PictureHeader(NamedTuple):
    """What a PNG or JPEG header says about the picture."""

    image_format: str
    width: int
    height: int
    bit_depth: int


def _png_header(data: bytes) -> PictureHeader:
    if len(data) < PNG_HEADER_BYTES or data[12:16] != b'IHDR':
        raise CompressedHeaderError(f'PNG data of {len(data)} bytes has no complete IHDR header')
    width, height = struct.unpack('>II', data[16:24])
    return PictureHeader('png', width, height, data[24])


def _jpeg_header(data: memoryview) -> PictureHeader:
    position = len(JPEG_START)
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise CompressedHeaderError(
                f'JPEG data has no marker at byte {position} (found 0x{data[position]:02x})')
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        if marker == JPEG_START_OF_SCAN:
            break
        (length,) = struct.unpack('>H', data[position + 2:position + 4])
        if length < 2:
            raise CompressedHeaderError(f'JPEG segment 0x{marker:02x} has length {length}')
        if marker in JPEG_FRAME_MARKERS:
            segment = data[position + 4:position + 2 + length]
            if len(segment) < 5:
                break
            precision = segment[0]
            height, width = struct.unpack('>HH', segment[1:5])
            return PictureHeader('jpeg', width, height, precision)
        position += 2 + length
    raise CompressedHeaderError(f'JPEG data of {len(data)} bytes has no frame header before '
                                f'its end or its image data')


def picture_header(data: bytes) -> PictureHeader:
    """Return format, width, height and bit depth of PNG or JPEG ``data``.

    Raises ``UnknownPictureFormat`` for other data and ``CompressedHeaderError`` for a header
    that is cut off or invalid.
    """
    head = bytes(data[:len(PNG_SIGNATURE)])
    if head == PNG_SIGNATURE:
        return _png_header(bytes(data[:PNG_HEADER_BYTES]))
    if head.startswith(JPEG_START):
        return _jpeg_header(memoryview(data).cast('B'))
    if head and PNG_SIGNATURE.startswith(head):
        raise CompressedHeaderError(f'PNG data of {len(head)} bytes is cut off in its signature')
    shown: Optional[str] = head.hex(' ') if head else None
    raise UnknownPictureFormat(f'data is neither PNG nor JPEG (first bytes: {shown or "none"})')
