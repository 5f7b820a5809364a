"""ONNX Runtime backend for the CPU: the network exported once per input shape and cached.

Each (batch, height, width) gets its own export with static shapes: ONNX Runtime then knows
every tensor size and folds the shape arithmetic of the decoder's upsampling. Rewrites that
keep the outputs suit ONNX Runtime's blocked (NCHWc) CPU kernels: one 5x5 max-pool instead of
the separable pair, an identity convolution before each standalone ReLU6 so that the whole
graph stays blocked, and the one-channel depth head split into a depthwise and a 1x1
convolution (``python -m dev.bench.ablation`` shows what each gains). The fp32 graph takes the
uint8 frame and normalises it itself (identical values, one Python pass less).

Files are keyed by a hash of the weights, the shape and the precision, so a changed model or
size never reuses a stale file, and a corrupt file is re-created. ``fp32`` is exact (within
1e-5 of eager PyTorch); ``int8`` is statically quantized (see :mod:`.quantization`) and must be
validated with ``hydranet-bench`` before use.
"""
import copy
import hashlib
import logging
import os
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..model.blocks import ChainedResidualPool
from .backend import Backend, BackendError, RawOutputs
from .preprocess import normalise_nchw
from .run_plan import precision_problem

LOGGER = logging.getLogger(__name__)
ONNX_OPSET = 17
# Part of every cache file name: change it whenever the export or its graph rewrite changes.
EXPORT_VERSION = 5
POOL_KERNEL = 5
# Integer GEMMs are inefficient for very few output channels: narrower heads are widened.
MIN_INT8_HEAD_CHANNELS = 16
CACHE_ENV = 'HYDRANET_CACHE_DIR'
MAX_CACHED_SESSIONS = 8
DYNAMIC_BLOCK_BASE = 4
INPUT_NAME = 'image'
UINT8_TENSOR = 'tensor(uint8)'
Shape = Tuple[int, int, int]
SessionKey = Tuple[int, int, int, int]  # batch, height, width, threads
# What ONNX Runtime raises for a file it cannot load (a truncated or foreign cache file).
_LOAD_ERROR_NAMES = ('Fail', 'InvalidArgument', 'InvalidGraph', 'InvalidProtobuf', 'NoSuchFile',
                     'RuntimeException')


def default_cache_dir() -> str:
    """Return ``$HYDRANET_CACHE_DIR`` or ``$XDG_CACHE_HOME/hydranet_ros`` (``~/.cache``)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'hydranet_ros')


def weights_fingerprint(model: nn.Module) -> str:
    """Return a short hash of the model's weights and architecture (the cache key)."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def pictures_fingerprint(pictures: Sequence[np.ndarray]) -> str:
    """Return a short hash of calibration pictures (part of the int8 cache key)."""
    digest = hashlib.sha256()
    for picture in pictures:
        digest.update(str(picture.shape).encode())
        digest.update(np.ascontiguousarray(picture).tobytes())
    return digest.hexdigest()[:8]


def isolate_clips(graph_model):
    """Give each Clip that does not follow a Conv an identity depthwise 1x1 Conv before it.

    ONNX Runtime keeps convolutions, pools, additions and upsampling in its blocked NCHWc
    layout, but not a standalone Clip (the decoder's ReLU6 after a sum): each one sends the
    decoder back to NCHW, and every CRP stage then pays two layout conversions. ONNX Runtime
    fuses a Conv followed by a Clip, so the identity Conv (weight 1, bias 0: exact) keeps the
    whole graph blocked. Returns the number of Clips changed; ``graph_model`` needs shapes.
    """
    from onnx import helper, numpy_helper
    graph = graph_model.graph
    channels = {value.name: value.type.tensor_type.shape.dim[1].dim_value
                for value in list(graph.value_info) + list(graph.input)
                if len(value.type.tensor_type.shape.dim) == 4}
    producers = {output: node for node in graph.node for output in node.output}
    nodes, changed = [], 0
    for node in graph.node:
        if node.op_type != 'Clip':
            nodes.append(node)
            continue
        source = producers.get(node.input[0])
        count = channels.get(node.input[0], 0)
        if (source is None or source.op_type != 'Conv') and count:
            weight = numpy_helper.from_array(np.ones((count, 1, 1, 1), np.float32),
                                             f'{node.name}_identity_weight')
            bias = numpy_helper.from_array(np.zeros(count, np.float32),
                                           f'{node.name}_identity_bias')
            graph.initializer.extend([weight, bias])
            bridged = f'{node.input[0]}_identity'
            nodes.append(helper.make_node('Conv', [node.input[0], weight.name, bias.name],
                                          [bridged], name=f'{node.name}_identity',
                                          group=count, kernel_shape=[1, 1]))
            node.input[0] = bridged
            changed += 1
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return changed


def with_square_pools(model: nn.Module) -> nn.Module:
    """Return a copy of ``model`` whose chained residual pools use one 5x5 max-pool.

    Bit-identical to the separable 1x5 + 5x1 pools, which suit PyTorch; ONNX Runtime's blocked
    max-pool kernel does the 5x5 window in one pass, over twice as fast as two passes.
    """
    square = copy.deepcopy(model).eval()
    for module in square.modules():
        if isinstance(module, ChainedResidualPool):
            module.pool = nn.MaxPool2d(POOL_KERNEL, stride=1, padding=POOL_KERNEL // 2)
    return square


class WidenedConv(nn.Module):
    """A convolution computed with its filters repeated, keeping the original channels.

    Same outputs; an integer GEMM with 16 output rows is much faster than one with a single row.
    """

    def __init__(self, conv: nn.Conv2d, channels: int) -> None:
        super().__init__()
        repeats = -(-channels // conv.out_channels)
        self.out_channels = conv.out_channels
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels * repeats, conv.kernel_size,
                              stride=conv.stride, padding=conv.padding, bias=conv.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight.repeat(repeats, 1, 1, 1))
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias.repeat(repeats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the original output channels."""
        return self.conv(x)[:, :self.out_channels]


class SplitConv(nn.Module):
    """A KxK convolution with one output channel as a depthwise KxK then a 1x1 channel sum.

    Same result up to float rounding with 1/16 of the multiply-adds in a blocked layout, which
    pads the single output channel to 16.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        channels = conv.in_channels
        self.spatial = nn.Conv2d(channels, channels, conv.kernel_size, stride=conv.stride,
                                 padding=conv.padding, groups=channels, bias=False)
        self.total = nn.Conv2d(channels, 1, 1, bias=conv.bias is not None)
        with torch.no_grad():
            self.spatial.weight.copy_(conv.weight[0][:, None])
            self.total.weight.fill_(1.0)
            if conv.bias is not None:
                self.total.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Filter each channel, then add the channels up."""
        return self.total(self.spatial(x))


def with_split_heads(model: nn.Module) -> nn.Module:
    """Return a copy of ``model`` whose single-channel head convolutions (depth) are split."""
    split = copy.deepcopy(model).eval()
    for head in split.heads.values():
        if head.out.out_channels == 1 and head.out.groups == 1:
            head.out = SplitConv(head.out)
    return split


def with_wide_heads(model: nn.Module, channels: int = MIN_INT8_HEAD_CHANNELS) -> nn.Module:
    """Return a copy of ``model`` whose narrow head convolutions (depth, normals) are widened."""
    wide = copy.deepcopy(model).eval()
    for head in wide.heads.values():
        if head.out.out_channels < channels:
            head.out = WidenedConv(head.out, channels)
    return wide


class Uint8Input(nn.Module):
    """The network behind its input normalisation, for (N, H, W, 3) uint8 RGB input.

    Computes ``(x - 255 mean) * (1 / (255 std))`` in float32 exactly as
    :func:`.preprocess.normalise_nchw` does (identical outputs), inside the graph.
    """

    def __init__(self, network: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.network = network
        self.register_buffer('offset', torch.tensor([255.0 * m for m in mean]).view(1, 3, 1, 1))
        self.register_buffer('scale',
                             torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Normalise and run the network."""
        return self.network((images.permute(0, 3, 1, 2).float() - self.offset) * self.scale)


def export_onnx(model: nn.Module, path: str, batch: int, height: int, width: int,
                blocked_clips: bool = True, square_pools: bool = True,
                wide_heads: bool = False, split_heads: bool = True,
                uint8_input: bool = False) -> None:
    """Export ``model`` for a fixed (batch, 3, height, width) input; write atomically.

    ``blocked_clips`` applies :func:`isolate_clips` (same outputs within float rounding);
    ``square_pools``, ``wide_heads`` and ``split_heads`` export :func:`with_square_pools`,
    :func:`with_wide_heads` (both identical outputs) and :func:`with_split_heads` (rounding).
    ``uint8_input`` makes the input a (batch, height, width, 3) uint8 RGB batch normalised in
    the graph (:class:`Uint8Input`).
    """
    import onnx
    config = model.config
    if square_pools:
        model = with_square_pools(model)
    if wide_heads:
        model = with_wide_heads(model)
    if split_heads:
        model = with_split_heads(model)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    example = torch.zeros(batch, 3, height, width)
    if uint8_input:
        model = Uint8Input(model, config.mean, config.std).eval()
        example = torch.zeros(batch, height, width, 3, dtype=torch.uint8)
    with torch.no_grad():
        output_names = list(model(example).keys())
    handle, partial = tempfile.mkstemp(suffix='.onnx', dir=directory)
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.no_grad():  # no_grad: 6x less memory at 720p.
            warnings.simplefilter('ignore')
            torch.onnx.export(model, (example,), partial, dynamo=False,
                              opset_version=ONNX_OPSET, input_names=[INPUT_NAME],
                              output_names=output_names)
        if blocked_clips:
            graph_model = onnx.shape_inference.infer_shapes(onnx.load(partial))
            if isolate_clips(graph_model):
                onnx.save(graph_model, partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


class OnnxRuntimeBackend(Backend):
    """Runs the exported network with ONNX Runtime's CPU execution provider.

    ``threads`` sets the intra-op thread pool (default: all cores). ``spin_wait`` lets idle
    pool threads busy-wait for the next operator: slightly lower latency on an otherwise idle
    machine, but on a small robot computer the spinning threads take CPU time from the
    post-processing and from other nodes, so it is off by default. ``calibration_pictures``
    (RGB uint8) calibrate ``int8``; default: the sample pictures shipped with the package.

    With ``split_batches`` (default) a batch of at least two frames (several cameras) runs as
    one sub-batch per thread, each in a single-threaded session, all at once: single-threaded
    runs never wait for each other at an operator's end, which is faster than one batch over
    the pool, most of all while other work shares the cores (``python -m dev.bench.cameras``).
    Sessions of one shape share the same file; results are those of one batch.
    """

    name = 'onnxruntime'

    def __init__(self, model: nn.Module, device: torch.device, precision: str = 'fp32',
                 threads: Optional[int] = None, cache_dir: Optional[str] = None,
                 spin_wait: bool = False,
                 calibration_pictures: Optional[Sequence[np.ndarray]] = None,
                 split_batches: bool = True) -> None:
        super().__init__(device, precision)
        try:
            import onnxruntime
        except ImportError as error:
            raise BackendError('the onnxruntime backend needs the onnxruntime package '
                               '(pip install onnxruntime)') from error
        problem = precision_problem(self.name, device, precision)
        if problem is not None:
            raise BackendError(f'{problem} (use the torch backend on a GPU)'
                               if device.type != 'cpu' else problem)
        self._ort = onnxruntime
        state = onnxruntime.capi.onnxruntime_pybind11_state
        self._load_errors = (OSError, RuntimeError) + tuple(
            getattr(state, name) for name in _LOAD_ERROR_NAMES if hasattr(state, name))
        self.model = model.eval()
        self.config = model.config
        self.threads = int(threads) if threads else (os.cpu_count() or 1)
        self.spin_wait = bool(spin_wait)
        self.split_batches = bool(split_batches)
        self._runners: Optional[ThreadPoolExecutor] = None
        self.cache_dir = os.path.join(cache_dir or default_cache_dir(), 'onnx')
        self.fingerprint = weights_fingerprint(model)
        self.calibration_pictures = list(calibration_pictures or [])
        self._sessions: Dict[SessionKey, object] = {}
        self._sessions_lock = threading.RLock()  # runs from several threads share the cache
        self.last_timings_ms: Dict[str, float] = {}

    def describe(self) -> str:
        """Return a one-line description for logs and diagnostics."""
        split = ', batches split across threads' if self.split_batches and self.threads > 1 \
            else ''
        return (f'onnxruntime {self._ort.__version__} on cpu ({self.precision}, '
                f'{self.threads} threads, spinning {"on" if self.spin_wait else "off"}{split})')

    def model_path(self, batch: int, height: int, width: int,
                   precision: Optional[str] = None) -> str:
        """Return the cache path of the exported network for one input shape and precision."""
        precision = precision or self.precision
        stem = (f'hydranet_{self.fingerprint}_{batch}x{height}x{width}_op{ONNX_OPSET}'
                f'v{EXPORT_VERSION}')
        if precision == 'int8':
            from .quantization import QUANTIZATION_RECIPE
            calibration = (pictures_fingerprint(self.calibration_pictures)
                           if self.calibration_pictures else 'bundled')
            stem += f'_int8_{QUANTIZATION_RECIPE}_{calibration}'
        return os.path.join(self.cache_dir, stem + '.onnx')

    def ranges_path(self, height: int, width: int) -> str:
        """Return the cache path of the int8 activation ranges used for this input size."""
        from .quantization import QUANTIZATION_RECIPE, calibration_size
        calibration_height, calibration_width = calibration_size(height, width)
        calibration = (pictures_fingerprint(self.calibration_pictures)
                       if self.calibration_pictures else 'bundled')
        return os.path.join(self.cache_dir,
                            f'hydranet_{self.fingerprint}_int8-ranges_{QUANTIZATION_RECIPE}_'
                            f'{calibration}_{calibration_height}x{calibration_width}.json')

    def _normalise(self, images: np.ndarray) -> np.ndarray:
        return normalise_nchw(images, self.config.mean, self.config.std)

    def _create_file(self, path: str, shape: Shape, precision: str) -> None:
        """Export (fp32) or quantize (int8) the network for ``shape`` into ``path``."""
        batch, height, width = shape
        if precision == 'fp32':
            LOGGER.info('exporting the network to ONNX for %dx%dx%d input (once): %s', batch,
                        height, width, path)
            export_onnx(self.model, path, batch, height, width, uint8_input=True)
            return
        from .quantization import QuantizationError, quantize_int8
        os.makedirs(self.cache_dir, exist_ok=True)
        ranges = self.ranges_path(height, width)
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as scratch:
            # Integer convolutions do not use the blocked layout: quantize the plain graph.
            plain = os.path.join(scratch, 'plain.onnx')
            export_onnx(self.model, plain, batch, height, width, blocked_clips=False,
                        wide_heads=True, split_heads=False)
            try:
                if not os.path.exists(ranges):
                    self._calibrate(ranges, height, width, scratch)
                try:
                    quantize_int8(plain, path, ranges)
                except QuantizationError as error:  # A corrupt ranges file: calibrate again.
                    LOGGER.warning('%s; calibrating again', error)
                    os.remove(ranges)
                    self._calibrate(ranges, height, width, scratch)
                    quantize_int8(plain, path, ranges)
            except QuantizationError as error:
                raise BackendError(str(error)) from error

    def _calibrate(self, ranges: str, height: int, width: int, scratch: str) -> None:
        """Measure the int8 activation ranges on a batch-1 export at the calibration size."""
        from .quantization import calibrate, calibration_size
        calibration_height, calibration_width = calibration_size(height, width)
        source = os.path.join(scratch, 'calibration.onnx')
        export_onnx(self.model, source, 1, calibration_height, calibration_width,
                    blocked_clips=False, wide_heads=True, split_heads=False)
        calibrate(source, ranges, self.calibration_pictures, calibration_height,
                  calibration_width, self._normalise, INPUT_NAME)

    def _open(self, path: str, threads: int):
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = self._ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry('session.intra_op.allow_spinning',
                                         '1' if self.spin_wait else '0')
        # Hand out work in shrinking blocks: a thread slowed by other work on its core takes
        # fewer of them (same results; 4-6% faster here, idle or beside a camera stream).
        options.add_session_config_entry('session.dynamic_block_base',
                                         str(DYNAMIC_BLOCK_BASE))
        return self._ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])

    def session(self, batch: int, height: int, width: int, threads: Optional[int] = None):
        """Return the session for this input shape and pool size, creating its file on first use.

        ``threads`` defaults to the backend's ``threads``.
        """
        key = (batch, height, width, threads or self.threads)
        with self._sessions_lock:
            if key not in self._sessions:
                self._open_session(key)
            return self._sessions[key]

    def _open_session(self, key: SessionKey) -> None:
        batch, height, width, threads = key
        path = self.model_path(batch, height, width)
        if not os.path.exists(path):
            self._create_file(path, (batch, height, width), self.precision)
        try:
            session = self._open(path, threads)
        except self._load_errors as error:
            LOGGER.warning('cached ONNX model %s is unusable (%s); creating it again', path,
                           error)
            os.remove(path)
            self._create_file(path, (batch, height, width), self.precision)
            session = self._open(path, threads)
        if len(self._sessions) >= MAX_CACHED_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        self._sessions[key] = session

    def sub_batches(self, batch: int, threads: Optional[int] = None) -> List[int]:
        """Return the sizes of the single-threaded sub-batches a batch runs as ([batch]: one)."""
        parts = min(threads or self.threads, batch) if self.split_batches else 1
        if parts <= 1:
            return [batch]
        return [len(part) for part in np.array_split(np.arange(batch), parts)]

    def prepare(self, height: int, width: int, batch: int = 1) -> None:
        """Export (and quantize) the network for this input shape and open its sessions."""
        sizes = self.sub_batches(batch)
        for size in sorted(set(sizes)):
            self.session(size, height, width, 1 if len(sizes) > 1 else None)

    @property
    def cpu_threads(self) -> int:
        """Return the size of ONNX Runtime's intra-op thread pool."""
        return self.threads

    def run(self, images: np.ndarray, threads: Optional[int] = None) -> RawOutputs:
        """Run the network on an (N, H, W, 3) uint8 RGB batch; return NumPy outputs.

        ``threads`` (at most the backend's) bounds this call's threads; calls from several
        threads may run at once.
        """
        batch_size, height, width, _ = images.shape
        threads = min(threads or self.threads, self.threads)
        sizes = self.sub_batches(batch_size, threads)
        started = time.perf_counter()
        if len(sizes) == 1:
            results = [self._run_session(self.session(batch_size, height, width, threads),
                                         images)]
        else:
            if self._runners is None:
                self._runners = ThreadPoolExecutor(self.threads, 'onnxruntime_batch')
            sessions = {size: self.session(size, height, width, 1) for size in set(sizes)}
            ends = np.cumsum(sizes)
            results = list(self._runners.map(
                lambda end, size: self._run_session(sessions[size], images[end - size:end]),
                ends, sizes))
        normalise_ms = max(normalise for _, normalise in results)
        self.last_timings_ms = {
            'normalise': normalise_ms,
            'forward': (time.perf_counter() - started) * 1000.0 - normalise_ms}
        if len(results) == 1:
            return results[0][0]
        return {name: np.concatenate([outputs[name] for outputs, _ in results])
                for name in results[0][0]}

    def _run_session(self, session, images: np.ndarray) -> Tuple[RawOutputs, float]:
        """Return one session's outputs for ``images`` and the ms spent normalising them."""
        started = time.perf_counter()
        if session.get_inputs()[0].type == UINT8_TENSOR:  # Normalised inside the graph.
            batch = np.ascontiguousarray(images, dtype=np.uint8)
        else:
            batch = self._normalise(images)
        normalise_ms = (time.perf_counter() - started) * 1000.0
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, session.run(names, {INPUT_NAME: batch}))), normalise_ms
