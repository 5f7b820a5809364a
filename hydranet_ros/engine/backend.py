"""The interface every inference backend implements."""
from typing import Dict, Optional, Union

import numpy as np
import torch

RawOutputs = Dict[str, Union[np.ndarray, torch.Tensor]]


class BackendError(RuntimeError):
    """A backend cannot be created or run with the requested options."""


class Backend:
    """Runs the network on a batch of RGB uint8 images and returns raw stride-4 outputs.

    ``outputs_on_device`` tells whether :meth:`run` returns torch tensors on ``device`` (to be
    post-processed there) or NumPy arrays on the host.
    """

    name = 'base'
    outputs_on_device = False

    def __init__(self, device: torch.device, precision: str) -> None:
        self.device = device
        self.precision = precision

    def prepare(self, height: int, width: int) -> None:
        """Do one-time work for this input size (export, compile) before it is timed."""

    def run(self, images: np.ndarray, threads: Optional[int] = None) -> RawOutputs:
        """Run the network on an (N, H, W, 3) uint8 RGB batch.

        ``threads`` bounds the CPU threads of this call where the backend can (None: its own).
        """
        raise NotImplementedError

    @property
    def cpu_threads(self) -> int:
        """Return how many CPU threads the network's computation uses."""
        return torch.get_num_threads()

    def describe(self) -> str:
        """Return a one-line description for logs and diagnostics."""
        return f'{self.name} on {self.device} ({self.precision})'
