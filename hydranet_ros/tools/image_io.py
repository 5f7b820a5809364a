"""Image files for the command-line tools: finding and reading them, naming and writing outputs."""
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import cv2

from ..engine.images import decoded_to_rgb, ImageFormatError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm',
                    '.pnm', '.jp2', '.exr', '.hdr', '.gif')
# Keep greyscale or colour and 16-bit depth, drop alpha, and apply EXIF orientation (phone photos).
_READ_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH


class ImageReadError(ValueError):
    """An image file is missing, unreadable or holds no picture."""


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


def read_image_rgb(path: str) -> np.ndarray:
    """Read any image file OpenCV decodes (PNG, JPEG, TIFF, WebP, ...) as RGB uint8.

    Raise ``ImageReadError`` (whose message does not repeat the path) when that fails.
    """
    if not os.path.exists(path):
        raise ImageReadError('no such file')
    if os.path.isdir(path):
        raise ImageReadError('is a directory')
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f'cannot be read ({error.strerror or error})') from error
    if data.size == 0:
        raise ImageReadError('the file is empty')
    image = cv2.imdecode(data, _READ_FLAGS)
    if image is None:
        raise ImageReadError('not a readable image (truncated, or a format OpenCV cannot '
                             'decode)')
    return to_uint8_rgb(image)


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
