"""Labelled point clouds as files: binary PLY (plyfile) and binary PCD (pypcd4).

The points are the frame's valid depth back-projected as the node's ``depth/points`` does
(``engine.geometry``), invalid and NaN points left out. PLY vertices carry ``x y z`` float32,
``red green blue`` uint8 (the image's colour, which viewers show), ``label`` uint32 and
``confidence`` float32; PCD files have PCL's ``x y z rgb label`` (``PointXYZRGBL``) plus
``confidence``.
"""
import os
from typing import Optional

import numpy as np

from ..engine.geometry import build_cloud, PCL, PinholeIntrinsics, unpack_rgb
from ..engine.prediction import Prediction

PLY_VERTEX = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('red', 'u1'),
                       ('green', 'u1'), ('blue', 'u1'), ('label', '<u4'),
                       ('confidence', '<f4')])


class PointFileError(RuntimeError):
    """A point file cannot be written (a missing library); the message says what to install."""


def frame_points(prediction: Prediction, intrinsics: PinholeIntrinsics,
                 rgb: Optional[np.ndarray]) -> np.ndarray:
    """Return the valid points of one frame (pcl fields, unorganised)."""
    return build_cloud(prediction.depth, intrinsics, prediction.labels, prediction.confidence,
                       rgb, PCL, organized=False)


def write_ply(path: str, points: np.ndarray) -> str:
    """Write pcl-field points as a binary little-endian PLY; return the path."""
    try:
        from plyfile import PlyData, PlyElement
    except ImportError as error:
        raise PointFileError('writing .ply needs the plyfile package (pip install '
                             'plyfile)') from error
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    vertices = np.empty(points.shape[0], PLY_VERTEX)
    for name in ('x', 'y', 'z', 'label', 'confidence'):
        vertices[name] = points[name]
    colour = unpack_rgb(points['rgb']).reshape(-1, 3)
    vertices['red'], vertices['green'], vertices['blue'] = colour.T
    PlyData([PlyElement.describe(vertices, 'vertex')], text=False,
            byte_order='<').write(path)
    return path


def write_pcd(path: str, points: np.ndarray) -> str:
    """Write pcl-field points as a binary PCD (``x y z rgb label confidence``); return the path."""
    try:
        from pypcd4 import Encoding, PointCloud
    except ImportError as error:
        raise PointFileError('writing .pcd needs the pypcd4 package (pip install '
                             'pypcd4)') from error
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    names = ('x', 'y', 'z', 'rgb', 'label', 'confidence')
    columns = [np.ascontiguousarray(points[name]) for name in names]
    cloud = PointCloud.from_points(columns, names, [column.dtype for column in columns])
    cloud.save(path, encoding=Encoding.BINARY)
    return path
