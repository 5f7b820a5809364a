"""hydranet-bench: speed of the network and of the whole engine, against the upstream forward.

For every backend, precision, input size, batch size and thread count it prints one JSON line
to stdout (progress goes to stderr) with:

* model-only latency (``median_ms``, ``p90_ms``, ``fps``): the backend's ``run`` on a uint8
  batch, i.e. normalisation plus the forward pass;
* the upstream-style PyTorch forward measured in the same run on the same input and weights
  (eager, NCHW, plain 5x5 max-pools, batch norm not folded, ``torch.no_grad``):
  ``reference_median_ms`` and ``speedup_vs_reference``;
* end-to-end latency of ``InferenceEngine.infer_batch`` (``e2e_*``), with the pre- and
  post-processing times and their share of it;
* agreement of the outputs with the upstream-style forward (labels at the network's output
  resolution, depth and largest raw difference): exact paths agree within ~1e-5.

Example (the numbers of docs/performance.md)::

    hydranet-bench --sizes 240x320,480x640,720x1280 --batch 1,2,4 --threads 1,2
"""
import argparse
import copy
import inspect
import json
import os
import platform
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

import cv2

from ..engine import BackendError, InferenceEngine, resolve_device
from ..engine.default_model import ASSETS_DIR, default_model_path
from ..engine.depth_rules import apply_depth_rules, DepthRules
from ..engine.geometry import build_cloud, PinholeIntrinsics
from ..engine.prediction import Prediction
from ..engine.preprocess import normalise_nchw
from ..engine.memory import keep_large_buffers
from ..engine.run_plan import BACKEND_PRECISIONS
from ..model import CheckpointError, HydraNet, build_hydranet, load_hydranet
from ..model.blocks import ChainedResidualPool
from .engine_options import build_engine, engine_line, input_size, positive_int, ToolError
from .errors import add_debug_argument, tool_main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_REFERENCE_MODEL = os.path.join('reference', 'ckpt_nyud_random.pth')
SHARED_SAMPLE_PICTURE = os.path.join('samples', 'nyud_joint', '000464.png')
BUNDLED_SAMPLE_PICTURE = os.path.join(ASSETS_DIR, 'samples', 'nyud_000464.png')
DEFAULT_SIZE = (480, 640)
QUICK_SIZE = (48, 64)
UPSTREAM_POOL_KERNEL = 5
MS_PER_S = 1000.0
CLOUD_FOCAL_PER_WIDTH = 0.866  # a 60-degree horizontal field of view
CLOUD_BENCH_SCALE = 1.25  # any factor other than 1, so that the scaling is timed too
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class BenchError(ToolError):
    """A benchmark cannot start (no model, unreadable picture); the tool exits with code 2."""


def log(message: str) -> None:
    """Print progress to stderr (stdout carries only JSON lines)."""
    print(f'[hydranet-bench] {message}', file=sys.stderr, flush=True)


def shared_dirs() -> List[str]:
    """Return the candidate ``../shared`` folders: beside the repository and beside the cwd."""
    return [os.path.normpath(os.path.join(root, '..', 'shared'))
            for root in (REPO_ROOT, os.getcwd())]


def find_default_model() -> str:
    """Return the reference checkpoint in ``../shared`` or else the bundled default model."""
    for shared in shared_dirs():
        path = os.path.join(shared, SHARED_REFERENCE_MODEL)
        if os.path.isfile(path):
            return path
    if os.path.isfile(default_model_path()):
        return default_model_path()
    raise BenchError('no model found: neither ../shared/reference/ckpt_nyud_random.pth nor the '
                     'bundled default model exists; pass --model PATH')


def load_picture(path: Optional[str]) -> Tuple[np.ndarray, str]:
    """Return (RGB uint8 picture, its name): ``path``, the NYUDv2 sample, or a synthetic one."""
    candidates = [path] if path else (
        [os.path.join(shared, SHARED_SAMPLE_PICTURE) for shared in shared_dirs()]
        + [BUNDLED_SAMPLE_PICTURE])
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            image = cv2.imread(candidate, cv2.IMREAD_COLOR)
            if image is not None:
                return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), os.path.basename(candidate)
    if path:
        raise BenchError(f'{path}: not a readable picture; pass a PNG or JPEG file with '
                         f'--input, or leave --input out')
    return synthetic_picture(*DEFAULT_SIZE), 'synthetic'


def synthetic_picture(height: int, width: int, seed: int = 2019) -> np.ndarray:
    """Return a deterministic picture: smooth colour gradients plus a little noise."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    channels = [127 + 100 * np.sin(rows / (17 + 9 * c) + cols / (23 + 5 * c))
                + rng.normal(0, 8, (height, width)) for c in range(3)]
    return np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8)


def upstream_style_model(model: HydraNet) -> HydraNet:
    """Return the published forward with ``model``'s weights: eager NCHW, plain 5x5 pools.

    The same ``state_dict`` is loaded (strictly) into a fresh network whose separable pools are
    replaced by ``nn.MaxPool2d(5, stride=1, padding=2)``; batch norm stays unfolded.
    """
    reference = build_hydranet(copy.deepcopy(model.config))
    for module in reference.modules():
        if isinstance(module, ChainedResidualPool):
            module.pool = nn.MaxPool2d(UPSTREAM_POOL_KERNEL, stride=1,
                                       padding=UPSTREAM_POOL_KERNEL // 2)
    reference.load_state_dict(model.state_dict(), strict=True)
    return reference.eval()


def time_calls(call: Callable[[], object], repeats: int, warmup: int,
               sync: Callable[[], None]) -> List[float]:
    """Return the wall time of ``repeats`` calls in milliseconds, after ``warmup`` calls."""
    return time_in_turns([(call, repeats)], warmup, sync)[0]


def time_in_turns(calls: Sequence[Tuple[Callable[[], object], int]], warmup: int,
                  sync: Callable[[], None]) -> List[List[float]]:
    """Time several calls taking turns (each ``repeats`` times), so they share the same load.

    Returns one list of wall times in milliseconds per call, after ``warmup`` calls of each.
    """
    for call, repeats in calls:
        for _ in range(warmup if repeats else 0):
            call()
    sync()
    times: List[List[float]] = [[] for _ in calls]
    for turn in range(max((repeats for _, repeats in calls), default=0)):
        for (call, repeats), samples in zip(calls, times):
            if turn < repeats:
                started = time.perf_counter()
                call()
                sync()
                samples.append((time.perf_counter() - started) * MS_PER_S)
    return times


def time_cloud(prediction: Prediction, rgb: np.ndarray, repeats: int,
               warmup: int) -> List[float]:
    """Time the labelled cloud of one frame (ms): the node's depth/points without transport.

    The copy of the prediction each call gets the depth rules (sky NaN, a depth scale) and is
    back-projected into the pcl fields, organised, through a 60-degree pinhole camera.
    """
    height, width = prediction.depth.shape
    focal = CLOUD_FOCAL_PER_WIDTH * width
    intrinsics = PinholeIntrinsics(focal, focal, (width - 1) / 2.0, (height - 1) / 2.0)
    rules = DepthRules(invalid_class_ids=(0,), scale=CLOUD_BENCH_SCALE)

    def build() -> None:
        frame = Prediction(depth=prediction.depth.copy(), labels=prediction.labels,
                           confidence=prediction.confidence)
        apply_depth_rules(frame, rules)
        build_cloud(frame.depth, intrinsics, frame.labels, frame.confidence, rgb)
    return time_calls(build, repeats, warmup, lambda: None)


def summarise(times_ms: Sequence[float]) -> Dict[str, float]:
    """Return median, 90th percentile, mean and minimum of a list of times."""
    values = np.asarray(times_ms, np.float64)
    return {'median_ms': float(np.median(values)), 'p90_ms': float(np.percentile(values, 90)),
            'mean_ms': float(values.mean()), 'min_ms': float(values.min())}


def to_numpy(outputs: Dict[str, object]) -> Dict[str, np.ndarray]:
    """Return raw outputs (tensors anywhere or arrays) as float32 NumPy arrays."""
    result = {}
    for task, value in outputs.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().float().cpu().numpy()
        result[task] = np.asarray(value, np.float32)
    return result


def agreement(outputs: Dict[str, np.ndarray],
              reference: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Compare raw outputs with the reference: label agreement and depth/logit differences."""
    labels = outputs['segm'].argmax(axis=1) == reference['segm'].argmax(axis=1)
    depth_error = np.abs(outputs['depth'] - reference['depth'])
    return {
        'label_agreement': float(labels.mean()),
        'depth_rel_diff': float(depth_error.mean()
                                / max(float(np.abs(reference['depth']).mean()), 1e-12)),
        'max_abs_diff': float(max(np.abs(outputs[task] - reference[task]).max()
                                  for task in reference)),
    }


def environment() -> Dict[str, object]:
    """Return the software and hardware this run measured."""
    info: Dict[str, object] = {'python': platform.python_version(), 'torch': torch.__version__,
                               'cpu': _cpu_name(), 'cores': os.cpu_count()}
    try:
        import onnxruntime
        info['onnxruntime'] = onnxruntime.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
        info['cuda'] = torch.version.cuda
    return info


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Bench:
    """Runs every configuration the options ask for and prints the JSON lines."""

    def __init__(self, args: argparse.Namespace, model: HydraNet, picture: np.ndarray,
                 picture_name: str) -> None:
        self.args = args
        self.model = model
        self.picture = picture
        self.picture_name = picture_name
        self.device = resolve_device(args.device)
        self.reference_model = upstream_style_model(model).to(self.device)
        self._references: Dict[Tuple[int, int, int, int], Dict[str, object]] = {}
        self.env = environment()
        self.failures = 0

    def sync(self) -> None:
        """Wait for queued GPU work so that times are wall times."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def images(self, height: int, width: int, batch: int) -> np.ndarray:
        """Return the picture resized to (height, width), repeated ``batch`` times."""
        resized = cv2.resize(self.picture, (width, height), interpolation=cv2.INTER_AREA)
        return np.stack([resized] * batch)

    def reference(self, height: int, width: int, batch: int, threads: int) -> Dict[str, object]:
        """Return the upstream-style forward's outputs, its timed call and (once timed) stats.

        The forward is timed once per shape and thread count, taking turns with the first
        backend measured at that shape, so that both see the same machine load.
        """
        key = (height, width, batch, threads)
        if key not in self._references:
            images = self.images(height, width, batch)
            x = torch.from_numpy(normalise_nchw(images, self.model.config.mean,
                                                self.model.config.std)).to(self.device)

            def forward() -> Dict[str, torch.Tensor]:
                with torch.no_grad():
                    return self.reference_model(x)

            self._references[key] = {'outputs': to_numpy(forward()), 'call': forward,
                                     'stats': None}
        return self._references[key]

    def engine(self, backend: str, precision: str, threads: int, spin_wait: bool,
               height: int, width: int) -> InferenceEngine:
        """Create the engine of one configuration; its network input is the measured size."""
        args = self.args
        options = ({'spin_wait': spin_wait} if backend == 'onnxruntime'
                   else {'compile_model': args.compile, 'cuda_graphs': args.cuda_graphs})
        try:
            engine = build_engine(self.model, device=str(self.device), backend=backend,
                                  precision=precision, input_size=(height, width),
                                  threads=threads, cache_dir=args.cache_dir,
                                  fallback_to_cpu=False, backend_options=options)
        except ToolError as error:
            raise BackendError(str(error)) from error
        log(engine_line(engine))
        return engine

    def measure(self, engine, backend: str, precision: str, height: int, width: int,
                batch: int, threads: int, spin_wait: bool) -> Dict[str, object]:
        """Return the JSON record of one configuration."""
        args = self.args
        images = self.images(height, width, batch)
        reference = self.reference(height, width, batch, threads)
        if self.device.type == 'cpu':
            torch.set_num_threads(threads)
        started = time.perf_counter()
        if 'batch' in inspect.signature(engine.backend.prepare).parameters:
            engine.backend.prepare(height, width, batch=batch)
        else:  # A backend whose prepare() knows only the image size.
            engine.backend.prepare(height, width)
        setup_ms = (time.perf_counter() - started) * MS_PER_S
        reference_repeats = args.reference_repeats if reference['stats'] is None else 0
        if reference_repeats:
            log(f'... taking turns with the upstream-style eager forward ({reference_repeats} '
                f'runs)')
        model_times, reference_times = time_in_turns(
            [(lambda: engine.backend.run(images), args.repeats),
             (reference['call'], reference_repeats)], args.warmup, self.sync)
        if reference_times:
            reference['stats'] = summarise(reference_times)
        model = summarise(model_times)
        outputs = to_numpy(engine.backend.run(images))
        normalise_ms = getattr(engine.backend, 'last_timings_ms', {}).get('normalise', 0.0)
        frames = list(images)
        stages: Dict[str, List[float]] = {}

        last: List[Prediction] = []

        def infer() -> None:
            predictions = engine.infer_batch(frames, with_overlay=not args.no_overlay)
            for stage, value in predictions[0].timings_ms.items():
                stages.setdefault(stage, []).append(value)
            last[:] = predictions[:1]

        e2e = summarise(time_calls(infer, args.repeats, args.warmup, self.sync))
        stage_ms = {stage: float(np.median(values[-args.repeats:]))
                    for stage, values in stages.items()}
        # Engine timings: 'convert', 'network' and 'postprocess' are per image, 'resize' per batch.
        preprocess_ms = (stage_ms.get('convert', 0.0) * batch + stage_ms.get('resize', 0.0)
                         + normalise_ms)
        postprocess_ms = stage_ms.get('postprocess', 0.0) * batch
        cloud = summarise(time_cloud(last[0], frames[0], args.repeats, args.warmup))
        ref_stats = reference['stats']
        record = {
            'backend': backend, 'precision': precision, 'device': str(self.device),
            'height': height, 'width': width, 'batch': batch, 'threads': threads,
            'spin_wait': spin_wait if backend == 'onnxruntime' else None,
            'compile': bool(args.compile) if backend == 'torch' else None,
            'cuda_graphs': bool(args.cuda_graphs) if backend == 'torch' else None,
            'median_ms': model['median_ms'], 'p90_ms': model['p90_ms'],
            'mean_ms': model['mean_ms'], 'min_ms': model['min_ms'],
            'fps': batch * MS_PER_S / model['median_ms'],
            'reference_median_ms': ref_stats['median_ms'] if ref_stats else None,
            'reference_p90_ms': ref_stats['p90_ms'] if ref_stats else None,
            'reference_min_ms': ref_stats['min_ms'] if ref_stats else None,
            'speedup_vs_reference': (ref_stats['median_ms'] / model['median_ms']
                                     if ref_stats else None),
            'e2e_median_ms': e2e['median_ms'], 'e2e_p90_ms': e2e['p90_ms'],
            'e2e_fps': batch * MS_PER_S / e2e['median_ms'],
            'preprocess_ms': preprocess_ms,
            'network_ms': stage_ms.get('network', 0.0) * batch - normalise_ms,
            'postprocess_ms': postprocess_ms,
            'preprocess_share': preprocess_ms / e2e['median_ms'],
            'postprocess_share': postprocess_ms / e2e['median_ms'],
            'cloud_ms': cloud['median_ms'], 'cloud_p90_ms': cloud['p90_ms'],
            'cloud_share_of_network': cloud['median_ms'] * batch / model['median_ms'],
            'with_overlay': not args.no_overlay,
            'setup_ms': setup_ms,
            'repeats': args.repeats, 'warmup': args.warmup,
            'reference_repeats': args.reference_repeats,
            'model': os.path.basename(args.model_path), 'input': self.picture_name,
            'num_classes': self.model.config.num_classes,
            'load_avg_1m': os.getloadavg()[0] if hasattr(os, 'getloadavg') else None,
            'backend_description': engine.backend.describe(),
            'network_input': engine.network_input_text(),
            'env': self.env,
        }
        record.update(agreement(outputs, reference['outputs']))
        return record

    def configurations(self):
        """Yield (threads, backend, precision, spin_wait) in measuring order."""
        args = self.args
        device_type = self.device.type
        for threads in args.threads:
            for backend in args.backends:
                available = BACKEND_PRECISIONS.get(backend, {}).get(device_type)
                if not available:
                    log(f'skipping backend {backend}: not available on {device_type}')
                    continue
                for precision in args.precisions or available:
                    if precision not in available:
                        log(f'skipping {backend} {precision}: not available on {device_type}')
                        continue
                    spins = args.spin_wait if backend == 'onnxruntime' else [False]
                    for spin_wait in spins:
                        yield threads, backend, precision, spin_wait

    def run(self) -> int:
        """Measure everything; return the number of failed configurations."""
        for threads, backend, precision, spin_wait in self.configurations():
            label = f'{backend} {precision} threads {threads}'
            for height, width in self.args.sizes:
                config = {'backend': backend, 'precision': precision, 'threads': threads,
                          'height': height, 'width': width}
                try:
                    if self.device.type == 'cpu':
                        torch.set_num_threads(threads)
                    engine = self.engine(backend, precision, threads, spin_wait, height, width)
                except BackendError as error:
                    self.fail(config, error)
                    continue
                for batch in self.args.batch:
                    log(f'{label} {height}x{width} batch {batch}'
                        + (f' spinning {"on" if spin_wait else "off"}'
                           if backend == 'onnxruntime' else ''))
                    try:
                        record = self.measure(engine, backend, precision, height, width, batch,
                                              threads, spin_wait)
                    except (BackendError, RuntimeError, ValueError) as error:
                        self.fail(dict(config, batch=batch), error)
                        continue
                    print(json.dumps(record), flush=True)
                    log(f'labelled cloud of {height}x{width} (depth rules, back-projection, '
                        f'pcl fields): {record["cloud_ms"]:.2f} ms a frame, '
                        f'{record["cloud_share_of_network"]:.1%} of the network\'s '
                        f'{record["median_ms"]:.1f} ms')
        return self.failures

    def fail(self, config: Dict[str, object], error: Exception) -> None:
        """Report a configuration that could not be measured (stderr and a JSON line)."""
        self.failures += 1
        log(f'FAILED {config}: {error}')
        print(json.dumps(dict(config, error=str(error))), flush=True)


def comma_list(parse: Callable[[str], object]) -> Callable[[str], list]:
    """Return an argparse type that parses a comma-separated list with ``parse``."""
    def parse_list(text: str) -> list:
        return [parse(item) for item in text.split(',') if item.strip()]
    return parse_list


def on_off(text: str) -> bool:
    """Parse ``on``/``off`` for argparse."""
    value = text.strip().lower()
    if value not in ('on', 'off'):
        raise argparse.ArgumentTypeError(f'expected on or off, got {text!r}')
    return value == 'on'


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog='hydranet-bench',
        description='Measure HydraNet latency per backend, precision, size, batch and thread '
                    'count against the upstream-style PyTorch forward. One JSON line per '
                    'configuration on stdout, progress on stderr.')
    parser.add_argument('--model', metavar='PATH',
                        help='checkpoint (default: ../shared/reference/ckpt_nyud_random.pth '
                             'if present, else the bundled default model)')
    parser.add_argument('--input', metavar='IMAGE',
                        help='picture to run on (default: the NYUDv2 sample picture, else a '
                             'synthetic one); resized to each --sizes entry')
    parser.add_argument('--device', default='cpu',
                        help='cpu, cuda, cuda:N or auto (default: %(default)s)')
    parser.add_argument('--backends', type=comma_list(str), metavar='LIST',
                        help='comma-separated backends (default: onnxruntime,torch on the CPU, '
                             'torch on CUDA)')
    parser.add_argument('--precisions', type=comma_list(str), metavar='LIST',
                        help='comma-separated precisions (default: all a backend offers on the '
                             'device: fp32,int8 for onnxruntime; fp16,bf16,fp32 for torch on '
                             'CUDA)')
    parser.add_argument('--sizes', type=comma_list(input_size), metavar='HxW,...',
                        help='network input sizes, height x width (default: 480x640; e.g. '
                             '240x320,480x640,720x1280)')
    parser.add_argument('--batch', type=comma_list(positive_int), default=[1],
                        metavar='N,...', help='batch sizes (default: 1)')
    parser.add_argument('--threads', type=comma_list(positive_int), metavar='N,...',
                        help='CPU thread counts (default: all cores)')
    parser.add_argument('--spin-wait', type=comma_list(on_off), default=[False],
                        metavar='off|on|off,on',
                        help='ONNX Runtime thread spinning (default: off)')
    parser.add_argument('--repeats', type=positive_int, default=20,
                        help='timed runs per configuration (default: %(default)s)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed runs before timing (default: %(default)s)')
    parser.add_argument('--reference-repeats', type=int, default=5,
                        help='timed runs of the slow upstream-style forward; 0 skips its '
                             'timing (default: %(default)s)')
    parser.add_argument('--compile', action='store_true',
                        help='torch backend: torch.compile the network')
    parser.add_argument('--cuda-graphs', action='store_true',
                        help='torch backend on CUDA: replay each shape as a CUDA graph')
    parser.add_argument('--no-overlay', action='store_true',
                        help='end-to-end runs without drawing the overlay picture')
    parser.add_argument('--cache-dir', metavar='DIR',
                        help='where exported ONNX models are cached (default: '
                             '$HYDRANET_CACHE_DIR or ~/.cache/hydranet_ros)')
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: a 48x64 input, 2 repeats, 1 warm-up run (for tests; '
                             'the times mean nothing)')
    add_debug_argument(parser)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and complete the options (defaults that depend on the device or --quick)."""
    args = build_parser().parse_args(argv)
    if args.quick:
        args.sizes = args.sizes or [QUICK_SIZE]
        args.repeats = min(args.repeats, 2)
        args.warmup = min(args.warmup, 1)
        args.reference_repeats = min(args.reference_repeats, 1)
    args.sizes = args.sizes or [DEFAULT_SIZE]
    args.threads = args.threads or [os.cpu_count() or 1]
    if args.warmup < 0 or args.reference_repeats < 0:
        raise BenchError('--warmup and --reference-repeats must be >= 0')
    return args


@tool_main('hydranet-bench')
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; return 0, 1 if a configuration failed, 2 for usage problems."""
    try:
        args = parse_args(argv)
        keep_large_buffers()  # as the node does: frame-sized arrays reuse heap, no page faults
        args.model_path = args.model or find_default_model()
        model = load_hydranet(args.model_path)
        picture, picture_name = load_picture(args.input)
        bench = Bench(args, model, picture, picture_name)
        if args.backends is None:
            args.backends = ['torch'] if bench.device.type == 'cuda' else ['onnxruntime',
                                                                           'torch']
    except (CheckpointError, BackendError, ValueError) as error:
        raise ToolError(str(error)) from error
    log(f'model {args.model_path} ({model.config.num_classes} classes), input '
        f'{picture_name}, device {bench.device}')
    failures = bench.run()
    return EXIT_FAILED if failures else EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
