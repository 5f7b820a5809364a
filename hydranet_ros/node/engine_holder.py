"""The node's engine: built from the parameters, rebuilt beside the serving one, swapped at once.

A rebuild (a new model, device, backend or input size) runs on a background thread while the
old engine keeps serving. Exporting a network to ONNX is Python work that would hold the
interpreter lock for seconds and stall the inference thread, so it runs in a child process
that fills the engine's export cache; the rebuild then only opens the cached file.
"""
import gc
import json
import os
import subprocess
import sys
import threading
from typing import Callable, Generic, Hashable, Optional, Tuple, TypeVar

import numpy as np

from ..engine import InferenceEngine
from ..engine.default_model import default_model_path
from ..engine.memory import release_unused_heap

OUT_OF_MEMORY_MESSAGES = ('out of memory', 'failed to allocate memory', "can't allocate memory",
                          'cannot allocate memory', 'insufficient memory')
PREPARE_TIMEOUT_S = 600.0
Engine = TypeVar('Engine')
Settings = TypeVar('Settings')
KeyOf = Callable[[Settings], Hashable]


class EngineHolder(Generic[Settings, Engine]):
    """The engine that serves frames, and at most one background rebuild at a time.

    ``factory(settings)`` builds a ready engine or raises; ``key_of(settings)`` tells whether
    two settings need different engines. A rebuild that fails leaves the serving engine in
    place and reports through ``on_failure``; one that succeeds is swapped in and reported
    through ``on_swap``. Requests made during a rebuild are coalesced: the newest wins.
    """

    def __init__(self, factory: Callable[[Settings], Engine], key_of: KeyOf,
                 on_swap: Callable[[Engine, Settings], None],
                 on_failure: Callable[[Settings, Exception], None]) -> None:
        self._factory = factory
        self._key_of = key_of
        self._on_swap = on_swap
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._engine: Optional[Engine] = None
        self._settings: Optional[Settings] = None
        self._wanted: Optional[Settings] = None
        self._builder: Optional[threading.Thread] = None
        self._generation = 0

    @property
    def engine(self) -> Optional[Engine]:
        """The engine serving frames now (None before ``load`` and after ``release``)."""
        return self._engine

    @property
    def settings(self) -> Optional[Settings]:
        """The settings the serving engine was built with."""
        return self._settings

    @property
    def rebuilding(self) -> bool:
        """Whether a background rebuild is in progress."""
        builder = self._builder
        return builder is not None and builder.is_alive()

    def load(self, settings: Settings) -> Engine:
        """Build an engine now (blocking) and serve it; exceptions propagate."""
        engine = self._factory(settings)
        with self._lock:
            self._generation += 1
            self._engine, self._settings, self._wanted = engine, settings, None
        return engine

    def request(self, settings: Settings) -> bool:
        """Rebuild in the background if ``settings`` need another engine; return True if so."""
        with self._lock:
            if self._engine is None:
                return False
            target_key = self._key_of(settings)
            pending = self._wanted if self._wanted is not None else self._settings
            if self._key_of(pending) == target_key:
                return False
            self._wanted = settings
            if self.rebuilding:
                return True
            generation = self._generation
            self._builder = threading.Thread(target=self._rebuild, args=(generation,),
                                             name='engine-rebuild', daemon=True)
            self._builder.start()
            return True

    def _rebuild(self, generation: int) -> None:
        while True:
            with self._lock:
                wanted = self._wanted
                if wanted is None or generation != self._generation:
                    self._wanted = None
                    return
                if self._key_of(wanted) == self._key_of(self._settings):
                    self._wanted = None
                    return
            try:
                engine = self._factory(wanted)
            except Exception as error:  # any failure keeps the old engine serving
                with self._lock:
                    if self._wanted is wanted:
                        self._wanted = None
                self._on_failure(wanted, error)
                continue
            with self._lock:
                if generation != self._generation:
                    return
                self._engine, self._settings = engine, wanted
                if self._wanted is wanted:
                    self._wanted = None
            self._on_swap(engine, wanted)

    def release(self) -> None:
        """Stop serving; a rebuild in progress is discarded when it ends."""
        with self._lock:
            self._generation += 1
            self._engine = None
            self._settings = None
            self._wanted = None

    def wait_idle(self, timeout_s: Optional[float] = None) -> bool:
        """Wait for a background rebuild to end; return False on timeout."""
        builder = self._builder
        if builder is None:
            return True
        builder.join(timeout_s)
        return not builder.is_alive()


def is_out_of_memory(error: BaseException) -> bool:
    """Return whether ``error`` says that host or GPU memory ran out.

    Covers ``MemoryError``, ``torch.cuda.OutOfMemoryError`` (a RuntimeError), PyTorch's CPU
    allocator, ONNX Runtime and OpenCV, which all say so in their messages.
    """
    if isinstance(error, MemoryError) or type(error).__name__ == 'OutOfMemoryError':
        return True
    text = str(error).lower()
    return any(message in text for message in OUT_OF_MEMORY_MESSAGES)


def release_memory(device=None) -> None:
    """Collect garbage and return cached GPU blocks to the driver (on CUDA devices)."""
    gc.collect()
    if getattr(device, 'type', '') != 'cuda':
        return
    import torch
    torch.cuda.empty_cache()


def build_engine(settings, warm_up_size: Optional[Tuple[int, int]],
                 in_child_first: bool = False) -> InferenceEngine:
    """Return a ready engine for the node's settings, warmed up at ``warm_up_size``.

    With ``in_child_first`` an ONNX Runtime engine is first exported in a child process (so
    that a rebuild never stalls the serving engine's thread), then opened from the cache.
    With several cameras and a fixed network input, every batch size up to ``max_batch`` is
    warmed up (ONNX Runtime exports one network per batch size): the first batch of three
    frames must not stall the cameras for the seconds an export takes.
    """
    model = settings.model_path or None
    if model is None and not os.path.isfile(default_model_path()):
        raise FileNotFoundError(
            f'model_path is empty and the bundled default model is missing '
            f'({default_model_path()}); set model_path to a HydraNet checkpoint')
    options = dict(device=settings.device, backend=settings.backend,
                   precision=settings.precision, input_size=settings.inference_size,
                   threads=settings.threads or None, preset=settings.preset or None,
                   fallback_to_cpu=settings.device_fallback)
    cameras = max(1, len(settings.cameras))
    batches = settings.max_batch or cameras
    if in_child_first and settings.backend in ('auto', 'onnxruntime'):
        _prepare_in_child(model, options, warm_up_size, batches, cameras,
                          settings.inference_lanes)
    engine = InferenceEngine(model, **options)
    warm_up(engine, warm_up_size, batches, cameras, settings.inference_lanes)
    release_unused_heap()  # the temporaries of loading, exporting and warming up
    return engine


def warm_up(engine: InferenceEngine, size: Optional[Tuple[int, int]], batches: int,
            cameras: int = 1, requested_lanes: int = 0) -> None:
    """Run the engine once per batch size its lanes run, on blank frames.

    At the network's size if fixed, else at ``size``; each lane's batches hold at most
    ``batches`` frames of its share of the ``cameras``.
    """
    size = engine.plan.input_size or size
    if size is None:
        return
    blank = np.zeros(size + (3,), np.uint8)
    lanes = inference_lanes(engine, cameras, requested_lanes)
    largest = min(batches, -(-cameras // lanes)) if lanes > 1 else batches
    if engine.plan.input_size is None:
        largest = 1
    threads = lane_threads(engine, lanes)
    for batch in range(1, largest + 1):
        for network in engine.run_network_many([blank] * batch, threads=threads):
            engine.finish(network, with_overlay=False)


def inference_lanes(engine: InferenceEngine, cameras: int, requested: int = 0) -> int:
    """Return how many inference threads (lanes) serve ``cameras`` cameras at once.

    One, except for ONNX Runtime on the CPU with several cameras: then ``requested`` lanes
    (0: one per camera), at most one per camera, each over its share of the cameras and of
    the network's threads (at least one). Lanes never wait for each other, as one batch split
    over the threads does at every operator and at its end, and more lanes than cores fill the
    time one lane spends publishing or waiting for the interpreter; ``python -m
    dev.bench.cameras --lanes`` measures the difference.
    """
    if cameras < 2 or engine.device.type != 'cpu' or engine.backend.name != 'onnxruntime':
        return 1
    return max(1, min(cameras, requested or cameras))


def lane_threads(engine: InferenceEngine, lanes: int) -> Optional[int]:
    """Return the network threads of each lane (None: the backend's own with one lane)."""
    return max(1, engine.backend.cpu_threads // lanes) if lanes > 1 else None


def _prepare_in_child(model: Optional[str], options: dict,
                      warm_up_size: Optional[Tuple[int, int]], batches: int,
                      cameras: int, lanes: int) -> None:
    """Build and warm up the engine once in a child process, filling the export cache."""
    request = json.dumps({'model': model, 'options': options, 'size': warm_up_size,
                          'batches': batches, 'cameras': cameras, 'lanes': lanes})
    result = subprocess.run([sys.executable, '-c', _PREPARE_SCRIPT, request],
                            capture_output=True, text=True, timeout=PREPARE_TIMEOUT_S)
    if result.returncode != 0:  # the real build in this process reports the reason
        return


_PREPARE_SCRIPT = """
import json, sys
from hydranet_ros.engine import InferenceEngine
from hydranet_ros.node.engine_holder import warm_up
request = json.loads(sys.argv[1])
options = request['options']
if options['input_size'] is not None:
    options['input_size'] = tuple(options['input_size'])
size = tuple(request['size']) if request['size'] else None
warm_up(InferenceEngine(request['model'], **options), size, request['batches'],
        request['cameras'], request['lanes'])
"""


def pipelined(mode: str, engine: InferenceEngine, cameras: int = 1, lanes: int = 1) -> bool:
    """Whether to publish on the second thread: ``always``, ``never`` or ``auto`` by hardware.

    ``auto`` pipelines on the CPU when a core is left beyond the network's threads, or when
    several cameras share one lane (the post-processing of a batch of frames is long enough
    that overlapping it with the next batch's network raises the output rate; measured in
    docs/node.md). Several lanes finish their own frames: they already keep every core busy.
    Not on CUDA devices, where it is unmeasured (the post-processing would share the
    network's CUDA stream).
    """
    if mode != 'auto':
        return mode == 'always'
    if engine.device.type != 'cpu' or lanes > 1:
        return False
    return cameras > 1 or (os.cpu_count() or 1) > engine.backend.cpu_threads
