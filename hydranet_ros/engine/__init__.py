"""The inference engine (no ROS): camera images in, metric depth and class labels out."""
from .backend import BackendError
from .devices import DeviceError, resolve_device
from .engine import BACKENDS, PRECISIONS, InferenceEngine
from .image_input import ImageFormatError, SUPPORTED_ENCODINGS, to_rgb
from .prediction import Prediction
from .visualize import colorize_depth, colorize_labels, overlay_labels

__all__ = [
    'BACKENDS', 'BackendError', 'DeviceError', 'ImageFormatError', 'InferenceEngine',
    'PRECISIONS', 'Prediction', 'SUPPORTED_ENCODINGS', 'colorize_depth', 'colorize_labels',
    'overlay_labels', 'resolve_device', 'to_rgb',
]
