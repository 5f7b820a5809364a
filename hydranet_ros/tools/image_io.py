"""Image files for the command-line tools: finding and reading them, naming and writing outputs."""
import argparse
import math
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import cv2

from ..engine.images import decoded_to_rgb, ImageFormatError
from ..engine.picture_header import CompressedHeaderError, picture_size

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm',
                    '.pnm', '.jp2', '.exr', '.hdr', '.gif')
# Keep greyscale or colour and 16-bit depth, drop alpha, and apply EXIF orientation (phone photos).
_READ_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096
"""Largest picture processed at its own size: the node's default ``max_input_pixels``."""
MAX_DECODED_PIXELS = 128 * 1024 * 1024
"""Largest picture decoded at full size before it is shrunk (JPEG shrinks while decoding)."""
# JPEG decoding at 1/2, 1/4 and 1/8 of the size (libjpeg scales while it decodes).
_JPEG_REDUCED_FLAGS = ((2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4),
                       (8, cv2.IMREAD_REDUCED_COLOR_8))


class ImageReadError(ValueError):
    """An image file is missing, unreadable or holds no picture."""


class ImageTooLarge(ImageReadError):
    """A picture has more pixels than the tool may process (or decode) with bounded memory."""


@dataclass(frozen=True)
class PixelLimit:
    """How many pixels a picture may have, and whether a larger one is shrunk or refused.

    ``max_pixels`` 0 means no limit (only the decoding bound of ``MAX_DECODED_PIXELS`` holds).
    """

    max_pixels: int = DEFAULT_MAX_INPUT_PIXELS
    refuse: bool = False

    def allows(self, height: int, width: int) -> bool:
        """Return True when a picture of this size is processed as it is."""
        return not self.max_pixels or height * width <= self.max_pixels


@dataclass(frozen=True)
class LoadedImage:
    """A picture as RGB uint8, and its size in the file (height, width) when it was shrunk."""

    rgb: np.ndarray
    original_size: Optional[Tuple[int, int]] = None


def non_negative_int(text: str) -> int:
    """Parse an integer >= 0 for argparse."""
    try:
        value = int(text.replace('_', ''))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {text!r}') from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {value}')
    return value


def add_pixel_limit_arguments(parser: argparse.ArgumentParser, shrinks: bool = True) -> None:
    """Add ``--max-input-pixels`` (and ``--refuse-large`` where pictures are shrunk)."""
    group = parser.add_argument_group('memory')
    what = ('larger pictures are shrunk to fit it (keeping their aspect, with a note); the '
            'outputs are at the shrunk size' if shrinks else
            'larger frames are skipped and counted, as the node rejects them')
    group.add_argument('--max-input-pixels', type=non_negative_int,
                       default=DEFAULT_MAX_INPUT_PIXELS, metavar='N',
                       help=f'largest picture (height x width) processed at its own size: {what}; '
                            '0 for no limit (default: %(default)s, as the node parameter '
                            'max_input_pixels)')
    if shrinks:
        group.add_argument('--refuse-large', action='store_true',
                           help='skip pictures over --max-input-pixels (listed as failed) '
                                'instead of shrinking them')


def pixel_limit_from_args(args: argparse.Namespace) -> PixelLimit:
    """Return the limit the options of :func:`add_pixel_limit_arguments` ask for."""
    return PixelLimit(args.max_input_pixels, getattr(args, 'refuse_large', True))


def fitted_size(height: int, width: int, max_pixels: int) -> Tuple[int, int]:
    """Return the largest (height, width) of the same aspect with at most ``max_pixels``."""
    if height * width <= max_pixels:
        return height, width
    scale = math.sqrt(max_pixels / float(height * width))
    fitted_height, fitted_width = max(1, int(height * scale)), max(1, int(width * scale))
    while fitted_height * fitted_width > max_pixels:
        fitted_height, fitted_width = max(1, fitted_height - 1), max(1, fitted_width - 1)
    return fitted_height, fitted_width


def megapixels(height: int, width: int) -> str:
    """Return a pixel count for people, e.g. ``48.0 MP``."""
    return f'{height * width / 1e6:.1f} MP'


@dataclass(frozen=True)
class ImageJob:
    """One input image and the stem its outputs are named after (may include sub-folders)."""

    path: str
    stem: str


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """Return a decoded OpenCV image (grey or BGR, 8/16-bit or float) as HxWx3 RGB uint8.

    8- and 16-bit pictures go through the engine's conversion (as compressed camera images do).
    """
    if image.dtype in (np.float32, np.float64):
        scale = 255.0 if np.nanmax(image) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
    try:
        return decoded_to_rgb(image)
    except ImageFormatError as error:
        raise ImageReadError(str(error)) from error


def _read_bytes(path: str) -> np.ndarray:
    if not os.path.exists(path):
        raise ImageReadError('no such file')
    if os.path.isdir(path):
        raise ImageReadError('is a directory')
    if not os.path.isfile(path):
        raise ImageReadError('is not a regular file (a device, pipe or socket)')
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f'cannot be read ({error.strerror or error})') from error
    if data.size == 0:
        raise ImageReadError('the file is empty')
    return data


def _decode(data: np.ndarray, flags: int) -> np.ndarray:
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error as error:  # OpenCV raises for some corrupt files instead of failing
        raise ImageReadError(f'not a readable image ({str(error).strip().splitlines()[-1]})') \
            from error
    if image is None:
        raise ImageReadError('not a readable image (truncated, or a format OpenCV cannot '
                             'decode)')
    return image


def _too_large(height: int, width: int, limit: PixelLimit, decoding: bool = False) -> str:
    size = f'{height}x{width} px ({megapixels(height, width)})'
    if decoding:
        return (f'is {size}, too large to decode within bounded memory (more than '
                f'{MAX_DECODED_PIXELS} px); shrink it first (e.g. to JPEG, which is decoded '
                f'at a fraction of its size)')
    return (f'is {size}, more than --max-input-pixels {limit.max_pixels}; raise '
            f'--max-input-pixels to process it, or leave out --refuse-large to process it '
            f'shrunk')


def _decode_within(data: np.ndarray, header_format: str, height: int, width: int,
                   limit: PixelLimit) -> np.ndarray:
    """Decode a picture known to be over the limit at a size that fits it."""
    if header_format == 'jpeg':
        wanted = fitted_size(height, width, limit.max_pixels)
        for factor, flags in reversed(_JPEG_REDUCED_FLAGS):
            reduced = (math.ceil(height / factor), math.ceil(width / factor))
            if reduced[0] >= wanted[0] and reduced[1] >= wanted[1]:
                if reduced[0] * reduced[1] > MAX_DECODED_PIXELS:
                    raise ImageTooLarge(_too_large(height, width, limit, decoding=True))
                return _decode(data, flags)
    if height * width > max(MAX_DECODED_PIXELS, limit.max_pixels):
        raise ImageTooLarge(_too_large(height, width, limit, decoding=True))
    return _decode(data, _READ_FLAGS)


def read_image(path: str, limit: Optional[PixelLimit] = None) -> LoadedImage:
    """Read any image file OpenCV decodes (PNG, JPEG, TIFF, WebP, ...) as RGB uint8.

    A picture with more pixels than ``limit`` allows is shrunk (keeping its aspect) or, with
    ``limit.refuse``, refused with ``ImageTooLarge``. Its size is read from the file's header
    first where the format allows, so that a large file is never decoded at full size only to
    be shrunk (JPEG is decoded at 1/2, 1/4 or 1/8 of its size) and a small file claiming a huge
    picture is refused before anything of that size is allocated. Raise ``ImageReadError``
    (whose message does not repeat the path) when reading fails.
    """
    data = _read_bytes(path)
    try:
        header = picture_size(data)
    except CompressedHeaderError as error:
        raise ImageReadError(f'not a readable image ({error})') from error
    decode_bound = max(MAX_DECODED_PIXELS, limit.max_pixels if limit is not None else 0)
    if header is not None and limit is not None and not limit.allows(header.height,
                                                                     header.width):
        if limit.refuse:
            raise ImageTooLarge(_too_large(header.height, header.width, limit))
        image = _decode_within(data, header.image_format, header.height, header.width, limit)
    elif header is not None and header.height * header.width > decode_bound:
        raise ImageTooLarge(_too_large(header.height, header.width, limit or PixelLimit(),
                                       decoding=True))
    else:
        image = _decode(data, _READ_FLAGS)
    rgb = to_uint8_rgb(image)
    file_size = _oriented((header.height, header.width), rgb.shape[:2]) if header is not None \
        else rgb.shape[:2]
    if limit is not None and not limit.allows(*rgb.shape[:2]):
        if limit.refuse:
            raise ImageTooLarge(_too_large(rgb.shape[0], rgb.shape[1], limit))
        height, width = fitted_size(rgb.shape[0], rgb.shape[1], limit.max_pixels)
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    shrunk = tuple(rgb.shape[:2]) != tuple(file_size)
    return LoadedImage(rgb, (int(file_size[0]), int(file_size[1])) if shrunk else None)


def _oriented(original: Sequence[int], shown: Sequence[int]) -> Tuple[int, int]:
    """Return the file's (height, width) in the orientation of the decoded picture (EXIF)."""
    height, width = int(original[0]), int(original[1])
    if (shown[0] > shown[1]) != (height > width) and height != width:
        return width, height
    return height, width


def read_image_rgb(path: str, limit: Optional[PixelLimit] = None) -> np.ndarray:
    """Read an image file as RGB uint8 (see :func:`read_image`)."""
    return read_image(path, limit).rgb


def _is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _is_inside(path: str, folder: Optional[str]) -> bool:
    if folder is None:
        return False
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder + os.sep)


def _folder_images(folder: str, recursive: bool, exclude_dir: Optional[str]) -> List[str]:
    found = []
    if recursive:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not _is_inside(os.path.join(root, d), exclude_dir))
            found.extend(os.path.join(root, name) for name in sorted(files)
                         if _is_image_file(name))
    else:
        found = [os.path.join(folder, name) for name in sorted(os.listdir(folder))
                 if _is_image_file(name) and os.path.isfile(os.path.join(folder, name))]
    return [path for path in found if not _is_inside(path, exclude_dir)]


def _stem_without_extension(path: str) -> str:
    return os.path.splitext(path)[0]


def unique_stems(candidates: Sequence[Tuple[str, str]]) -> List[ImageJob]:
    """Turn (path, stem) pairs into jobs whose stems are unique.

    Colliding stems (``a.png`` and ``a.jpg``, or two folders holding ``0001.png``) get the
    extension appended (``a_jpg``) and, if still taken, a counter.
    """
    counts: Dict[str, int] = {}
    for _, stem in candidates:
        counts[stem] = counts.get(stem, 0) + 1
    taken = set()
    jobs = []
    for path, stem in candidates:
        name = stem
        if counts[stem] > 1:
            extension = os.path.splitext(path)[1].lstrip('.').lower()
            name = f'{stem}_{extension}' if extension else stem
        base, counter = name, 2
        while name in taken:
            name = f'{base}_{counter}'
            counter += 1
        taken.add(name)
        jobs.append(ImageJob(path, name))
    return jobs


def find_images(inputs: Iterable[str], recursive: bool = False,
                exclude_dir: Optional[str] = None) -> List[ImageJob]:
    """Expand files and folders into image jobs, in the order given (folders sorted).

    Files named explicitly are kept whatever their extension (a failure to read them is reported
    later). Images in a folder are named by their path relative to it, so sub-folders of a
    recursive search are mirrored in the output folder. ``exclude_dir`` (the output folder) is
    never searched.
    """
    candidates: List[Tuple[str, str]] = []
    for given in inputs:
        if os.path.isdir(given):
            for path in _folder_images(given, recursive, exclude_dir):
                candidates.append((path, _stem_without_extension(os.path.relpath(path, given))))
        else:
            candidates.append((given, _stem_without_extension(os.path.basename(given))))
    return unique_stems(candidates)


def write_png(path: str, image: np.ndarray) -> str:
    """Write an RGB (HxWx3 uint8) or single-channel (uint8/uint16, lossless) image as PNG."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    if not cv2.imwrite(path, np.ascontiguousarray(pixels)):
        raise OSError(f'cannot write {path}')
    return path


def write_npy(path: str, array: np.ndarray) -> str:
    """Write an array as ``.npy`` (creating the folder)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.save(path, array)
    return path


def output_path(out_dir: str, stem: str, suffix: str) -> str:
    """Return ``<out_dir>/<stem><suffix>``, e.g. suffix ``_depth.png``."""
    return os.path.join(out_dir, stem + suffix)
