"""Static int8 quantization of the exported network with ONNX Runtime (CPU, reduced precision).

Weights are quantized per output channel (int8), activations per tensor (uint8) with ranges
calibrated on real pictures. The result runs the convolutions in integer arithmetic (VNNI/AMX
on recent x86 CPUs) and is NOT bit-exact: measure its agreement with fp32 (``hydranet-bench``
reports it) before using it.

Calibration runs once per model: one picture at a time (memory of one forward pass) at the
input size capped to ``MAX_CALIBRATION_PIXELS``; the activation ranges are kept in a JSON file
and applied to the export of every other input shape (tensor names do not depend on it).
"""
import logging
import math
import os
import tempfile
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

import cv2

from .default_model import ASSETS_DIR

LOGGER = logging.getLogger(__name__)
CALIBRATION_DIR = os.path.join(ASSETS_DIR, 'samples')
# Part of every int8 cache file name: change it whenever the recipe below changes.
QUANTIZATION_RECIPE = 'qdq-pc-minmax-v3'
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
MAX_CALIBRATION_PIXELS = 480 * 640
MIN_CALIBRATION_SIDE_PX = 32


class QuantizationError(RuntimeError):
    """The int8 model cannot be produced (missing package, unusable calibration data)."""


def bundled_calibration_pictures() -> List[np.ndarray]:
    """Return the sample pictures shipped with the package as RGB uint8 arrays."""
    pictures = []
    if os.path.isdir(CALIBRATION_DIR):
        for name in sorted(os.listdir(CALIBRATION_DIR)):
            if name.lower().endswith(IMAGE_SUFFIXES):
                image = cv2.imread(os.path.join(CALIBRATION_DIR, name), cv2.IMREAD_COLOR)
                if image is not None:
                    pictures.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return pictures


def calibration_size(height: int, width: int) -> Tuple[int, int]:
    """Return the input size to calibrate at: (height, width) scaled down to at most 640x480."""
    scale = min(1.0, math.sqrt(MAX_CALIBRATION_PIXELS / float(height * width)))
    return (max(MIN_CALIBRATION_SIDE_PX, int(round(height * scale))),
            max(MIN_CALIBRATION_SIDE_PX, int(round(width * scale))))


def _center_crop(image: np.ndarray, aspect: float, fraction: float) -> np.ndarray:
    """Return the centred crop of ``image`` with ``aspect`` (w/h) covering ``fraction`` of it."""
    height, width = image.shape[:2]
    crop_h = min(height, int(round(width / aspect))) * fraction
    crop_w = crop_h * aspect
    top = int((height - crop_h) / 2)
    left = int((width - crop_w) / 2)
    return image[top:top + int(crop_h), left:left + int(crop_w)]


def calibration_views(pictures: Sequence[np.ndarray], height: int, width: int) -> List[np.ndarray]:
    """Return views of each picture at (height, width): whole, mirrored and two centred crops."""
    views = []
    for picture in pictures:
        for fraction in (None, 1.0, 0.6):
            source = picture if fraction is None else _center_crop(picture, width / height,
                                                                   fraction)
            view = cv2.resize(source, (width, height), interpolation=cv2.INTER_AREA)
            views.append(view)
            if fraction is None:
                views.append(np.ascontiguousarray(view[:, ::-1]))
    return views


def _quantization_tools():
    try:
        from onnxruntime import quantization
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as error:
        raise QuantizationError('int8 needs onnxruntime with its quantization tools '
                                '(pip install onnxruntime onnx)') from error
    return quantization, quant_pre_process


def _quantize(source_path: str, int8_path: str, ranges_path: str, reader=None,
              extra_options: Optional[dict] = None) -> None:
    """Quantize ``source_path`` with the recipe; calibrate into ``ranges_path`` if a reader."""
    quantization, quant_pre_process = _quantization_tools()
    with tempfile.TemporaryDirectory(dir=os.path.dirname(int8_path)) as scratch:
        prepared = os.path.join(scratch, 'prepared.onnx')
        quantized = os.path.join(scratch, 'quantized.onnx')
        quant_pre_process(source_path, prepared, skip_symbolic_shape=True)
        quantization.quantize_static(
            prepared, quantized, reader, quant_format=quantization.QuantFormat.QDQ,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8, per_channel=True,
            calibrate_method=quantization.CalibrationMethod.MinMax,
            calibration_cache_path=ranges_path, extra_options=extra_options or {})
        os.replace(quantized, int8_path)


def calibrate(source_path: str, ranges_path: str, pictures: Optional[Sequence[np.ndarray]],
              height: int, width: int, normalise: Callable[[np.ndarray], np.ndarray],
              input_name: str = 'image') -> None:
    """Measure activation ranges of the batch-1 fp32 model at ``source_path`` into a JSON file.

    ``pictures`` (RGB uint8, any size; default: the bundled samples) are shown one view at a
    time; ``normalise`` turns an (N, H, W, 3) uint8 batch into the network's input.
    """
    quantization, _ = _quantization_tools()
    pictures = list(pictures) if pictures else bundled_calibration_pictures()
    if not pictures:
        raise QuantizationError(f'no calibration pictures: pass some or reinstall the package '
                                f'(expected sample images in {CALIBRATION_DIR})')
    views = calibration_views(pictures, height, width)

    class _Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.set_range(0, len(views))

        def __len__(self) -> int:
            return len(views)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._views = iter(views[start_index:end_index])

        def get_next(self):
            view = next(self._views, None)
            return None if view is None else {input_name: normalise(view[None])}

    LOGGER.info('calibrating int8 ranges on %d views at %dx%d (once per model)', len(views),
                height, width)
    directory = os.path.dirname(ranges_path)
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        ranges = os.path.join(scratch, 'ranges.json')
        # One view per stride: ranges are merged view by view, so memory stays at one pass.
        _quantize(source_path, os.path.join(scratch, 'calibrated.onnx'), ranges, _Reader(),
                  {'CalibStridedMinMax': 1})
        os.replace(ranges, ranges_path)


def quantize_int8(fp32_path: str, int8_path: str, ranges_path: str) -> None:
    """Write the int8 copy of the fp32 model at ``fp32_path`` with calibrated ranges, atomically.

    Raise ``QuantizationError`` when the ranges file is unreadable or does not fit the model.
    """
    os.makedirs(os.path.dirname(int8_path), exist_ok=True)
    try:
        _quantize(fp32_path, int8_path, ranges_path)
    except (ValueError, KeyError, TypeError) as error:
        raise QuantizationError(f'int8 ranges {ranges_path} do not fit the model: '
                                f'{error}') from error
