"""PyTorch backend: batch norm folded, channels_last, inference mode; fp16/bf16 on GPUs.

On CUDA the uint8 frame is copied from pinned host memory without blocking and normalised on
the GPU; optionally each input shape is captured once as a CUDA graph (one launch per frame
instead of ~200 kernel launches) and/or compiled with ``torch.compile``.
"""
import logging
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..model.fusion import fold_batchnorm
from .backend import Backend, BackendError, RawOutputs
from .run_plan import precision_problem

LOGGER = logging.getLogger(__name__)
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
# Runs on a side stream before capturing a CUDA graph (lets cuDNN pick and allocate).
RUNS_BEFORE_CAPTURE = 3
MAX_CUDA_GRAPHS = 4
Shape = Tuple[int, int, int]


class NormalisedNetwork(nn.Module):
    """The network behind an on-device normalisation of (N, H, W, 3) uint8 RGB input.

    Computes ``(x / 255 - mean) / std`` as ``x * (1 / (255 std)) - mean / std`` in fp32, then
    casts to the network's dtype and hands it over in channels_last layout (no copy).
    """

    def __init__(self, network: nn.Module, mean: Sequence[float], std: Sequence[float],
                 dtype: torch.dtype) -> None:
        super().__init__()
        self.network = network
        self.dtype = dtype
        self.register_buffer('scale', torch.tensor([1.0 / (255.0 * s) for s in std]))
        self.register_buffer('offset', torch.tensor([m / s for m, s in zip(mean, std)]))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Return the normalised NCHW (channels_last) batch for uint8 NHWC ``images``."""
        normalised = images.float().mul_(self.scale).sub_(self.offset)
        return normalised.to(self.dtype).permute(0, 3, 1, 2)

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Normalise and run the network."""
        return self.network(self.normalise(images))


class _CapturedGraph:
    """One CUDA graph of the whole forward pass for one input shape, with static buffers."""

    def __init__(self, module: nn.Module, shape: Shape, device: torch.device) -> None:
        batch, height, width = shape
        self.input = torch.zeros((batch, height, width, 3), dtype=torch.uint8, device=device)
        side_stream = torch.cuda.Stream(device)
        side_stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side_stream):
            for _ in range(RUNS_BEFORE_CAPTURE):
                module(self.input)
        torch.cuda.current_stream(device).wait_stream(side_stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = module(self.input)

    def replay(self, device_input: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Run the graph on ``device_input``; return copies of the outputs (safe to keep)."""
        self.input.copy_(device_input, non_blocking=True)
        self.graph.replay()
        return {task: value.clone() for task, value in self.outputs.items()}


class TorchBackend(Backend):
    """Runs the network with PyTorch on the CPU or a CUDA GPU.

    ``compile_model`` applies ``torch.compile`` (slow first call, per shape). ``cuda_graphs``
    captures each input shape as a CUDA graph on first use (CUDA only).
    """

    name = 'torch'

    def __init__(self, model: nn.Module, device: torch.device, precision: str = 'fp32',
                 threads: Optional[int] = None, compile_model: bool = False,
                 cuda_graphs: bool = False) -> None:
        super().__init__(device, precision)
        problem = precision_problem(self.name, device, precision)
        if problem is not None:
            raise BackendError(problem)
        if cuda_graphs and device.type != 'cuda':
            raise BackendError('CUDA graphs need a CUDA device; leave them off on the CPU')
        if device.type == 'cpu' and threads:
            torch.set_num_threads(int(threads))
        if device.type == 'cuda':
            torch.backends.cudnn.benchmark = True  # Fixed camera sizes: pick the fastest kernels.
        self.config = model.config
        self.dtype = DTYPES[precision]
        self.outputs_on_device = device.type == 'cuda'
        self.compile_model = compile_model
        self.cuda_graphs = cuda_graphs
        network = fold_batchnorm(model).to(device=device, dtype=self.dtype)
        network = network.to(memory_format=torch.channels_last)
        self.module = NormalisedNetwork(network, self.config.mean, self.config.std,
                                        self.dtype).to(device).eval()
        self._call = self.module
        if compile_model:
            mode = 'max-autotune-no-cudagraphs' if device.type == 'cuda' else None
            self._call = torch.compile(self.module, mode=mode)
        self._graphs: Dict[Shape, _CapturedGraph] = {}
        self._pinned: Optional[torch.Tensor] = None
        self._upload_done: Optional[torch.cuda.Event] = None
        self.last_timings_ms: Dict[str, float] = {}

    def describe(self) -> str:
        """Return a one-line description for logs and diagnostics."""
        extras = [name for name, on in (('compiled', self.compile_model),
                                        ('CUDA graphs', self.cuda_graphs)) if on]
        threads = f', {torch.get_num_threads()} threads' if self.device.type == 'cpu' else ''
        return (f'torch {torch.__version__} on {self.device} ({self.precision}, channels_last'
                f'{threads}{"".join(", " + e for e in extras)})')

    def _upload(self, images: np.ndarray) -> torch.Tensor:
        """Return the uint8 batch on the device (via reused pinned memory on CUDA)."""
        host = torch.from_numpy(np.ascontiguousarray(images))
        if self.device.type != 'cuda':
            return host
        if self._pinned is None or self._pinned.shape != host.shape:
            self._pinned = torch.empty(host.shape, dtype=torch.uint8).pin_memory()
            self._upload_done = None
        if self._upload_done is not None:
            self._upload_done.synchronize()  # The previous copy may still read the buffer.
        self._pinned.copy_(host)
        device_images = self._pinned.to(self.device, non_blocking=True)
        self._upload_done = torch.cuda.Event()
        self._upload_done.record()
        return device_images

    def _graph(self, shape: Shape) -> _CapturedGraph:
        if shape not in self._graphs:
            if len(self._graphs) >= MAX_CUDA_GRAPHS:
                self._graphs.pop(next(iter(self._graphs)))
            LOGGER.info('capturing a CUDA graph for %dx%dx%d input (once)', *shape)
            with torch.inference_mode():
                self._graphs[shape] = _CapturedGraph(self._call, shape, self.device)
        return self._graphs[shape]

    def prepare(self, height: int, width: int, batch: int = 1) -> None:
        """Capture (CUDA graphs) or compile for this input shape before it is timed."""
        if self.cuda_graphs:
            self._graph((batch, height, width))
        elif self.compile_model:
            self.run(np.zeros((batch, height, width, 3), np.uint8))

    @torch.inference_mode()
    def run(self, images: np.ndarray, threads: Optional[int] = None) -> RawOutputs:
        """Run the network; outputs stay on the GPU, or come back as NumPy on the CPU.

        ``threads`` is ignored: torch's CPU thread pool is the process's.
        """
        device_images = self._upload(images)
        if self.cuda_graphs:
            return self._graph(tuple(images.shape[:3])).replay(device_images)
        if self.device.type == 'cuda':
            return self._call(device_images)
        started = time.perf_counter()
        if self.compile_model:
            outputs = self._call(device_images)
            normalised = started
        else:
            batch = self.module.normalise(device_images)
            normalised = time.perf_counter()
            outputs = self.module.network(batch)
        result = {task: value.float().contiguous().numpy() for task, value in outputs.items()}
        self.last_timings_ms = {'normalise': (normalised - started) * 1000.0,
                                'forward': (time.perf_counter() - normalised) * 1000.0}
        return result
