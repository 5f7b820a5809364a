"""Choosing the compute device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
import logging
import re
from typing import Optional

import torch

LOGGER = logging.getLogger(__name__)
DEVICE_SPELLING = re.compile(r'auto|cpu|cuda(?::(\d+))?')


class DeviceError(ValueError):
    """The requested device does not exist or is unavailable."""


def device_problem(text: str) -> Optional[str]:
    """Return why ``text`` is not a device spelling (auto, cpu, cuda, cuda:N), or None.

    Case and surrounding spaces are ignored. Only the spelling is checked, not the hardware.
    """
    if not isinstance(text, str):
        return f'device must be a string such as auto, cpu, cuda or cuda:0, got {text!r}'
    if not DEVICE_SPELLING.fullmatch(text.strip().lower()):
        return f'unknown device {text!r}; use auto, cpu, cuda or cuda:N (e.g. cuda:0)'
    return None


def is_cuda_spelling(text: str) -> bool:
    """Return whether a valid device spelling names a CUDA GPU (cuda or cuda:N)."""
    return text.strip().lower().startswith('cuda')


def resolve_device(requested: Optional[str] = 'auto',
                   fallback_to_cpu: bool = False) -> torch.device:
    """Return the torch device for ``requested`` (None means auto).

    ``auto`` picks the first CUDA GPU when one is usable and otherwise the CPU, logging why.
    ``cuda``/``cuda:N`` without CUDA raise ``DeviceError`` unless ``fallback_to_cpu`` is set.
    """
    requested = 'auto' if requested is None else requested
    problem = device_problem(requested)
    if problem is not None:
        raise DeviceError(problem)
    requested = requested.strip().lower()
    if requested == 'cpu':
        return torch.device('cpu')
    if requested == 'auto':
        if torch.cuda.is_available():
            return torch.device('cuda:0')
        LOGGER.info('device auto: no CUDA GPU is available (torch %s, CUDA build: %s); '
                    'using the CPU', torch.__version__, torch.version.cuda or 'no')
        return torch.device('cpu')
    index = int(DEVICE_SPELLING.fullmatch(requested)[1] or 0)
    problem = None
    if not torch.cuda.is_available():
        problem = (f'CUDA is not available (torch {torch.__version__} is '
                   f'{"a CUDA build" if torch.version.cuda else "a CPU-only build"}; '
                   f'see the README section on GPUs)')
    elif index >= torch.cuda.device_count():
        problem = f'cuda:{index} does not exist ({torch.cuda.device_count()} GPU(s) visible)'
    if problem is None:
        return torch.device(f'cuda:{index}')
    if fallback_to_cpu:
        LOGGER.warning('device %s requested but %s: falling back to the CPU', requested, problem)
        return torch.device('cpu')
    raise DeviceError(f'device {requested!r} requested but {problem}')
