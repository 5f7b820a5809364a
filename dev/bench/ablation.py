"""What each CPU optimisation contributes: the forward pass in successive variants.

Every variant runs the same picture with the same weights, and the variants are timed in turns
(round robin), so that a busy machine slows all of them alike and their ratios stay meaningful.
The first variant is the upstream-style forward on the already normalised input (as
``hydranet-bench`` times it); every other variant starts from the uint8 frame, normalisation
included, as a backend does. One JSON line per variant and size on stdout, progress on stderr.

Example (the numbers of docs/performance.md)::

    python -m dev.bench.ablation --threads 1 --repeats 10
"""
import argparse
import copy
import json
import os
import sys
import tempfile
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

import cv2

from hydranet_ros.engine.onnx_backend import (export_onnx, INPUT_NAME, ONNX_OPSET,
                                              OnnxRuntimeBackend)
from hydranet_ros.engine.preprocess import normalise_nchw
from hydranet_ros.engine.memory import keep_large_buffers
from hydranet_ros.model import CheckpointError, HydraNet, load_hydranet
from hydranet_ros.model.fusion import fold_batchnorm
from hydranet_ros.tools.bench import (BenchError, comma_list, DEFAULT_SIZE, environment,
                                      find_default_model, load_picture, log, QUICK_SIZE,
                                      upstream_style_model)
from hydranet_ros.tools.engine_options import input_size, positive_int

Forward = Callable[[], Dict[str, np.ndarray]]
MS_PER_S = 1000.0
EXIT_OK = 0
EXIT_USAGE = 2


def _torch_forward(model: nn.Module, images: np.ndarray, channels_last: bool) -> Forward:
    mean, std = model.config.mean, model.config.std

    def forward() -> Dict[str, np.ndarray]:
        x = torch.from_numpy(normalise_nchw(images, mean, std))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            return {task: value.float().numpy() for task, value in model(x).items()}
    return forward


def _export_dynamic(model: nn.Module, path: str, x: torch.Tensor) -> None:
    """Export as the first engine did: batch dimension dynamic, graph not rewritten."""
    with torch.no_grad():
        names = list(model(x).keys())
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=[INPUT_NAME], output_names=names,
                          dynamic_axes={name: {0: 'batch'} for name in [INPUT_NAME] + names})


def _ort_forward(path: str, model: HydraNet, images: np.ndarray, threads: int,
                 spin_wait: bool) -> Forward:
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry('session.intra_op.allow_spinning',
                                     '1' if spin_wait else '0')
    session = onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    names = [output.name for output in session.get_outputs()]

    def forward() -> Dict[str, np.ndarray]:
        x = normalise_nchw(images, model.config.mean, model.config.std)
        return dict(zip(names, session.run(names, {INPUT_NAME: x})))
    return forward


def _backend_forward(model: HydraNet, images: np.ndarray, threads: int, precision: str,
                     spin_wait: bool, workdir: str) -> Forward:
    backend = OnnxRuntimeBackend(model, torch.device('cpu'), precision, threads=threads,
                                 cache_dir=workdir, spin_wait=spin_wait)
    backend.prepare(images.shape[1], images.shape[2], batch=images.shape[0])
    return lambda: backend.run(images)


def ablation_variants(model: HydraNet, reference: nn.Module, images: np.ndarray, threads: int,
                      workdir: str, with_int8: bool = True) -> List[Tuple[str, str, Forward]]:
    """Return (name, what changed, forward) from the upstream forward to the shipped paths."""
    batch, height, width, _ = images.shape
    x = torch.from_numpy(normalise_nchw(images, model.config.mean, model.config.std))
    last = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
    folded_last = fold_batchnorm(model).to(memory_format=torch.channels_last)
    exports = {
        'dynamic': None,
        'static_plain': dict(blocked_clips=False, square_pools=False, split_heads=False),
        'static_blocked': dict(square_pools=False, split_heads=False),
        'square': dict(split_heads=False),
        'split': dict(),
    }
    paths = {name: os.path.join(workdir, f'{name}.onnx') for name in exports}
    _export_dynamic(model, paths['dynamic'], x)
    for name, options in exports.items():
        if options is not None:
            export_onnx(model, paths[name], batch, height, width, **options)

    def ort(name: str, spin_wait: bool = False) -> Forward:
        return _ort_forward(paths[name], model, images, threads, spin_wait)

    def upstream() -> Dict[str, np.ndarray]:
        with torch.no_grad():
            return {task: value.numpy() for task, value in reference(x).items()}

    variants = [
        ('upstream_eager', 'PyTorch eager NCHW, plain 5x5 max-pools (the published forward; '
         'normalised input)', upstream),
        ('eager_separable_pools', '+ 5x5 max-pool as 1x5 then 5x1 (bit-identical); from here '
         'on the uint8 frame is normalised inside the timed call',
         _torch_forward(model, images, False)),
        ('eager_channels_last', '+ channels_last memory layout',
         _torch_forward(last, images, True)),
        ('torch_folded_channels_last', '+ batch norm folded into the convolutions (the torch '
         'backend on the CPU)', _torch_forward(folded_last, images, True)),
        ('ort_dynamic_batch', 'ONNX Runtime, export with a dynamic batch dimension, '
         'separable pools', ort('dynamic')),
        ('ort_static_shapes', '+ one export per input shape (static shapes)',
         ort('static_plain')),
        ('ort_blocked_relu6', '+ identity conv before each standalone ReLU6 (whole graph in '
         'NCHWc)', ort('static_blocked')),
        ('ort_square_pools', '+ one-pass 5x5 max-pools', ort('square')),
        ('ort_split_depth_head', '+ depth head as depthwise 3x3 and 1x1 sum', ort('split')),
        ('ort_shipped', '+ normalisation inside the graph (the shipped fp32 backend)',
         _backend_forward(model, images, threads, 'fp32', False, workdir)),
        ('ort_shipped_spinning', '+ thread spinning on',
         _backend_forward(model, images, threads, 'fp32', True, workdir)),
    ]
    if with_int8:
        variants.append(('ort_int8', 'ONNX Runtime static int8 (QDQ, per-channel weights; '
                         'not exact)',
                         _backend_forward(model, images, threads, 'int8', False, workdir)))
    return variants


def run_ablation(model: HydraNet, reference: nn.Module, images: np.ndarray, threads: int,
                 repeats: int, warmup: int, with_int8: bool = True) -> List[dict]:
    """Time every variant in turns; return one record per variant (agreement included)."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as workdir:
        variants = ablation_variants(model, reference, images, threads, workdir, with_int8)
        expected = variants[0][2]()
        outputs = {}
        for name, _, forward in variants:
            for _ in range(warmup):
                forward()
            outputs[name] = forward()
        times: Dict[str, List[float]] = {name: [] for name, _, _ in variants}
        for _ in range(repeats):
            for name, _, forward in variants:
                started = time.perf_counter()
                forward()
                times[name].append((time.perf_counter() - started) * MS_PER_S)
    reference_ms = float(np.median(times[variants[0][0]]))
    records = []
    for name, change, _ in variants:
        values = np.asarray(times[name])
        result = outputs[name]
        records.append({
            'ablation': name, 'change': change, 'threads': threads,
            'batch': images.shape[0], 'height': images.shape[1], 'width': images.shape[2],
            'median_ms': float(np.median(values)), 'p90_ms': float(np.percentile(values, 90)),
            'min_ms': float(values.min()),
            'speedup_vs_reference': reference_ms / float(np.median(values)),
            'label_agreement': float((result['segm'].argmax(1)
                                      == expected['segm'].argmax(1)).mean()),
            'max_abs_diff': float(max(np.abs(result[k] - expected[k]).max() for k in expected)),
            'repeats': repeats,
        })
    return records


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the options; --quick shrinks the run to a smoke test."""
    parser = argparse.ArgumentParser(
        prog='python -m dev.bench.ablation',
        description='Time the CPU forward pass in successive variants (upstream, separable '
                    'pools, channels_last, folding, ONNX Runtime exports, spinning, int8) in '
                    'turns and print what each contributes.')
    parser.add_argument('--model', metavar='PATH',
                        help='checkpoint (default: ../shared/reference/ckpt_nyud_random.pth '
                             'if present, else the bundled default model)')
    parser.add_argument('--input', metavar='IMAGE',
                        help='picture to run on (default: the NYUDv2 sample picture)')
    parser.add_argument('--sizes', type=comma_list(input_size), metavar='HxW,...',
                        help='network input sizes (default: 480x640)')
    parser.add_argument('--batch', type=positive_int, default=1,
                        help='batch size (default: %(default)s)')
    parser.add_argument('--threads', type=comma_list(positive_int), metavar='N,...',
                        help='CPU thread counts (default: all cores)')
    parser.add_argument('--repeats', type=positive_int, default=20,
                        help='timed runs of each variant (default: %(default)s)')
    parser.add_argument('--warmup', type=positive_int, default=3,
                        help='untimed runs before timing (default: %(default)s)')
    parser.add_argument('--no-int8', action='store_true',
                        help='leave out the int8 ONNX Runtime variant')
    parser.add_argument('--quick', action='store_true',
                        help='smoke test: a 48x64 input, 2 repeats, 1 warm-up run')
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = args.sizes or [QUICK_SIZE]
        args.repeats, args.warmup = min(args.repeats, 2), 1
    args.sizes = args.sizes or [DEFAULT_SIZE]
    args.threads = args.threads or [os.cpu_count() or 1]
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ablation for every size and thread count; return 0, or 2 for usage problems."""
    args = parse_args(argv)
    try:
        keep_large_buffers()  # as the node does
        model_path = args.model or find_default_model()
        model = load_hydranet(model_path)
        picture, picture_name = load_picture(args.input)
    except (BenchError, CheckpointError, ValueError) as error:
        log(f'error: {error}')
        return EXIT_USAGE
    reference = upstream_style_model(model)
    env = environment()
    for threads in args.threads:
        for height, width in args.sizes:
            log(f'ablation {height}x{width} batch {args.batch} threads {threads}')
            resized = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
            images = np.stack([resized] * args.batch)
            for record in run_ablation(model, reference, images, threads, args.repeats,
                                       args.warmup, with_int8=not args.no_int8):
                record.update({'model': os.path.basename(model_path), 'input': picture_name,
                               'load_avg_1m': os.getloadavg()[0], 'env': env})
                print(json.dumps(record), flush=True)
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
