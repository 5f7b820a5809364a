"""Per-task losses with masks: depth only on valid pixels, labels with an ignore index.

The network predicts at stride 4; the targets stay at full resolution and the predictions are
upsampled to them (bilinear, ``align_corners=False``, the same interpolation the engine uses).
Downsampling the targets instead would have to pick one label per 4x4 cell (nearest) and drop
thin objects and depth edges, so the loss would not see what users see.

A task whose batch holds no valid pixel (a depth-only or a labels-only batch, the asymmetric
annotations of the paper) returns ``None``: it contributes no loss, not a zero-valued NaN trap.
"""
from typing import Dict, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F

from ..data.classes import IGNORE_INDEX

DEPTH_LOSSES = ('l1', 'berhu', 'rel_l1')
BERHU_THRESHOLD_FRACTION = 0.2
"""berHu switches from L1 to L2 at this fraction of the largest residual in the batch."""

TaskLosses = Dict[str, Optional[torch.Tensor]]
"""Loss of each task; ``None`` for a task without a valid pixel in the batch."""


def upsample_to(prediction: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize an (N, C, h, w) prediction to ``size`` = (H, W) bilinearly (no-op when equal)."""
    if tuple(prediction.shape[-2:]) == tuple(size):
        return prediction
    return F.interpolate(prediction, size=tuple(size), mode='bilinear', align_corners=False)


def valid_depth_mask(target_m: torch.Tensor, min_depth_m: float = 0.0,
                     max_depth_m: float = float('inf')) -> torch.Tensor:
    """Return where a depth target is known: finite and inside (min_depth_m, max_depth_m]."""
    finite = torch.isfinite(target_m)
    safe = torch.where(finite, target_m, torch.zeros_like(target_m))
    return finite & (safe > min_depth_m) & (safe <= max_depth_m)


def depth_loss(prediction_m: torch.Tensor, target_m: torch.Tensor, kind: str = 'berhu',
               min_depth_m: float = 0.0,
               max_depth_m: float = float('inf')) -> Optional[torch.Tensor]:
    """Masked depth loss over valid pixels; ``None`` if there is no valid pixel.

    Args:
        prediction_m: (N, 1, h, w) predicted metres (any resolution; upsampled to the target).
        target_m: (N, 1, H, W) metres, NaN/inf/0 where unknown.
        kind: 'l1' (mean absolute error, metres), 'berhu' (reverse Huber, Laina et al. 2016:
            L1 below c = 0.2 max|residual|, scaled L2 above), or 'rel_l1' (mean |p - t| / t,
            which is the AbsRel metric itself).
    """
    if kind not in DEPTH_LOSSES:
        raise ValueError(f'unknown depth loss {kind!r}; expected one of {DEPTH_LOSSES}')
    mask = valid_depth_mask(target_m, min_depth_m, max_depth_m)
    if not bool(mask.any()):
        return None
    prediction = upsample_to(prediction_m, target_m.shape[-2:])[mask]
    target = target_m[mask]
    residual = (prediction - target).abs()
    if kind == 'l1':
        return residual.mean()
    if kind == 'rel_l1':
        return (residual / target).mean()
    threshold = (BERHU_THRESHOLD_FRACTION * residual.max()).detach().clamp_min(1e-6)
    squared = (residual * residual + threshold * threshold) / (2.0 * threshold)
    return torch.where(residual <= threshold, residual, squared).mean()


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor,
                      ignore_index: int = IGNORE_INDEX,
                      class_weights: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
    """Cross-entropy over labelled pixels; ``None`` if every pixel is ignored.

    Args:
        logits: (N, C, h, w) (upsampled to the labels' size).
        labels: (N, H, W) int64 class ids, ``ignore_index`` where unknown.
    """
    known = labels != ignore_index
    if not bool(known.any()):
        return None
    logits = upsample_to(logits, labels.shape[-2:])
    return F.cross_entropy(logits, labels, weight=class_weights, ignore_index=ignore_index)


def task_losses(outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
                depth_kind: str = 'berhu', min_depth_m: float = 0.0,
                max_depth_m: float = float('inf'),
                class_weights: Optional[torch.Tensor] = None) -> TaskLosses:
    """Return {'segm': loss or None, 'depth': loss or None} for one batch."""
    return {
        'segm': segmentation_loss(outputs['segm'], batch['labels'], class_weights=class_weights),
        'depth': depth_loss(outputs['depth'], batch['depth'], depth_kind, min_depth_m,
                            max_depth_m),
    }
