"""What a class map says besides colours: class names, the unlabelled id, the model's name."""
import os

import numpy as np

from ..model import HydraNetConfig

UNLABELED_ID_MONO8 = 255
UNLABELED_ID_16UC1 = 65535


def unlabeled_id(labels_dtype: np.dtype) -> int:
    """Return the label value of unlabelled pixels for uint8 or uint16 label images."""
    return UNLABELED_ID_MONO8 if np.dtype(labels_dtype) == np.uint8 else UNLABELED_ID_16UC1


def class_name(config: HydraNetConfig, class_id: int) -> str:
    """Return the name of a class, or class_<id> when the model has no names."""
    if class_id < len(config.class_names):
        return config.class_names[class_id]
    return f'class_{class_id}'


def model_name(model_path: str) -> str:
    """Return a short name of the model for people: its file name, or the bundled default."""
    return os.path.basename(model_path) if model_path else 'bundled default model'
