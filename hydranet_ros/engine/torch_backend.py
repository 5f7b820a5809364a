"""PyTorch backend: batch norm folded, channels_last, inference mode; fp16/bf16 on GPUs."""
import logging
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..model.fusion import fold_batchnorm
from .backend import Backend, BackendError, RawOutputs
from .preprocess import normalise_on_device

LOGGER = logging.getLogger(__name__)
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


class TorchBackend(Backend):
    """Runs the network with PyTorch on the CPU or a CUDA GPU."""

    name = 'torch'

    def __init__(self, model: nn.Module, device: torch.device, precision: str = 'fp32',
                 threads: Optional[int] = None, compile_model: bool = False) -> None:
        super().__init__(device, precision)
        if precision not in DTYPES:
            raise BackendError(f'precision {precision!r} is not supported by the torch backend; '
                               f'use one of {", ".join(DTYPES)}')
        if precision != 'fp32' and device.type != 'cuda':
            raise BackendError(f'precision {precision} needs a CUDA GPU; on the CPU use fp32 '
                               f'(or int8 with the onnxruntime backend)')
        if device.type == 'cpu' and threads:
            torch.set_num_threads(int(threads))
        self.config = model.config
        self.dtype = DTYPES[precision]
        self.outputs_on_device = device.type == 'cuda'
        prepared = fold_batchnorm(model).to(device=device, dtype=self.dtype)
        self.model = prepared.to(memory_format=torch.channels_last)
        if compile_model:
            self.model = torch.compile(self.model, mode='max-autotune-no-cudagraphs')
        self._pinned: Optional[torch.Tensor] = None

    def _upload(self, images: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(np.ascontiguousarray(images))
        if self.device.type != 'cuda':
            return host
        if self._pinned is None or self._pinned.shape != host.shape:
            self._pinned = torch.empty(host.shape, dtype=torch.uint8).pin_memory()
        self._pinned.copy_(host)
        return self._pinned.to(self.device, non_blocking=True)

    @torch.inference_mode()
    def run(self, images: np.ndarray) -> RawOutputs:
        """Run the network; outputs stay on the GPU, or come back as NumPy on the CPU."""
        batch = normalise_on_device(self._upload(images), self.config.mean, self.config.std,
                                    self.dtype)
        outputs = self.model(batch.contiguous(memory_format=torch.channels_last))
        if self.outputs_on_device:
            return outputs
        return {task: value.float().contiguous().numpy() for task, value in outputs.items()}
