"""How a model runs: device, backend, precision and network input size, decided in one place.

The node and every tool build their engine through :func:`plan_run`, so the same model with the
same options runs the same way everywhere. :func:`plan_problem` checks the options' spelling
and their combinations without hardware or a model (for parameter checks at configure time).

Rules:

* input size: an explicit size wins; otherwise a checkpoint that records the size it was
  trained at (``config.notes['image_size']``, as the bundled model does) runs at that size;
  otherwise each image runs at its own size;
* device: ``auto`` is the first CUDA GPU when there is one, except for the onnxruntime backend
  or int8, which run on the CPU only; ``cuda`` without a usable GPU falls back to the CPU when
  ``fallback_to_cpu`` is set (and a GPU-only precision then falls back to fp32);
* backend: ``auto`` is ONNX Runtime on the CPU when it is installed, else PyTorch;
* precision: ``auto`` is fp16 on a GPU and fp32 on the CPU; what each backend runs is in
  ``BACKEND_PRECISIONS``.
"""
import importlib.util
import logging
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch

from ..model import HydraNetConfig
from .backend import BackendError
from .devices import DeviceError, device_problem, is_cuda_spelling, resolve_device

LOGGER = logging.getLogger(__name__)
BACKENDS = ('auto', 'torch', 'onnxruntime')
PRECISIONS = ('auto', 'fp32', 'fp16', 'bf16')
# backend -> device type -> the precisions it runs there (int8 is opt-in, never chosen by auto).
BACKEND_PRECISIONS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    'torch': {'cpu': ('fp32',), 'cuda': ('fp32', 'fp16', 'bf16')},
    'onnxruntime': {'cpu': ('fp32', 'int8')},
}
KNOWN_PRECISIONS = PRECISIONS + ('int8',)
GPU_ONLY_PRECISIONS = ('fp16', 'bf16')
MIN_INPUT_SIDE_PX = 32
IMAGE_SIZE_NOTE = 'image_size'
REASON_ASKED = 'as asked'
REASON_TRAINING_SIZE = 'the training size recorded in the checkpoint'
REASON_EACH_IMAGE = 'each image at its own size'

InputSize = Optional[Tuple[int, int]]


@dataclass(frozen=True)
class RunPlan:
    """How an engine runs its model: device, backend, precision and network input size.

    ``input_size`` is (height, width), or None for each image at its own size;
    ``input_size_reason`` says why, for people.
    """

    device: torch.device
    backend: str
    precision: str
    input_size: InputSize
    input_size_reason: str

    def network_input_text(self) -> str:
        """Return one line for logs, e.g. 'network input 96x320 (the training size ...)'."""
        if self.input_size is None:
            return "network input at each image's size"
        height, width = self.input_size
        return f'network input {height}x{width} ({self.input_size_reason})'


def onnxruntime_installed() -> bool:
    """Return whether the onnxruntime package can be imported (without importing it)."""
    return importlib.util.find_spec('onnxruntime') is not None


def _normalised(name: Optional[str]) -> str:
    return (name or 'auto').strip().lower()


def _choices(names: Sequence[str]) -> str:
    return ', '.join(names)


def plan_problem(device: str = 'auto', backend: str = 'auto',
                 precision: str = 'auto') -> Optional[str]:
    """Return why these options cannot run together (with what to do), or None.

    Checks spellings and combinations that fail on any machine (the onnxruntime backend on a
    GPU, fp16 on the CPU, int8 with PyTorch, onnxruntime not installed); needs no model and
    touches no GPU.
    """
    problem = device_problem(device)
    if problem is not None:
        return problem
    backend, precision = _normalised(backend), _normalised(precision)
    if backend not in BACKENDS:
        return f'unknown backend {backend!r}; use one of {_choices(BACKENDS)}'
    if precision not in KNOWN_PRECISIONS:
        return f'unknown precision {precision!r}; use one of {_choices(PRECISIONS)}'
    on_gpu = is_cuda_spelling(device)
    on_cpu = device.strip().lower() == 'cpu'
    if backend == 'onnxruntime':
        if on_gpu:
            return (f'the onnxruntime backend runs on the CPU only, but device is {device!r}; '
                    f'use backend torch (or auto) on a GPU, or device cpu')
        if not onnxruntime_installed():
            return ('backend onnxruntime needs the onnxruntime package (pip install '
                    'onnxruntime), or use backend torch (or auto)')
        if precision not in ('auto',) + BACKEND_PRECISIONS['onnxruntime']['cpu']:
            return (f'precision {precision} is not available in the onnxruntime backend (it '
                    f'runs {_choices(BACKEND_PRECISIONS["onnxruntime"]["cpu"])}); use precision '
                    f'fp32, or backend torch on a GPU')
    if precision == 'int8':
        if backend == 'torch':
            return 'precision int8 needs the onnxruntime backend; with torch use fp32 (or fp16 ' \
                   'on a GPU)'
        if on_gpu:
            return (f'precision int8 runs on the CPU with the onnxruntime backend, but device is '
                    f'{device!r}; use device cpu, or fp16 on the GPU')
        if not onnxruntime_installed():
            return 'precision int8 needs the onnxruntime package (pip install onnxruntime)'
    if precision in GPU_ONLY_PRECISIONS and on_cpu:
        return (f'precision {precision} needs a CUDA GPU, but device is cpu; on the CPU use '
                f'precision fp32 (or auto)')
    return None


def precision_problem(backend: str, device: torch.device, precision: str) -> Optional[str]:
    """Return why ``backend`` cannot run ``precision`` on ``device`` (``BACKEND_PRECISIONS``)."""
    supported = BACKEND_PRECISIONS.get(backend, {})
    if device.type not in supported:
        places = ' or '.join(supported) or 'no device'
        return f'the {backend} backend runs on {places}, not on {device}'
    if precision in supported[device.type]:
        return None
    hint = ''
    if precision in GPU_ONLY_PRECISIONS and device.type == 'cpu':
        hint = f'; {precision} needs a CUDA GPU (on the CPU use fp32, or int8 with onnxruntime)'
    return (f'the {backend} backend runs {_choices(supported[device.type])} on {device.type}, '
            f'not {precision}{hint}')


def recorded_input_size(config: HydraNetConfig) -> InputSize:
    """Return the (height, width) the checkpoint says it was trained at, or None."""
    size = (config.notes or {}).get(IMAGE_SIZE_NOTE)
    if not size:
        return None
    try:
        height, width = (int(value) for value in size)
    except (TypeError, ValueError):
        LOGGER.warning('the checkpoint records image_size %r, which is not (height, width); '
                       'running each image at its own size', size)
        return None
    if min(height, width) < MIN_INPUT_SIDE_PX:
        LOGGER.warning('the checkpoint records image_size %dx%d, below %d px; running each '
                       'image at its own size', height, width, MIN_INPUT_SIDE_PX)
        return None
    return height, width


def choose_input_size(config: HydraNetConfig,
                      input_size: Optional[Sequence[int]]) -> Tuple[InputSize, str]:
    """Return the network input size and the reason for it (see the module's rules)."""
    if input_size is not None:
        height, width = (int(value) for value in input_size)
        if height < MIN_INPUT_SIDE_PX or width < MIN_INPUT_SIDE_PX:
            raise ValueError(f'input_size must be at least {MIN_INPUT_SIDE_PX}x'
                             f'{MIN_INPUT_SIDE_PX} pixels, got {tuple(input_size)}')
        return (height, width), REASON_ASKED
    recorded = recorded_input_size(config)
    if recorded is not None:
        return recorded, REASON_TRAINING_SIZE
    return None, REASON_EACH_IMAGE


def _choose_device(device: str, backend: str, precision: str,
                   fallback_to_cpu: bool) -> torch.device:
    cpu_only = backend == 'onnxruntime' or precision == 'int8'
    if cpu_only and _normalised(device) == 'auto':
        return torch.device('cpu')
    return resolve_device(device, fallback_to_cpu=fallback_to_cpu)


def _choose_backend(backend: str, precision: str, device: torch.device) -> str:
    if backend != 'auto':
        return backend
    if device.type == 'cpu' and precision in ('auto', 'fp32', 'int8') and \
            onnxruntime_installed():
        return 'onnxruntime'
    return 'torch'


def _choose_precision(precision: str, device: torch.device, device_text: str,
                      fallback_to_cpu: bool) -> str:
    if precision == 'auto':
        return 'fp16' if device.type == 'cuda' else 'fp32'
    if precision in GPU_ONLY_PRECISIONS and device.type == 'cpu':
        if not fallback_to_cpu:
            raise BackendError(f'precision {precision} needs a CUDA GPU, but device '
                               f'{device_text!r} runs on the CPU here (no usable GPU); use '
                               f'precision fp32 (or auto), or allow the CPU fallback')
        LOGGER.warning('precision %s needs a CUDA GPU; running fp32 on the CPU instead',
                       precision)
        return 'fp32'
    return precision


def plan_run(config: HydraNetConfig, device: str = 'auto', backend: str = 'auto',
             precision: str = 'auto', input_size: Optional[Sequence[int]] = None,
             fallback_to_cpu: bool = True) -> RunPlan:
    """Decide how a model with ``config`` runs with these options (see the module's rules).

    Raise ``DeviceError`` for a device that is unknown or missing (without fallback),
    ``BackendError`` for options that cannot run together, ``ValueError`` for an input size
    below 32x32.
    """
    problem = device_problem(device)
    if problem is not None:
        raise DeviceError(problem)
    problem = plan_problem(device, backend, precision)
    if problem is not None:
        raise BackendError(problem)
    size, reason = choose_input_size(config, input_size)
    backend, precision = _normalised(backend), _normalised(precision)
    chosen_device = _choose_device(device, backend, precision, fallback_to_cpu)
    chosen_precision = _choose_precision(precision, chosen_device, device, fallback_to_cpu)
    chosen_backend = _choose_backend(backend, chosen_precision, chosen_device)
    problem = precision_problem(chosen_backend, chosen_device, chosen_precision)
    if problem is not None:
        raise BackendError(problem)
    return RunPlan(chosen_device, chosen_backend, chosen_precision, size, reason)
