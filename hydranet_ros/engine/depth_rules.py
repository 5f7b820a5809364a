"""Depth a planner can trust (REP 118): which pixels get NaN depth, and the metric rescaling.

The node, ``hydranet-infer``, ``hydranet-bag`` and the ``perception`` bundle apply the same
rules to each prediction, in this order:

1. labels whose confidence is below ``confidence_threshold`` become the unlabelled id;
2. depth is multiplied by ``scale`` (the intrinsics scaling of ``metric_scale``);
3. depth is NaN where the label is one of ``invalid_class_ids`` (by default the model's sky
   class, where it has one) or the unlabelled id;
4. depth is NaN where the confidence (softmax probability of the chosen class) is below
   ``min_confidence``;
5. depth is NaN outside ``[min_depth_m, max_depth_m]`` (0: no bound; the model's own range
   was applied by the engine already).
"""
import functools
from dataclasses import dataclass
from typing import Iterable, Sequence, Tuple

import numpy as np

from ..model import HydraNetConfig
from .class_map import class_name, unlabeled_id
from .prediction import Prediction

DEFAULT_INVALID_DEPTH_CLASSES: Tuple[str, ...] = ('sky',)


@dataclass(frozen=True)
class DepthRules:
    """The rules of the module docstring, with class ids resolved for one model."""

    invalid_class_ids: Tuple[int, ...] = ()
    min_confidence: float = 0.0
    min_depth_m: float = 0.0
    max_depth_m: float = 0.0
    confidence_threshold: float = 0.0
    scale: float = 1.0

    def with_scale(self, scale: float) -> 'DepthRules':
        """Return the same rules with another depth scale."""
        return DepthRules(self.invalid_class_ids, self.min_confidence, self.min_depth_m,
                          self.max_depth_m, self.confidence_threshold, float(scale))


def class_ids(config: HydraNetConfig,
              names: Iterable[str]) -> Tuple[Tuple[int, ...], Tuple[str, ...]]:
    """Return the ids of the named classes (case-insensitive) and the names the model lacks.

    A name may also be ``class_<id>`` (how classes without names are called in the class map).
    """
    by_name = {class_name(config, i).strip().lower(): i for i in range(config.num_classes)}
    ids, unknown = [], []
    for name in names:
        key = name.strip().lower()
        if key in by_name:
            ids.append(by_name[key])
        elif key:
            unknown.append(name)
    return tuple(sorted(set(ids))), tuple(unknown)


def depth_rules(config: HydraNetConfig,
                invalid_classes: Sequence[str] = DEFAULT_INVALID_DEPTH_CLASSES,
                min_confidence: float = 0.0, min_depth_m: float = 0.0,
                max_depth_m: float = 0.0, confidence_threshold: float = 0.0,
                scale: float = 1.0) -> DepthRules:
    """Return the rules for a model; class names the model lacks are ignored."""
    ids, _ = class_ids(config, invalid_classes)
    return DepthRules(ids, float(min_confidence), float(min_depth_m), float(max_depth_m),
                      float(confidence_threshold), float(scale))


@functools.lru_cache(maxsize=16)
def _invalid_table(ids: Tuple[int, ...], dtype: str) -> np.ndarray:
    """Return a bool table over every label value: True for ``ids`` and the unlabelled id."""
    table = np.zeros(np.iinfo(np.dtype(dtype)).max + 1, bool)
    table[list(ids)] = True
    table[unlabeled_id(np.dtype(dtype))] = True
    table.flags.writeable = False
    return table


def invalid_label_mask(labels: np.ndarray, ids: Tuple[int, ...]) -> np.ndarray:
    """Return True where ``labels`` is one of ``ids`` or the unlabelled id."""
    return _invalid_table(tuple(ids), labels.dtype.str)[labels]


def apply_depth_rules(prediction: Prediction, rules: DepthRules) -> Prediction:
    """Apply ``rules`` to a prediction in place (see the module docstring); return it."""
    depth_m, labels, confidence = prediction.depth, prediction.labels, prediction.confidence
    thresholded = rules.confidence_threshold > 0.0
    if thresholded:
        labels[confidence < rules.confidence_threshold] = unlabeled_id(labels.dtype)
    if rules.scale != 1.0:
        np.multiply(depth_m, np.float32(rules.scale), out=depth_m)
    if rules.invalid_class_ids or thresholded:
        depth_m[invalid_label_mask(labels, rules.invalid_class_ids)] = np.nan
    if rules.min_confidence > 0.0:
        depth_m[confidence < rules.min_confidence] = np.nan
    with np.errstate(invalid='ignore'):
        if rules.min_depth_m > 0.0:
            depth_m[depth_m < rules.min_depth_m] = np.nan
        if rules.max_depth_m > 0.0:
            depth_m[depth_m > rules.max_depth_m] = np.nan
    return prediction
