"""Vectorised ray intersections with axis-aligned boxes, spheres and horizontal planes.

Rays are ``origin + t * direction``; ``t`` is returned in units of the direction's length, so
camera rays with a unit z component give ``t`` equal to the depth along the optical axis.
Every function answers ``inf`` where a ray misses.
"""
from typing import Tuple

import numpy as np
from numpy.typing import ArrayLike

MIN_HIT_DISTANCE = 1e-4
"""Hits closer than this (in units of t) are ignored, so shadow rays do not hit their origin."""

_TINY_DIRECTION = 1e-12


def _safe_directions(directions: np.ndarray) -> np.ndarray:
    """Replace exactly-zero direction components so the slab test never computes 0 * inf."""
    return np.where(directions == 0.0, _TINY_DIRECTION, directions)


def intersect_box(origins: ArrayLike, directions: np.ndarray, box_min: ArrayLike,
                  box_max: ArrayLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersect rays with one axis-aligned box.

    Args:
        origins: (..., 3) or (3,) ray origins.
        directions: (..., 3) ray directions (need not be unit length).
        box_min, box_max: (3,) opposite corners.

    Returns:
        (t, axis, sign): distance (inf on a miss), the axis (0, 1, 2) of the face that was hit,
        and the sign (+1/-1) of that face's outward normal along the axis.
    """
    origins, directions = np.broadcast_arrays(origins, _safe_directions(directions))
    inverse = 1.0 / directions
    t_low = (np.asarray(box_min) - origins) * inverse
    t_high = (np.asarray(box_max) - origins) * inverse
    t_near = np.minimum(t_low, t_high)
    t_far = np.maximum(t_low, t_high)
    axis = np.argmax(t_near, axis=-1)
    t_enter = np.take_along_axis(t_near, axis[..., None], axis=-1)[..., 0]
    t_exit = t_far.min(axis=-1)
    hit = (t_enter <= t_exit) & (t_enter > MIN_HIT_DISTANCE)
    t = np.where(hit, t_enter, np.inf)
    direction_on_axis = np.take_along_axis(directions, axis[..., None], axis=-1)[..., 0]
    sign = np.where(direction_on_axis > 0.0, -1, 1).astype(np.int8)
    return t, axis, sign


def intersect_sphere(origins: np.ndarray, directions: np.ndarray, center: ArrayLike,
                     radius: float) -> np.ndarray:
    """Intersect rays with a sphere seen from outside; returns t (inf on a miss)."""
    offset = origins - np.asarray(center)
    a = np.einsum('...i,...i->...', directions, directions)
    b = 2.0 * np.einsum('...i,...i->...', directions, offset)
    c = np.einsum('...i,...i->...', offset, offset) - radius * radius
    discriminant = b * b - 4.0 * a * c
    root = np.sqrt(np.maximum(discriminant, 0.0))
    t = (-b - root) / (2.0 * a)
    hit = (discriminant >= 0.0) & (t > MIN_HIT_DISTANCE)
    return np.where(hit, t, np.inf)


def intersect_horizontal_plane(origins: np.ndarray, directions: np.ndarray,
                               plane_y: float) -> np.ndarray:
    """Intersect rays with the plane y = plane_y from above (y points down); inf on a miss."""
    dy = directions[..., 1]
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (plane_y - origins[..., 1]) / dy
    hit = (dy > 0.0) & (t > MIN_HIT_DISTANCE)
    return np.where(hit, t, np.inf)


def box_blocks(origins: np.ndarray, direction: np.ndarray, box_min: np.ndarray,
               box_max: np.ndarray) -> np.ndarray:
    """Return whether rays from ``origins`` (N, 3) along one ``direction`` (3,) hit the box.

    A faster, boolean-only slab test for shadow rays.
    """
    t_enter = np.full(len(origins), MIN_HIT_DISTANCE)
    t_exit = np.full(len(origins), np.inf)
    for axis in range(3):
        start = origins[:, axis]
        step = float(direction[axis])
        if abs(step) < _TINY_DIRECTION:
            outside = (start < box_min[axis]) | (start > box_max[axis])
            t_exit = np.where(outside, -np.inf, t_exit)
            continue
        t_low = (box_min[axis] - start) / step
        t_high = (box_max[axis] - start) / step
        t_enter = np.maximum(t_enter, np.minimum(t_low, t_high))
        t_exit = np.minimum(t_exit, np.maximum(t_low, t_high))
    return t_enter <= t_exit
