"""Choosing the compute device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``."""
import logging
import re

import torch

LOGGER = logging.getLogger(__name__)


class DeviceError(ValueError):
    """The requested device does not exist or is unavailable."""


def resolve_device(requested: str = 'auto', fallback_to_cpu: bool = False) -> torch.device:
    """Return the torch device for ``requested``.

    ``auto`` picks the first CUDA GPU when one is usable and otherwise the CPU, logging why.
    ``cuda``/``cuda:N`` without CUDA raise ``DeviceError`` unless ``fallback_to_cpu`` is set.
    """
    requested = (requested or 'auto').strip().lower()
    if requested == 'cpu':
        return torch.device('cpu')
    if requested == 'auto':
        if torch.cuda.is_available():
            return torch.device('cuda:0')
        LOGGER.info('device auto: no CUDA GPU is available (torch %s, CUDA build: %s); '
                    'using the CPU', torch.__version__, torch.version.cuda or 'no')
        return torch.device('cpu')
    match = re.fullmatch(r'cuda(?::(\d+))?', requested)
    if not match:
        raise DeviceError(f'unknown device {requested!r}; use auto, cpu, cuda or cuda:N')
    index = int(match[1] or 0)
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
