"""ONNX Runtime backend for the CPU: the network exported once per input size and cached."""
import hashlib
import logging
import os
import tempfile
import warnings
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .backend import Backend, BackendError, RawOutputs
from .preprocess import normalise_nchw

LOGGER = logging.getLogger(__name__)
ONNX_OPSET = 17
CACHE_ENV = 'HYDRANET_CACHE_DIR'
MAX_CACHED_SESSIONS = 4


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


def export_onnx(model: nn.Module, path: str, height: int, width: int) -> None:
    """Export ``model`` for (batch, 3, height, width) input; write atomically to ``path``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    example = torch.zeros(1, 3, height, width)
    output_names = list(model(example).keys())
    handle, partial = tempfile.mkstemp(suffix='.onnx', dir=os.path.dirname(path))
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(model, (example,), partial, dynamo=False,
                              opset_version=ONNX_OPSET, input_names=['image'],
                              output_names=output_names,
                              dynamic_axes={name: {0: 'batch'}
                                            for name in ['image'] + output_names})
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


class OnnxRuntimeBackend(Backend):
    """Runs the exported network with ONNX Runtime's CPU execution provider."""

    name = 'onnxruntime'

    def __init__(self, model: nn.Module, device: torch.device, precision: str = 'fp32',
                 threads: Optional[int] = None, cache_dir: Optional[str] = None,
                 spin_wait: bool = True) -> None:
        super().__init__(device, precision)
        try:
            import onnxruntime
        except ImportError as error:
            raise BackendError('the onnxruntime backend needs the onnxruntime package '
                               '(pip install onnxruntime)') from error
        if device.type != 'cpu':
            raise BackendError('the onnxruntime backend runs on the CPU; use the torch '
                               'backend for CUDA')
        if precision != 'fp32':
            raise BackendError(f'precision {precision!r} is not available in the onnxruntime '
                               f'backend; use fp32')
        self._ort = onnxruntime
        self.model = model.eval()
        self.config = model.config
        self.threads = int(threads) if threads else (os.cpu_count() or 1)
        self.spin_wait = spin_wait
        self.cache_dir = os.path.join(cache_dir or default_cache_dir(), 'onnx')
        self.fingerprint = weights_fingerprint(model)
        self._sessions: Dict[Tuple[int, int], object] = {}

    def model_path(self, height: int, width: int) -> str:
        """Return the cache path of the exported network for one input size."""
        return os.path.join(self.cache_dir,
                            f'hydranet_{self.fingerprint}_{height}x{width}_op{ONNX_OPSET}.onnx')

    def session(self, height: int, width: int):
        """Return the inference session for this input size, exporting it on first use."""
        key = (height, width)
        if key in self._sessions:
            return self._sessions[key]
        path = self.model_path(height, width)
        if not os.path.exists(path):
            LOGGER.info('exporting the network to ONNX for %dx%d input (once): %s',
                        width, height, path)
            export_onnx(self.model, path, height, width)
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = self._ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry('session.intra_op.allow_spinning',
                                         '1' if self.spin_wait else '0')
        try:
            session = self._ort.InferenceSession(path, options,
                                                 providers=['CPUExecutionProvider'])
        except Exception as error:  # A corrupt cache file: export again once.
            LOGGER.warning('cached ONNX model %s is unusable (%s); exporting again', path, error)
            export_onnx(self.model, path, height, width)
            session = self._ort.InferenceSession(path, options,
                                                 providers=['CPUExecutionProvider'])
        if len(self._sessions) >= MAX_CACHED_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        self._sessions[key] = session
        return session

    def run(self, images: np.ndarray) -> RawOutputs:
        """Run the network on an (N, H, W, 3) uint8 RGB batch; return NumPy outputs."""
        _, height, width, _ = images.shape
        session = self.session(height, width)
        batch = normalise_nchw(images, self.config.mean, self.config.std)
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, session.run(names, {'image': batch})))
