"""The size of a compressed picture read from its header, before any pixel is decoded.

A small file or message can claim a huge picture (a decompression bomb); reading the header
first lets the node and the tools refuse or shrink it before anything of that size is
allocated. ``picture_header`` reads the two formats cameras send (PNG and JPEG);
``picture_size`` also reads the other formats image files come in (BMP, GIF, WebP, PNM, TIFF)
and returns None for a format it does not know.
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
EIGHT_BITS = 8
TIFF_WIDTH_TAG = 256
TIFF_HEIGHT_TAG = 257
TIFF_SHORT = 3
TIFF_LONG = 4
TIFF_MAX_ENTRIES = 4096
PNM_MAGIC = (b'P1', b'P2', b'P3', b'P4', b'P5', b'P6')
PNM_HEADER_BYTES = 512


class CompressedHeaderError(ValueError):
    """The PNG or JPEG header is cut off or invalid."""


class UnknownPictureFormat(CompressedHeaderError):
    """The data is neither PNG nor JPEG."""


class PictureHeader(NamedTuple):
    """What a picture's header says about it."""

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


def _bmp_size(data: bytes) -> Optional[PictureHeader]:
    if len(data) < 26:
        return None
    (header_size,) = struct.unpack('<I', data[14:18])
    if header_size == 12:
        width, height = struct.unpack('<HH', data[18:22])
    else:
        width, height = struct.unpack('<ii', data[18:26])
    return PictureHeader('bmp', abs(width), abs(height), EIGHT_BITS)


def _webp_size(data: bytes) -> Optional[PictureHeader]:
    chunk = data[12:16]
    if chunk == b'VP8 ' and len(data) >= 30:
        width, height = struct.unpack('<HH', data[26:30])
        return PictureHeader('webp', width & 0x3FFF, height & 0x3FFF, EIGHT_BITS)
    if chunk == b'VP8L' and len(data) >= 25:
        (bits,) = struct.unpack('<I', data[21:25])
        return PictureHeader('webp', (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, EIGHT_BITS)
    if chunk == b'VP8X' and len(data) >= 30:
        width = int.from_bytes(data[24:27], 'little') + 1
        height = int.from_bytes(data[27:30], 'little') + 1
        return PictureHeader('webp', width, height, EIGHT_BITS)
    return None


def _pnm_size(data: bytes) -> Optional[PictureHeader]:
    fields = []
    for line in data[:PNM_HEADER_BYTES].split(b'\n'):
        fields.extend(line.split(b'#')[0].split())
        if len(fields) >= 3:
            break
    try:
        width, height = int(fields[1]), int(fields[2])
    except (IndexError, ValueError):
        return None
    return PictureHeader('pnm', width, height, EIGHT_BITS)


def _tiff_size(data: bytes) -> Optional[PictureHeader]:
    order = '<' if data[:2] == b'II' else '>'
    try:
        (offset,) = struct.unpack(order + 'I', data[4:8])
        (entries,) = struct.unpack(order + 'H', data[offset:offset + 2])
        size = {}
        for index in range(min(entries, TIFF_MAX_ENTRIES)):
            entry = data[offset + 2 + 12 * index:offset + 14 + 12 * index]
            tag, kind = struct.unpack(order + 'HH', entry[:4])
            if tag in (TIFF_WIDTH_TAG, TIFF_HEIGHT_TAG):
                value = struct.unpack(order + ('H' if kind == TIFF_SHORT else 'I'),
                                      entry[8:10] if kind == TIFF_SHORT else entry[8:12])[0]
                size[tag] = value
    except struct.error:
        return None
    if len(size) < 2:
        return None
    return PictureHeader('tiff', size[TIFF_WIDTH_TAG], size[TIFF_HEIGHT_TAG], EIGHT_BITS)


def picture_size(data: bytes) -> Optional[PictureHeader]:
    """Return what the header of a picture file says, or None for a format not read here.

    PNG and JPEG are read as by ``picture_header`` (and raise ``CompressedHeaderError`` when
    their header is cut off); BMP, GIF, WebP, PNM and TIFF give None when theirs is.
    """
    head = bytes(data[:16])
    if head.startswith(PNG_SIGNATURE[:4]) or head.startswith(JPEG_START):
        return picture_header(data)
    if head.startswith(b'BM'):
        return _bmp_size(bytes(data[:26]))
    if head.startswith((b'GIF87a', b'GIF89a')) and len(data) >= 10:
        width, height = struct.unpack('<HH', bytes(data[6:10]))
        return PictureHeader('gif', width, height, EIGHT_BITS)
    if head.startswith(b'RIFF') and head[8:12] == b'WEBP':
        return _webp_size(bytes(data[:30]))
    if head[:2] in PNM_MAGIC:
        return _pnm_size(bytes(data[:PNM_HEADER_BYTES]))
    if head[:4] in (b'II*\x00', b'MM\x00*'):
        return _tiff_size(bytes(data))
    return None
