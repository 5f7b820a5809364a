"""Labelled point clouds from depth: back-projection through K, filters and field layouts.

The points are those ``depth_image_proc`` makes from a depth image and its camera_info, in the
camera's optical frame (REP 103: x right, y down, z forward)::

    x = (u - cx) z / fx,   y = (v - cy) z / fy,   z = depth(u, v)

for the pixel centre (u, v) (integer coordinates). A decimation d keeps the pixels u = 0, d,
2d, ... and v = 0, d, 2d, ... (ceil(W / d) x ceil(H / d) points). Invalid depth (NaN) and
filtered points are NaN points in an organised cloud, which keeps the image's grid; an
unorganised cloud leaves them out.

Each point is a record of a NumPy structured array whose layout is one of ``FIELD_PROFILES``:

* ``pcl`` (PCL ``PointXYZRGBL``, MIT-SPARK semantic_inference): ``x y z`` float32, ``rgb``
  float32 holding the packed colour ``r << 16 | g << 8 | b`` as depth_image_proc writes it,
  ``label`` uint32 (the class id), ``confidence`` float32;
* ``autoware`` (``label_based_euclidean_cluster``): ``x y z`` float32, ``class_id`` uint8,
  ``probability`` float32 (aligned to 4 bytes: 20 bytes a point).

Everything is vectorised: interleaving the fields is one ``cv2.merge`` of float32 planes (ids
and colours reinterpreted bit for bit), then a view as the structured type.
"""
import functools
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

import cv2

from .class_map import unlabeled_id

PCL = 'pcl'
AUTOWARE = 'autoware'
FIELD_PROFILES: Dict[str, np.dtype] = {
    PCL: np.dtype({'names': ['x', 'y', 'z', 'rgb', 'label', 'confidence'],
                   'formats': ['<f4', '<f4', '<f4', '<f4', '<u4', '<f4'],
                   'offsets': [0, 4, 8, 12, 16, 20], 'itemsize': 24}),
    AUTOWARE: np.dtype({'names': ['x', 'y', 'z', 'class_id', 'probability'],
                        'formats': ['<f4', '<f4', '<f4', 'u1', '<f4'],
                        'offsets': [0, 4, 8, 12, 16], 'itemsize': 20}),
}
POINTS_FIELD_CHOICES = tuple(FIELD_PROFILES)
FLOAT_BYTES = 4


@dataclass(frozen=True)
class PinholeIntrinsics:
    """Focal lengths and principal point in pixels (from K of a camera_info)."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_k(cls, k: Sequence[float]) -> 'PinholeIntrinsics':
        """Return the intrinsics of a row-major 3x3 camera matrix."""
        return cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]))


@dataclass(frozen=True)
class CloudFilter:
    """Which points to keep: class ids (empty ``keep_ids``: all but ``drop_ids``) and depth.

    ``min_depth_m``/``max_depth_m`` of 0 set no bound.
    """

    keep_ids: Tuple[int, ...] = ()
    drop_ids: Tuple[int, ...] = ()
    min_depth_m: float = 0.0
    max_depth_m: float = 0.0

    @property
    def by_class(self) -> bool:
        """Whether classes are filtered."""
        return bool(self.keep_ids or self.drop_ids)


@functools.lru_cache(maxsize=16)
def ray_factors(intrinsics: PinholeIntrinsics, width: int, height: int,
                decimation: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``(u - cx) / fx`` per kept column and ``(v - cy) / fy`` per kept row (float32)."""
    columns = np.arange(0, width, decimation, dtype=np.float64)
    rows = np.arange(0, height, decimation, dtype=np.float64)
    x_factor = ((columns - intrinsics.cx) / intrinsics.fx).astype(np.float32)[None, :]
    y_factor = ((rows - intrinsics.cy) / intrinsics.fy).astype(np.float32)[:, None]
    for array in (x_factor, y_factor):
        array.flags.writeable = False
    return x_factor, y_factor


def back_project(depth_m: np.ndarray, intrinsics: PinholeIntrinsics,
                 decimation: int = 1) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return x, y, z (float32, ceil(H/d) x ceil(W/d)) of the depth image's kept pixels."""
    if decimation < 1:
        raise ValueError(f'decimation must be >= 1, got {decimation}')
    height, width = depth_m.shape
    x_factor, y_factor = ray_factors(intrinsics, width, height, decimation)
    z = np.ascontiguousarray(depth_m[::decimation, ::decimation], dtype=np.float32)
    return z * x_factor, z * y_factor, z


@functools.lru_cache(maxsize=16)
def _class_table(keep_ids: Tuple[int, ...], drop_ids: Tuple[int, ...],
                 dtype: str) -> np.ndarray:
    """Return a bool table over every label value: True for the labels a filter removes."""
    size = np.iinfo(np.dtype(dtype)).max + 1
    if keep_ids:
        removed = np.ones(size, bool)
        removed[list(keep_ids)] = False
    else:
        removed = np.zeros(size, bool)
    removed[list(drop_ids)] = True
    removed.flags.writeable = False
    return removed


def filtered_out(z: np.ndarray, labels: np.ndarray, cloud_filter: CloudFilter) -> np.ndarray:
    """Return True where a point is removed by ``cloud_filter`` (labels at z's grid)."""
    removed = np.zeros(z.shape, bool)
    if cloud_filter.by_class:
        removed |= _class_table(cloud_filter.keep_ids, cloud_filter.drop_ids,
                                labels.dtype.str)[labels]
    with np.errstate(invalid='ignore'):
        if cloud_filter.min_depth_m > 0.0:
            removed |= z < cloud_filter.min_depth_m
        if cloud_filter.max_depth_m > 0.0:
            removed |= z > cloud_filter.max_depth_m
    return removed


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Return colours packed as depth_image_proc's ``rgb`` field: uint32 ``r<<16 | g<<8 | b``."""
    zeros = np.zeros(rgb.shape[:2], np.uint8)
    red, green, blue = cv2.split(np.ascontiguousarray(rgb))
    packed = cv2.merge([blue, green, red, zeros])  # little-endian bytes b, g, r, 0
    return packed.view(np.uint32)[:, :, 0]


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """Return (..., 3) uint8 colours of a packed ``rgb`` field (float32 or uint32)."""
    bits = np.ascontiguousarray(packed).view(np.uint32)
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=-1).astype(
        np.uint8)


def build_cloud(depth_m: np.ndarray, intrinsics: PinholeIntrinsics, labels: np.ndarray,
                confidence: np.ndarray, rgb: Optional[np.ndarray] = None,
                profile: str = PCL, decimation: int = 1,
                cloud_filter: Optional[CloudFilter] = None,
                organized: bool = True) -> np.ndarray:
    """Return the labelled cloud of one frame as a structured array (see the module docstring).

    ``depth_m``, ``labels``, ``confidence`` and ``rgb`` (H, W, 3 uint8; the ``pcl`` profile's
    colour, black without it) share one grid, that of ``intrinsics``. The result has shape
    (ceil(H/d), ceil(W/d)) when ``organized`` (NaN points where depth is invalid or filtered
    out), else (N,) with only the valid, kept points.
    """
    if profile not in FIELD_PROFILES:
        raise ValueError(f'unknown point field profile {profile!r}; use one of '
                         f'{", ".join(FIELD_PROFILES)}')
    if labels.shape != depth_m.shape or confidence.shape != depth_m.shape:
        raise ValueError(f'labels {labels.shape} and confidence {confidence.shape} must have '
                         f'the shape of depth {depth_m.shape}')
    x, y, z = back_project(depth_m, intrinsics, decimation)
    step = slice(None, None, decimation)
    kept_labels = labels[step, step]
    if cloud_filter is not None:
        removed = filtered_out(z, kept_labels, cloud_filter)
        if removed.any():
            z = np.where(removed, np.float32(np.nan), z)  # z may be a view of depth_m
            x[removed] = np.nan
            y[removed] = np.nan
    planes = [x, y, z]
    if profile == PCL:
        if rgb is None:
            colour = np.zeros(z.shape, np.uint32)
        else:
            colour = pack_rgb(rgb[step, step])
        planes += [colour.view(np.float32),
                   np.ascontiguousarray(kept_labels, np.uint32).view(np.float32)]
    else:
        class_id = kept_labels.astype(np.uint8) if labels.dtype == np.uint8 else \
            np.minimum(kept_labels, unlabeled_id(np.uint8)).astype(np.uint8)
        planes.append(class_id.astype(np.uint32).view(np.float32))
    planes.append(np.ascontiguousarray(confidence[step, step], np.float32))
    interleaved = cv2.merge(planes)  # (h, w, fields) float32, one pass
    cloud = interleaved.view(FIELD_PROFILES[profile])[:, :, 0]
    if organized:
        return cloud
    return cloud[np.isfinite(z)]
