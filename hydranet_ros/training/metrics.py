"""Evaluation metrics: a confusion matrix for segmentation and accumulated depth errors.

Segmentation: per-class IoU = TP / (TP + FP + FN) over pixels whose label is not ignored; mIoU
averages the classes that occur in the ground truth or the prediction; pixel accuracy =
correct / labelled.

Depth (Eigen et al. 2014), over valid pixels only (finite ground truth inside
(min_depth_m, max_depth_m]): AbsRel = mean |p - t| / t, SqRel = mean (p - t)^2 / t,
RMSE = sqrt(mean (p - t)^2), RMSE-log = sqrt(mean (ln p - ln t)^2), delta_k = fraction with
max(p / t, t / p) < 1.25^k for k = 1, 2, 3. Predictions are clamped to the range; predictions
that are no depth (NaN, inf, <= 0: what the engine reports as invalid) count as the range's far
end. All averages are over the pixels of the whole set.
"""
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike

from ..data.classes import IGNORE_INDEX

DELTA_BASE = 1.25
MIN_PREDICTION_M = 1e-3
"""Predictions are clamped to at least this (metres) so the log and ratios stay finite."""


class ConfusionMatrix:
    """Accumulate a (classes x classes) confusion matrix: rows truth, columns prediction."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, prediction: ArrayLike, truth: ArrayLike) -> None:
        """Add a frame (or batch): integer arrays of the same shape."""
        prediction = np.asarray(prediction).ravel().astype(np.int64)
        truth = np.asarray(truth).ravel().astype(np.int64)
        if prediction.shape != truth.shape:
            raise ValueError(f'prediction has {prediction.size} pixels, truth {truth.size}')
        keep = (truth != self.ignore_index) & (truth >= 0) & (truth < self.num_classes)
        index = truth[keep] * self.num_classes + np.clip(prediction[keep], 0,
                                                         self.num_classes - 1)
        self.matrix += np.bincount(index, minlength=self.num_classes ** 2).reshape(
            self.num_classes, self.num_classes)

    def iou(self) -> np.ndarray:
        """Return per-class IoU (NaN for classes absent from truth and prediction)."""
        true_positive = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - true_positive
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(union > 0, true_positive / union, np.nan)

    def summary(self, class_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """Return {'miou', 'pixel_accuracy', 'mean_class_accuracy', 'per_class_iou', 'pixels'}."""
        iou = self.iou()
        total = self.matrix.sum()
        with np.errstate(invalid='ignore', divide='ignore'):
            class_accuracy = np.diag(self.matrix) / self.matrix.sum(1)
        names = class_names or [str(i) for i in range(self.num_classes)]
        present = ~np.isnan(iou)
        return {
            'miou': float(np.mean(iou[present])) if present.any() else float('nan'),
            'pixel_accuracy': float(np.trace(self.matrix) / total) if total else float('nan'),
            'mean_class_accuracy': float(np.nanmean(class_accuracy))
            if np.isfinite(class_accuracy).any() else float('nan'),
            'per_class_iou': {name: (None if np.isnan(value) else float(value))
                              for name, value in zip(names, iou)},
            'pixels': int(total),
        }


class DepthMetrics:
    """Accumulate depth error sums over valid pixels of many frames."""

    def __init__(self, min_depth_m: float = 0.0, max_depth_m: float = np.inf) -> None:
        self.min_depth_m = float(min_depth_m)
        self.max_depth_m = float(max_depth_m)
        self.count = 0
        self.sums = dict.fromkeys(('abs_rel', 'sq_rel', 'sq', 'sq_log', 'delta1', 'delta2',
                                   'delta3'), 0.0)

    def valid_mask(self, truth_m: ArrayLike) -> np.ndarray:
        """Return where the ground truth is usable."""
        truth_m = np.asarray(truth_m, dtype=np.float64)
        with np.errstate(invalid='ignore'):
            return (np.isfinite(truth_m) & (truth_m > self.min_depth_m)
                    & (truth_m <= self.max_depth_m))

    def frame_errors(self, prediction_m: ArrayLike,
                     truth_m: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
        """Return per-pixel (prediction, truth) over the valid pixels of one frame."""
        truth_m = np.asarray(truth_m, dtype=np.float64)
        prediction_m = np.asarray(prediction_m, dtype=np.float64)
        if prediction_m.shape != truth_m.shape:
            raise ValueError(f'prediction is {prediction_m.shape}, truth {truth_m.shape}')
        valid = self.valid_mask(truth_m)
        far = self.max_depth_m if np.isfinite(self.max_depth_m) else np.nanmax(truth_m[valid],
                                                                               initial=1.0)
        with np.errstate(invalid='ignore'):
            usable = np.isfinite(prediction_m) & (prediction_m > 0.0)
        prediction = np.where(usable, prediction_m, far)[valid]
        lower = max(self.min_depth_m, MIN_PREDICTION_M)
        return np.clip(prediction, lower, far), truth_m[valid]

    def update(self, prediction_m: ArrayLike, truth_m: ArrayLike) -> None:
        """Add a frame (or batch) of predicted and true depth in metres."""
        prediction, truth = self.frame_errors(prediction_m, truth_m)
        if truth.size == 0:
            return
        difference = prediction - truth
        ratio = np.maximum(prediction / truth, truth / prediction)
        self.count += truth.size
        self.sums['abs_rel'] += float(np.sum(np.abs(difference) / truth))
        self.sums['sq_rel'] += float(np.sum(difference ** 2 / truth))
        self.sums['sq'] += float(np.sum(difference ** 2))
        self.sums['sq_log'] += float(np.sum((np.log(prediction) - np.log(truth)) ** 2))
        for k in (1, 2, 3):
            self.sums[f'delta{k}'] += float(np.sum(ratio < DELTA_BASE ** k))

    def summary(self) -> Dict[str, float]:
        """Return {'abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'delta1..3', 'pixels'}."""
        if self.count == 0:
            values = dict.fromkeys(('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'delta1', 'delta2',
                                    'delta3'), float('nan'))
        else:
            mean = {key: value / self.count for key, value in self.sums.items()}
            values = {'abs_rel': mean['abs_rel'], 'sq_rel': mean['sq_rel'],
                      'rmse': float(np.sqrt(mean['sq'])),
                      'rmse_log': float(np.sqrt(mean['sq_log'])),
                      'delta1': mean['delta1'], 'delta2': mean['delta2'],
                      'delta3': mean['delta3']}
        values['pixels'] = int(self.count)
        return values
