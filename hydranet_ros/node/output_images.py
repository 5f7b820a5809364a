"""Output arrays from an engine prediction: depth range, confidence threshold, encodings."""
import numpy as np

CONFIDENCE_MONO8_SCALE = 255.0


def limit_depth_range(depth_m: np.ndarray, min_depth_m: float, max_depth_m: float) -> np.ndarray:
    """Set depths outside [min_depth_m, max_depth_m] to NaN in place (0 leaves a side open)."""
    with np.errstate(invalid='ignore'):
        if min_depth_m > 0.0:
            depth_m[depth_m < min_depth_m] = np.nan
        if max_depth_m > 0.0:
            depth_m[depth_m > max_depth_m] = np.nan
    return depth_m


def apply_confidence_threshold(labels: np.ndarray, confidence: np.ndarray, threshold: float,
                               unlabeled: int) -> np.ndarray:
    """Mark pixels whose confidence is below ``threshold`` as ``unlabeled``, in place."""
    if threshold > 0.0:
        labels[confidence < threshold] = unlabeled
    return labels


def labels_encoding(labels: np.ndarray) -> str:
    """Return mono8 for uint8 label images and 16UC1 for uint16 ones."""
    return 'mono8' if labels.dtype == np.uint8 else '16UC1'


def confidence_pixels(confidence: np.ndarray, encoding: str) -> np.ndarray:
    """Return confidence (0..1 float32) as 32FC1 or as mono8 scaled to 0..255."""
    if encoding == '32FC1':
        return confidence
    scaled = np.clip(confidence, 0.0, 1.0) * np.float32(CONFIDENCE_MONO8_SCALE)
    return np.rint(scaled).astype(np.uint8)


def effective_depth_range(model_min_m: float, model_max_m: float, min_override_m: float,
                          max_override_m: float) -> tuple:
    """Return the published depth range: the model's, narrowed by non-zero overrides."""
    low = max(model_min_m, min_override_m) if min_override_m > 0.0 else model_min_m
    high = min(model_max_m, max_override_m) if max_override_m > 0.0 else model_max_m
    return low, high
