"""Numbers that describe one prediction in a tool's summary JSON: class shares and depth range."""
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..engine import Prediction

TOP_CLASSES = 5
UNLABELED_IDS = (255, 65535)


def class_name(class_id: int, class_names: Sequence[str]) -> str:
    """Return the name of a class id (``class_<id>`` without names, ``unlabelled`` for 255)."""
    if class_id < len(class_names):
        return class_names[class_id]
    if class_id in UNLABELED_IDS:
        return 'unlabelled'
    return f'class_{class_id}'


def class_histogram(labels: np.ndarray, class_names: Sequence[str],
                    top: int = TOP_CLASSES) -> List[Dict]:
    """Return the ``top`` most frequent classes: id, name, pixel count and share of the image."""
    counts = np.bincount(labels.ravel())
    order = np.argsort(-counts, kind='stable')[:top]
    total = float(labels.size)
    return [{'id': int(class_id), 'name': class_name(int(class_id), class_names),
             'pixels': int(counts[class_id]), 'fraction': round(counts[class_id] / total, 6)}
            for class_id in order if counts[class_id] > 0]


def depth_statistics(depth_m: np.ndarray) -> Dict[str, Optional[float]]:
    """Return min, median and max of the valid (finite) depths in metres and their share."""
    valid = depth_m[np.isfinite(depth_m)]
    share = round(valid.size / max(depth_m.size, 1), 6)
    if valid.size == 0:
        return {'min_m': None, 'median_m': None, 'max_m': None, 'valid_fraction': share}
    return {'min_m': round(float(valid.min()), 4), 'median_m': round(float(np.median(valid)), 4),
            'max_m': round(float(valid.max()), 4), 'valid_fraction': share}


def summarize_prediction(prediction: Prediction, class_names: Sequence[str]) -> Dict:
    """Return the JSON-ready description of one prediction."""
    height, width = prediction.depth.shape
    return {
        'width': int(width),
        'height': int(height),
        'timings_ms': {key: round(value, 3) for key, value in prediction.timings_ms.items()},
        'classes_top5': class_histogram(prediction.labels, class_names),
        'depth_m': depth_statistics(prediction.depth),
    }
