"""Static int8 quantization of the exported network with ONNX Runtime (CPU, reduced precision).

Weights are quantized per output channel (int8), activations per tensor (uint8) with ranges
calibrated on real pictures. The result runs the convolutions in integer arithmetic (VNNI/AMX
on recent x86 CPUs) and is NOT bit-exact: measure its agreement with fp32 (``hydranet-bench``
reports it) before using it.
"""
import logging
import os
import tempfile
from typing import Callable, Iterator, List, Optional, Sequence

import numpy as np

import cv2

from .default_model import ASSETS_DIR

LOGGER = logging.getLogger(__name__)
CALIBRATION_DIR = os.path.join(ASSETS_DIR, 'samples')
# Part of every int8 cache file name: change it whenever the recipe below changes.
QUANTIZATION_RECIPE = 'qdq-pc-minmax-v2'
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')


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


def _batches(views: Sequence[np.ndarray], batch: int,
             normalise: Callable[[np.ndarray], np.ndarray]) -> Iterator[np.ndarray]:
    """Yield normalised NCHW batches of ``batch`` views (cycling through the views)."""
    count = max(1, len(views) // batch)
    for index in range(count):
        chosen = [views[(index * batch + k) % len(views)] for k in range(batch)]
        yield normalise(np.stack(chosen))


def quantize_int8(fp32_path: str, int8_path: str, pictures: Optional[Sequence[np.ndarray]],
                  batch: int, height: int, width: int,
                  normalise: Callable[[np.ndarray], np.ndarray],
                  input_name: str = 'image') -> None:
    """Write a statically quantized copy of the fp32 ONNX model at ``int8_path`` (atomically).

    ``pictures`` (RGB uint8, any size; default: the bundled samples) calibrate the activation
    ranges; ``normalise`` turns an (N, H, W, 3) uint8 batch into the network's input.
    """
    try:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod,
                                              QuantFormat, QuantType, quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as error:
        raise QuantizationError('int8 needs onnxruntime with its quantization tools '
                                '(pip install onnxruntime onnx)') from error
    pictures = list(pictures) if pictures else bundled_calibration_pictures()
    if not pictures:
        raise QuantizationError(f'no calibration pictures: pass some or reinstall the package '
                                f'(expected sample images in {CALIBRATION_DIR})')
    views = calibration_views(pictures, height, width)

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = _batches(views, batch, normalise)

        def get_next(self):
            data = next(self._batches, None)
            return None if data is None else {input_name: data}

    directory = os.path.dirname(int8_path)
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        prepared = os.path.join(scratch, 'prepared.onnx')
        quantized = os.path.join(scratch, 'quantized.onnx')
        quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
        LOGGER.info('quantizing to int8 with %d calibration views at %dx%d (once)', len(views),
                    height, width)
        quantize_static(prepared, quantized, _Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True, calibrate_method=CalibrationMethod.MinMax)
        os.replace(quantized, int8_path)
