"""The inference engine (no ROS): camera images in, metric depth and class labels out."""
from .backend import BackendError
from .devices import device_problem, DeviceError, resolve_device
from .engine import InferenceEngine
from .images import decode_compressed, decode_raw, ImageFormatError, row_bytes, \
    SUPPORTED_ENCODINGS, to_rgb
from .prediction import Prediction
from .run_plan import BACKENDS, plan_problem, plan_run, PRECISIONS, RunPlan
from .visualize import colorize_depth, colorize_labels, overlay_labels

__all__ = [
    'BACKENDS', 'BackendError', 'DeviceError', 'ImageFormatError', 'InferenceEngine',
    'PRECISIONS', 'Prediction', 'RunPlan', 'SUPPORTED_ENCODINGS', 'colorize_depth',
    'colorize_labels', 'decode_compressed', 'decode_raw', 'device_problem', 'overlay_labels',
    'plan_problem', 'plan_run', 'resolve_device', 'row_bytes', 'to_rgb',
]
