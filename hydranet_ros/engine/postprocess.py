"""From raw stride-4 head outputs to full-resolution depth, labels, confidence and normals.

Two equivalent implementations: a NumPy/OpenCV one for the CPU and a torch one that runs where the
network ran (a GPU). Both upsample bilinearly with ``align_corners=False`` (as the network does
internally) and take the argmax of the upsampled logits; label ids are never interpolated.
"""
import functools
from typing import Optional, Tuple

import numpy as np
import torch
from torch.nn import functional as F

import cv2


def label_dtype(num_classes: int) -> np.dtype:
    """Return uint8 when ids 0..num_classes-1 and the unlabelled id 255 fit, else uint16."""
    return np.dtype(np.uint8) if num_classes <= 255 else np.dtype(np.uint16)


def mask_depth(depth_m: np.ndarray, min_depth_m: float, max_depth_m: float) -> np.ndarray:
    """Set non-finite, non-positive and out-of-range depths to NaN (REP 118), in place."""
    with np.errstate(invalid='ignore'):
        invalid = ~((depth_m > 0.0) & (depth_m >= min_depth_m) & (depth_m <= max_depth_m))
    depth_m[invalid] = np.nan
    return depth_m


@functools.lru_cache(maxsize=32)
def _source_index(out_size: int, in_size: int) -> Tuple[np.ndarray, ...]:
    """Return the two source rows/columns and weights of bilinear resizing (as torch computes)."""
    scale = np.float32(in_size) / np.float32(out_size)
    source = np.maximum((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale
                        - np.float32(0.5), np.float32(0.0))
    first = np.minimum(source.astype(np.int64), in_size - 1)
    second = np.minimum(first + 1, in_size - 1)
    weight_second = np.clip(source - first, 0.0, 1.0).astype(np.float32)
    for array in (first, second, weight_second):
        array.flags.writeable = False
    return first, second, np.float32(1.0) - weight_second, weight_second


@functools.lru_cache(maxsize=8)
def _nearest_corner_index(height: int, width: int, low_height: int, low_width: int) -> np.ndarray:
    """Return, per output pixel, the flat index of its top-left bilinear source pixel."""
    y0 = _source_index(height, low_height)[0]
    x0 = _source_index(width, low_width)[0]
    index = (y0[:, None] * low_width + x0[None, :]).astype(np.intp).ravel()
    index.flags.writeable = False
    return index


def _argmax_and_peak(logits: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Return per-pixel argmax (lowest id on ties) and maximum over the class axis."""
    peak = logits[0].copy()
    labels = np.zeros(peak.shape, np.int32)
    for class_id in range(1, logits.shape[0]):
        better = logits[class_id] > peak
        np.copyto(peak, logits[class_id], where=better)
        labels[better] = class_id
    return labels, peak


def _blocks_with_mixed_corners(low: np.ndarray) -> np.ndarray:
    """Return True where the 2x2 block starting at a low-res pixel holds more than one label."""
    padded = np.pad(low, ((0, 1), (0, 1)), mode='edge')
    return ((padded[:-1, 1:] != low) | (padded[1:, :-1] != low) | (padded[1:, 1:] != low))


def _interpolated_argmax(logits: np.ndarray, pixels: np.ndarray, mixed_blocks: np.ndarray,
                         height: int, width: int) -> np.ndarray:
    """Return the argmax of the bilinearly interpolated logits at flat output ``pixels``.

    The corner vectors are gathered once per low-res block as contiguous rows; the per-pixel
    blend is single-threaded NumPy (no thread pool to contend with the network's) in the same
    operation order as ``F.interpolate``.
    """
    classes, low_height, low_width = logits.shape
    ys, xs = np.divmod(pixels, width)
    y0, y1, wy0, wy1 = _source_index(height, low_height)
    x0, x1, wx0, wx1 = _source_index(width, low_width)
    block_rows, block_cols = np.divmod(mixed_blocks, low_width)
    next_rows = np.minimum(block_rows + 1, low_height - 1) * low_width
    next_cols = np.minimum(block_cols + 1, low_width - 1)
    corner_index = np.stack([mixed_blocks, block_rows * low_width + next_cols,
                             next_rows + block_cols, next_rows + next_cols], axis=1).ravel()
    corners = np.ascontiguousarray(logits.reshape(classes, -1)[:, corner_index].T)
    block_of = np.empty(low_height * low_width, np.int64)
    block_of[mixed_blocks] = np.arange(mixed_blocks.size) * 4
    first = block_of[y0[ys] * low_width + x0[xs]]
    weight_x0, weight_x1 = wx0[xs, None], wx1[xs, None]
    top = corners[first] * weight_x0
    top += corners[first + 1] * weight_x1
    bottom = corners[first + 2] * weight_x0
    bottom += corners[first + 3] * weight_x1
    top *= wy0[ys, None]
    bottom *= wy1[ys, None]
    top += bottom
    return top.argmax(axis=1)


def upsampled_argmax(logits: np.ndarray, height: int, width: int,
                     low_labels: Optional[np.ndarray] = None) -> np.ndarray:
    """Return argmax over classes of the bilinearly upsampled ``logits`` (C, h, w) as (H, W).

    Exact and fast: a bilinear value is a convex combination of four corners, so where all four
    corners share an argmax the upsampled argmax is that class (ties resolve to the lowest id as
    ``argmax`` does). Only pixels whose corners disagree are interpolated over all classes.
    """
    classes, low_height, low_width = logits.shape
    if low_labels is None:
        low_labels = _argmax_and_peak(logits)[0]
    mixed_blocks = _blocks_with_mixed_corners(low_labels)
    code = (low_labels * 2 + mixed_blocks).ravel().take(
        _nearest_corner_index(height, width, low_height, low_width))
    mixed = np.flatnonzero(code & 1)
    labels = (code >> 1).reshape(height, width)
    if mixed.size:
        labels.ravel()[mixed] = _interpolated_argmax(
            logits, mixed, np.flatnonzero(mixed_blocks), height, width)
    return labels


def max_probability(logits: np.ndarray, peak: Optional[np.ndarray] = None) -> np.ndarray:
    """Return the largest softmax probability over classes for (C, h, w) logits."""
    if peak is None:
        peak = logits.max(axis=0)
    total = np.zeros(peak.shape, np.float32)
    for class_logits in logits:
        total += cv2.exp(class_logits - peak)
    return 1.0 / total


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (h, w) or (h, w, c<=4) float map bilinearly (half-pixel centres)."""
    if image.shape[:2] == (height, width):
        return image.copy()
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def normalise_vectors(normals: np.ndarray) -> np.ndarray:
    """Scale (H, W, 3) vectors to unit length (zero vectors stay zero)."""
    norm = np.linalg.norm(normals, axis=2, keepdims=True)
    return normals / np.maximum(norm, np.float32(1e-6))


def postprocess_numpy(segm: np.ndarray, depth: np.ndarray, normals: Optional[np.ndarray],
                      height: int, width: int) -> dict:
    """CPU post-processing of one frame's raw outputs ((C,h,w), (1,h,w), (3,h,w) or None)."""
    low_labels, peak = _argmax_and_peak(segm)
    result = {
        'labels': upsampled_argmax(segm, height, width, low_labels),
        'confidence': resize_bilinear(max_probability(segm, peak), height, width),
        'depth': resize_bilinear(np.ascontiguousarray(depth[0]), height, width),
        'normals': None,
    }
    if normals is not None:
        result['normals'] = normalise_vectors(
            resize_bilinear(np.ascontiguousarray(normals.transpose(1, 2, 0)), height, width))
    return result


@torch.inference_mode()
def postprocess_torch(outputs: dict, height: int, width: int) -> dict:
    """Post-process a batch of raw outputs on their device; return batched numpy arrays."""
    size = (height, width)
    logits = F.interpolate(outputs['segm'].float(), size=size, mode='bilinear',
                           align_corners=False)
    peak, labels = logits.max(dim=1)
    confidence = torch.exp(peak - torch.logsumexp(logits, dim=1))
    depth = F.interpolate(outputs['depth'].float(), size=size, mode='bilinear',
                          align_corners=False)[:, 0]
    result = {
        'labels': labels.to(torch.int32).cpu().numpy(),
        'confidence': confidence.cpu().numpy(),
        'depth': depth.cpu().numpy(),
        'normals': None,
    }
    if 'normals' in outputs:
        normals = F.interpolate(outputs['normals'].float(), size=size, mode='bilinear',
                                align_corners=False)
        result['normals'] = F.normalize(normals, dim=1, eps=1e-6).permute(0, 2, 3, 1).cpu().numpy()
    return result
