"""Datasets on disk: NYUDv2, KITTI and a generic folder layout, plus generated scenes.

Every dataset yields :class:`~hydranet_ros.data.sample.Sample` objects and exposes
``class_names``, ``class_colors`` and ``max_depth_m``. A frame may carry only depth or only
labels (asymmetric annotations): the missing one is ``None`` and its task gets no loss.

Two file layouts are accepted for NYUDv2 and KITTI, per split directory (``root/split`` if it
exists, else ``root``):
  - sub-folders: ``rgb/<stem>.png``, ``depth/<stem>.png``, ``labels/<stem>.png``;
  - flat, as the upstream examples: ``<stem>.png``, ``depth_gt_<stem>.png``,
    ``segm_gt_<stem>.png``.
An optional ``<split>.txt`` in ``root`` lists the stems to use (one per line).

- NYUDv2: depth uint16 PNG, metres = value / 5000 (0 = unknown); labels uint8 0..39, 255
  ignored (40 classes).
- KITTI: depth uint16 PNG, metres = value / 256 (0 = unknown; the official KITTI depth format;
  the upstream HydraNet code stored its KITTI depth with 800 per metre: pass ``depth_scale``);
  labels either uint8 ids 0..5 or RGB colour-coded with the KITTI-6 colours (any other colour is
  ignored).
- Generic folder (``root/split`` or ``root``): ``rgb/`` pictures (png/jpg), ``depth/`` either
  uint16 PNG in millimetres (0 = unknown) or float ``.npy`` in metres (NaN/inf/0 = unknown),
  ``labels/`` uint8 PNG (255 ignored), and ``classes.yaml`` in ``root``::

      classes:
        - {name: sky, color: [128, 128, 128]}
        - {name: road, color: [128, 64, 128]}
      max_depth_m: 80.0          # optional, default 80
"""
import os
from typing import Iterable, List, Optional, Protocol, Sequence, Tuple

import cv2
import numpy as np
import yaml

from . import classes
from .sample import Sample, SampleSource

Color = Tuple[int, int, int]

DATASET_KINDS = ('scenes', 'nyud', 'kitti', 'folder')
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.ppm', '.bmp')
FOLDER_DEPTH_SCALE = 1000.0
"""Generic-folder depth PNGs store millimetres."""
FOLDER_DEFAULT_MAX_DEPTH_M = 80.0
CLASSES_FILE = 'classes.yaml'


class Dataset(SampleSource, Protocol):
    """A source of samples that names its classes and the depth range it covers."""

    @property
    def class_names(self) -> Tuple[str, ...]:
        """Return the class names, in label id order."""

    @property
    def class_colors(self) -> Tuple[Color, ...]:
        """Return the (r, g, b) colour of each class."""

    @property
    def max_depth_m(self) -> float:
        """Return the largest depth the annotations hold, in metres."""


def read_rgb(path: str) -> np.ndarray:
    """Read a picture as (H, W, 3) uint8 RGB; raise FileNotFoundError with the path."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f'cannot read picture {path!r}')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_depth_png(path: str, scale: float) -> np.ndarray:
    """Read a uint16 depth PNG and return float32 metres (value / scale), NaN where 0."""
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise FileNotFoundError(f'cannot read depth {path!r}')
    if raw.ndim != 2 or raw.dtype != np.uint16:
        raise ValueError(f'depth {path!r} must be a single-channel uint16 PNG, got '
                         f'{raw.dtype} with shape {raw.shape}')
    depth = raw.astype(np.float32) / np.float32(scale)
    depth[raw == 0] = np.nan
    return depth


def read_depth_npy(path: str) -> np.ndarray:
    """Read float metres from ``.npy``; NaN where not finite or not positive."""
    depth = np.load(path).astype(np.float32)
    if depth.ndim != 2:
        raise ValueError(f'depth {path!r} must be 2-D, got shape {depth.shape}')
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def read_label_ids(path: str) -> np.ndarray:
    """Read a single-channel uint8 label PNG."""
    labels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise FileNotFoundError(f'cannot read labels {path!r}')
    if labels.ndim != 2:
        raise ValueError(f'labels {path!r} must be single-channel ids, got shape '
                         f'{labels.shape}')
    return labels.astype(np.uint8)


def colors_to_ids(rgb: np.ndarray, colors: Sequence[Color],
                  ignore_index: int = classes.IGNORE_INDEX) -> np.ndarray:
    """Map an (H, W, 3) colour-coded label picture to ids; unknown colours become ignored."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[
        ..., 2]
    labels = np.full(rgb.shape[:2], ignore_index, dtype=np.uint8)
    for class_id, (red, green, blue) in enumerate(colors):
        labels[codes == ((red << 16) | (green << 8) | blue)] = class_id
    return labels


def _split_dir(root: str, split: str) -> str:
    """Return ``root/split`` if that directory exists, else ``root``."""
    candidate = os.path.join(root, split) if split else root
    return candidate if split and os.path.isdir(candidate) else root


def _first_existing(paths: Iterable[str]) -> Optional[str]:
    """Return the first path that exists, or None."""
    return next((path for path in paths if os.path.exists(path)), None)


class PairedFileDataset:
    """Frames stored as picture + optional depth + optional labels files (see module doc)."""

    class_names: Tuple[str, ...] = ()
    class_colors: Tuple[Color, ...] = ()
    max_depth_m = 80.0
    depth_scale = 1.0
    """Depth PNG value per metre."""

    def __init__(self, root: str, split: str = 'train', limit: Optional[int] = None,
                 depth_scale: Optional[float] = None) -> None:
        if depth_scale is not None:
            self.depth_scale = float(depth_scale)
        if not os.path.isdir(root):
            raise FileNotFoundError(f'dataset directory {root!r} does not exist')
        self.root = root
        self.directory = _split_dir(root, split)
        self.stems = self._stems(split)
        if limit is not None:
            self.stems = self.stems[:int(limit)]
        if not self.stems:
            raise FileNotFoundError(f'no pictures found in {self.directory!r} (expected rgb/ '
                                    f'or <stem>.png files; see docs/training.md)')

    def _stems(self, split: str) -> List[str]:
        """Return the frame stems: from ``<split>.txt`` if it exists, else the pictures found."""
        listing = os.path.join(self.root, f'{split}.txt') if split else ''
        if listing and os.path.exists(listing):
            with open(listing) as handle:
                return [line.strip() for line in handle if line.strip()]
        rgb_dir = os.path.join(self.directory, 'rgb')
        folder = rgb_dir if os.path.isdir(rgb_dir) else self.directory
        names = sorted(os.listdir(folder))
        return [os.path.splitext(name)[0] for name in names
                if name.lower().endswith(IMAGE_EXTENSIONS)
                and not name.startswith(('depth_gt_', 'segm_gt_', 'norm_gt_'))]

    def _path(self, kind: str, stem: str,
              extensions: Tuple[str, ...] = IMAGE_EXTENSIONS) -> Optional[str]:
        """Return the file of ``kind`` ('rgb', 'depth', 'labels') for ``stem`` in either layout."""
        folder = {'rgb': 'rgb', 'depth': 'depth', 'labels': 'labels'}[kind]
        prefix = {'rgb': '', 'depth': 'depth_gt_', 'labels': 'segm_gt_'}[kind]
        candidates = []
        for extension in extensions:
            candidates.append(os.path.join(self.directory, folder, stem + extension))
            candidates.append(os.path.join(self.directory, prefix + stem + extension))
        return _first_existing(candidates)

    def __len__(self) -> int:
        """Return the number of frames."""
        return len(self.stems)

    def __getitem__(self, index: int) -> Sample:
        """Return frame ``index`` as a :class:`Sample` (missing annotations are None)."""
        stem = self.stems[index]
        rgb_path = self._path('rgb', stem)
        if rgb_path is None:
            raise FileNotFoundError(f'no picture for {stem!r} in {self.directory!r}')
        image = read_rgb(rgb_path)
        depth_path = self._path('depth', stem, IMAGE_EXTENSIONS + ('.npy',))
        labels_path = self._path('labels', stem)
        depth = self.read_depth(depth_path) if depth_path else None
        labels = self.read_labels(labels_path) if labels_path else None
        return Sample(image, depth, labels, name=stem)

    def read_depth(self, path: str) -> np.ndarray:
        """Return metres (NaN unknown)."""
        raise NotImplementedError

    def read_labels(self, path: str) -> np.ndarray:
        """Return uint8 ids (255 ignored)."""
        raise NotImplementedError


class NYUDv2Dataset(PairedFileDataset):
    """NYUDv2-40: depth PNG / 5000 metres, labels 0..39 with 255 ignored."""

    class_names = classes.NYUD40_CLASS_NAMES
    class_colors = classes.NYUD40_CLASS_COLORS
    max_depth_m = classes.NYUD_MAX_DEPTH_M
    depth_scale = classes.NYUD_DEPTH_SCALE

    def read_depth(self, path: str) -> np.ndarray:
        """Return metres from a uint16 PNG (value / 5000)."""
        return read_depth_png(path, self.depth_scale)

    def read_labels(self, path: str) -> np.ndarray:
        """Return ids 0..39 (255 ignored)."""
        labels = read_label_ids(path)
        labels[labels >= len(self.class_names)] = classes.IGNORE_INDEX
        return labels


class KITTIDataset(PairedFileDataset):
    """KITTI-6: depth PNG / 256 metres, labels as ids or as KITTI-6 colours."""

    class_names = classes.KITTI6_CLASS_NAMES
    class_colors = classes.KITTI6_CLASS_COLORS
    max_depth_m = classes.KITTI_MAX_DEPTH_M
    depth_scale = classes.KITTI_DEPTH_SCALE

    def read_depth(self, path: str) -> np.ndarray:
        """Return metres from a uint16 PNG (value / 256 unless another scale is given)."""
        return read_depth_png(path, self.depth_scale)

    def read_labels(self, path: str) -> np.ndarray:
        """Return ids 0..5 from an id PNG or a colour-coded PNG (other colours ignored)."""
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise FileNotFoundError(f'cannot read labels {path!r}')
        if raw.ndim == 3:
            return colors_to_ids(cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB),
                                 self.class_colors)
        labels = raw.astype(np.uint8)
        labels[labels >= len(self.class_names)] = classes.IGNORE_INDEX
        return labels


class FolderDataset(PairedFileDataset):
    """Generic layout: rgb/, depth/ (mm PNG or metre .npy), labels/, and classes.yaml."""

    depth_scale = FOLDER_DEPTH_SCALE

    def __init__(self, root: str, split: str = 'train', limit: Optional[int] = None,
                 depth_scale: Optional[float] = None) -> None:
        classes_path = os.path.join(root, CLASSES_FILE)
        if not os.path.exists(classes_path):
            raise FileNotFoundError(f'{classes_path!r} is missing: the generic folder layout '
                                    f'needs a {CLASSES_FILE} naming the classes and colours')
        with open(classes_path) as handle:
            description = yaml.safe_load(handle) or {}
        entries = description.get('classes') or []
        if not entries:
            raise ValueError(f'{classes_path!r} lists no classes (expected "classes: - {{name: '
                             f'..., color: [r, g, b]}}")')
        self.class_names = tuple(str(entry['name']) for entry in entries)
        self.class_colors = tuple(_color(entry['color'], classes_path) for entry in entries)
        self.max_depth_m = float(description.get('max_depth_m', FOLDER_DEFAULT_MAX_DEPTH_M))
        super().__init__(root, split, limit, depth_scale)

    def read_depth(self, path: str) -> np.ndarray:
        """Return metres from a millimetre PNG or a metre .npy file."""
        if path.endswith('.npy'):
            return read_depth_npy(path)
        return read_depth_png(path, self.depth_scale)

    def read_labels(self, path: str) -> np.ndarray:
        """Return ids (values beyond the class list are ignored)."""
        labels = read_label_ids(path)
        labels[(labels >= len(self.class_names)) & (labels != classes.IGNORE_INDEX)] = \
            classes.IGNORE_INDEX
        return labels


def _color(values: Sequence[int], path: str) -> Color:
    """Return an (r, g, b) tuple of ints from a colour listed in ``path``."""
    if len(values) != 3:
        raise ValueError(f'{path!r}: colour {list(values)} must have three values [r, g, b]')
    red, green, blue = (int(v) for v in values)
    return red, green, blue


def open_dataset(kind: str, root: Optional[str], split: str = 'train',
                 limit: Optional[int] = None, height: int = 96, width: int = 320, seed: int = 0,
                 depth_scale: Optional[float] = None) -> Dataset:
    """Open a dataset by kind ('scenes', 'nyud', 'kitti', 'folder').

    For 'scenes', ``root/split`` is a pre-rendered split (``scene_store``); without a root the
    frames are rendered on the fly (``limit`` frames, default 1000, generator ``seed``).
    ``depth_scale`` overrides the depth PNG value per metre of the other layouts.
    """
    from .scene_store import SceneStoreDataset, StreetSceneDataset

    if kind == 'scenes':
        if root:
            return SceneStoreDataset(os.path.join(root, split), limit)
        return StreetSceneDataset(limit or 1000, seed, height, width)
    if not root:
        raise ValueError(f'--data {kind} needs --data-root')
    if kind == 'nyud':
        return NYUDv2Dataset(root, split, limit, depth_scale)
    if kind == 'kitti':
        return KITTIDataset(root, split, limit, depth_scale)
    if kind == 'folder':
        return FolderDataset(root, split, limit, depth_scale)
    raise ValueError(f'unknown dataset kind {kind!r}; expected one of {DATASET_KINDS}')
