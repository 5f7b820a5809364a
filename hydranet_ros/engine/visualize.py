"""Pictures for people: colourised depth and segmentation overlays (never for machines)."""
from typing import Optional, Sequence

import numpy as np

import cv2

INVALID_DEPTH_RGB = (0, 0, 0)


def color_table(colors: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """Return a (max(num_classes, 256), 3) uint8 lookup table; unknown ids are black."""
    table = np.zeros((max(num_classes, 256), 3), np.uint8)
    if colors:
        table[:len(colors)] = np.asarray(colors, np.uint8)
    else:  # A fixed pseudo-random palette so that any model gets distinct colours.
        rng = np.random.default_rng(2019)
        table[:num_classes] = rng.integers(40, 256, (num_classes, 3), dtype=np.uint8)
    return table


def colorize_labels(labels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Return (H, W, 3) RGB colours of a label image."""
    if labels.dtype == np.uint8 and labels.ndim == 2:  # a per-channel lookup, ~10x faster
        return cv2.LUT(cv2.merge((labels, labels, labels)), table[:256].reshape(256, 1, 3))
    return table[labels]


def overlay_labels(image_rgb: np.ndarray, labels: np.ndarray, table: np.ndarray,
                   alpha: float = 0.5) -> np.ndarray:
    """Blend label colours over the image: ``alpha`` 0 shows the image, 1 only the labels."""
    colors = colorize_labels(labels, table)
    if alpha >= 1.0:
        return colors
    return cv2.addWeighted(colors, float(alpha), image_rgb, 1.0 - float(alpha), 0.0)


def colorize_depth(depth_m: np.ndarray, min_depth_m: float = 0.0,
                   max_depth_m: Optional[float] = None,
                   colormap: int = cv2.COLORMAP_TURBO) -> np.ndarray:
    """Return (H, W, 3) RGB colours of a metric depth image; NaN (invalid) pixels are black.

    Near is red, far is blue (TURBO reversed) over the fixed range [min_depth_m, max_depth_m],
    so pictures of different frames are comparable.
    """
    valid = np.isfinite(depth_m)
    if max_depth_m is None:
        max_depth_m = float(np.nanmax(depth_m)) if valid.any() else 1.0
    span = max(max_depth_m - min_depth_m, 1e-6)
    scaled = np.zeros(depth_m.shape, np.uint8)
    scaled[valid] = np.clip((max_depth_m - depth_m[valid]) / span * 255.0, 0, 255).astype(np.uint8)
    colored = cv2.cvtColor(cv2.applyColorMap(scaled, colormap), cv2.COLOR_BGR2RGB)
    colored[~valid] = INVALID_DEPTH_RGB
    return colored


def colorize_normals(normals: np.ndarray) -> np.ndarray:
    """Return (H, W, 3) RGB of unit surface normals mapped from [-1, 1] to [0, 255]."""
    return np.clip((normals + 1.0) * 127.5, 0, 255).astype(np.uint8)
