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
def _nearest_corner_map(height: int, width: int, low_height: int,
                        low_width: int) -> np.ndarray:
    """Return a (H, W, 2) int16 ``cv2.remap`` map to each output pixel's top-left source pixel."""
    y0 = _source_index(height, low_height)[0].astype(np.int16)
    x0 = _source_index(width, low_width)[0].astype(np.int16)
    corner_map = np.empty((height, width, 2), np.int16)
    corner_map[:, :, 0] = x0[None, :]
    corner_map[:, :, 1] = y0[:, None]
    corner_map.flags.writeable = False
    return corner_map


@functools.lru_cache(maxsize=32)
def _output_span(out_size: int, in_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Return, per source index, the first output index with it as top-left corner, and how many.

    The count is zero for source rows/columns that downsampling skips.
    """
    first = _source_index(out_size, in_size)[0]
    start = np.searchsorted(first, np.arange(in_size), side='left')
    count = np.searchsorted(first, np.arange(in_size), side='right') - start
    for array in (start, count):
        array.flags.writeable = False
    return start, count


def _argmax_and_peak(logits: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Return per-pixel argmax (lowest id on ties, as uint8/uint16) and maximum over classes."""
    peak = logits[0].copy()
    labels = np.zeros(peak.shape, label_dtype(logits.shape[0]))
    for class_id in range(1, logits.shape[0]):
        better = logits[class_id] > peak
        np.copyto(peak, logits[class_id], where=better)
        labels[better] = class_id
    return labels, peak


def _blocks_with_mixed_corners(low: np.ndarray) -> np.ndarray:
    """Return True where the 2x2 block starting at a low-res pixel holds more than one label."""
    padded = np.pad(low, ((0, 1), (0, 1)), mode='edge')
    return ((padded[:-1, 1:] != low) | (padded[1:, :-1] != low) | (padded[1:, 1:] != low))


def _candidate_classes(corners: np.ndarray) -> np.ndarray:
    """Return a (blocks, classes) mask of the classes that can win somewhere inside each block.

    ``corners`` is (classes, 4, blocks). Inside a block every interpolated logit lies between
    that class's smallest and largest corner, so a class whose largest corner is below another
    class's smallest corner never wins there. The margin covers float rounding, so the result
    stays exact. A block left without candidates (NaN logits) keeps all classes.
    """
    upper = np.maximum(np.maximum(corners[:, 0], corners[:, 1]),
                       np.maximum(corners[:, 2], corners[:, 3]))
    lower = np.minimum(np.minimum(corners[:, 0], corners[:, 1]),
                       np.minimum(corners[:, 2], corners[:, 3]))
    magnitude = max(float(upper.max()), -float(lower.min()), 0.0)
    margin = np.float32(1e-5 * magnitude + 1e-30)
    candidates = (upper >= lower.max(axis=0) - margin).T
    empty = ~candidates.any(axis=1)
    if empty.any():
        candidates[empty] = True
    return candidates


def _fill_mixed_blocks(labels: np.ndarray, logits: np.ndarray, mixed_blocks: np.ndarray) -> None:
    """Write the upsampled argmax of the output pixels covered by ``mixed_blocks`` into labels.

    A block is the low-res pixel that is the top-left bilinear corner of a rectangle of output
    pixels. Its four corner vectors are gathered once and narrowed to the classes that can win
    in it (usually two). Blocks of one rectangle size are blended together, candidate by
    candidate, as (blocks, rows, columns) arrays: each row of weights is applied to the corners
    once per block, not gathered per pixel. Single-threaded NumPy (no thread pool to contend
    with the network's), in the operation order of torch's scalar bilinear kernel; the lowest
    id wins a tie, as ``argmax`` does. Classes closer than float rounding (an ulp) may resolve
    differently from torch, whose own CPU kernels round differently from one code path to
    another.
    """
    classes, low_height, low_width = logits.shape
    height, width = labels.shape
    row_start, row_count = _output_span(height, low_height)
    col_start, col_count = _output_span(width, low_width)
    block_rows, block_cols = np.divmod(mixed_blocks, low_width)
    next_rows = np.minimum(block_rows + 1, low_height - 1) * low_width
    next_cols = np.minimum(block_cols + 1, low_width - 1)
    corner_index = np.stack([mixed_blocks, block_rows * low_width + next_cols,
                             next_rows + block_cols, next_rows + next_cols])
    corners = np.take(logits.reshape(classes, -1), corner_index, axis=1)
    candidates = _candidate_classes(corners)
    candidate_class = np.nonzero(candidates)[1]
    block_candidates = candidates.sum(axis=1)
    block_first_candidate = np.cumsum(block_candidates) - block_candidates
    block_shape = row_count[block_rows] * (width + 1) + col_count[block_cols]
    for shape in np.unique(block_shape):
        rows, columns = divmod(int(shape), width + 1)
        if rows == 0 or columns == 0:  # a low-res row or column that downsampling skips
            continue
        # Blocks with more candidates first: those with a j-th candidate are a prefix.
        group = np.flatnonzero(block_shape == shape)
        group = group[np.argsort(-block_candidates[group], kind='stable')]
        ys = row_start[block_rows[group]][:, None] + np.arange(rows)
        xs = col_start[block_cols[group]][:, None] + np.arange(columns)
        winners = _blend_group(corners, group, candidate_class, block_first_candidate[group],
                               block_candidates[group], _weights(height, low_height, ys),
                               _weights(width, low_width, xs))
        labels[ys[:, :, None], xs[:, None, :]] = winners


def _weights(out_size: int, in_size: int, positions: np.ndarray) -> Tuple[np.ndarray, ...]:
    """Return the bilinear weights of the first and second source index at output positions."""
    _, _, first, second = _source_index(out_size, in_size)
    return first[positions], second[positions]


def _blend_group(corners: np.ndarray, group: np.ndarray, candidate_class: np.ndarray,
                 first_candidate: np.ndarray, candidate_count: np.ndarray,
                 row_weights: Tuple[np.ndarray, ...],
                 column_weights: Tuple[np.ndarray, ...]) -> np.ndarray:
    """Return the winning class of each pixel of blocks of one size, as (blocks, rows, cols).

    ``group`` indexes the blocks in ``corners`` (classes, 4, blocks), sorted by falling
    ``candidate_count``; the weights are (blocks, rows) and (blocks, columns).
    """
    weight_y0, weight_y1 = row_weights
    weight_x0, weight_x1 = column_weights
    blocks_with = group.size - np.cumsum(np.bincount(candidate_count))
    best = winner = None
    for slot in range(int(candidate_count[0])):
        count = group.size if slot == 0 else int(blocks_with[slot])
        cls = candidate_class[first_candidate[:count] + slot]
        block = group[:count]
        top_left, top_right, bottom_left, bottom_right = (
            corners[cls, corner, block][:, None] for corner in range(4))
        top = top_left * weight_x0[:count]
        top += top_right * weight_x1[:count]
        bottom = bottom_left * weight_x0[:count]
        bottom += bottom_right * weight_x1[:count]
        value = top[:, None, :] * weight_y0[:count, :, None]
        value += bottom[:, None, :] * weight_y1[:count, :, None]
        if best is None:
            best, winner = value, np.zeros(value.shape, np.intp)
            continue
        better = value > best[:count]  # strictly: a tie keeps the lower id
        np.copyto(best[:count], value, where=better)
        winner[:count][better] = slot
    return candidate_class[first_candidate[:, None, None] + winner]


def upsampled_argmax(logits: np.ndarray, height: int, width: int,
                     low_labels: Optional[np.ndarray] = None) -> np.ndarray:
    """Return argmax over classes of the bilinearly upsampled ``logits`` (C, h, w) as (H, W).

    Exact (up to ties within float rounding) and fast: a bilinear value is a convex combination
    of four corners, so where all four corners share an argmax the upsampled argmax is that
    class (ties resolve to the lowest id as ``argmax`` does). Only pixels whose corners disagree
    are interpolated, over the classes that can win there. The labels have the dtype of
    ``low_labels``.
    """
    classes, low_height, low_width = logits.shape
    if low_labels is None:
        low_labels = _argmax_and_peak(logits)[0]
    labels = cv2.remap(low_labels, _nearest_corner_map(height, width, low_height, low_width),
                       None, cv2.INTER_NEAREST)
    mixed_blocks = np.flatnonzero(_blocks_with_mixed_corners(low_labels))
    if mixed_blocks.size:
        _fill_mixed_blocks(labels, logits, mixed_blocks)
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
