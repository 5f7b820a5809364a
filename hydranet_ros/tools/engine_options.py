"""Command-line options shared by the tools that run the inference engine, and their checks."""
import argparse
import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from torch import nn

from ..engine import BACKENDS, BackendError, DeviceError, InferenceEngine, PRECISIONS
from ..engine.default_model import default_model_path
from ..model import CheckpointError, PRESETS
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ToolError, ToolFailure
from .sizes import input_size

EXIT_SOME_FAILED = EXIT_FAILED
__all__ = ['EXIT_FAILED', 'EXIT_OK', 'EXIT_SOME_FAILED', 'EXIT_USAGE', 'ToolError',
           'ToolFailure', 'add_engine_arguments', 'build_engine', 'engine_from_args',
           'engine_line', 'engine_summary', 'input_size', 'positive_int',
           'resolve_model_path', 'unit_interval']


def unit_interval(text: str) -> float:
    """Parse a float in [0, 1] for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number in [0, 1], got {text!r}') from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'expected a number in [0, 1], got {value}')
    return value


def positive_int(text: str) -> int:
    """Parse an integer >= 1 for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {value}')
    return value


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that choose the model, runtime, resolution and overlay opacity."""
    group = parser.add_argument_group('model and inference')
    group.add_argument('--model', metavar='PATH',
                       help='HydraNet checkpoint: a project .pt or a published checkpoint '
                            '(.pth/.ckpt); default: the model bundled with the package')
    group.add_argument('--preset', choices=sorted(PRESETS),
                       help='class names, colours and depth range of a published checkpoint '
                            '(default: stored in the checkpoint, or guessed from its shape)')
    group.add_argument('--device', default='auto',
                       help='auto, cpu, cuda or cuda:N (default: %(default)s; auto uses the '
                            'first GPU when there is one)')
    group.add_argument('--backend', default='auto', choices=BACKENDS,
                       help='inference runtime (default: %(default)s: ONNX Runtime on the CPU '
                            'when installed, else PyTorch)')
    group.add_argument('--precision', default='auto', choices=PRECISIONS,
                       help='numeric precision (default: %(default)s: fp16 on GPUs, fp32 on the '
                            'CPU)')
    group.add_argument('--input-size', type=input_size, metavar='HxW',
                       help='run the network at this resolution, e.g. 480x640 (outputs are '
                            'resized back to each image); default: the training size the '
                            'checkpoint records (the bundled model: 96x320), else each image '
                            'at its own size')
    group.add_argument('--threads', type=positive_int, metavar='N',
                       help='CPU threads for inference (default: all cores)')
    group.add_argument('--alpha', type=unit_interval, default=0.5, metavar='A',
                       help='opacity of the segmentation colours in the overlay, 0 (image only) '
                            'to 1 (colours only); default: %(default)s')


def resolve_model_path(model: Optional[str]) -> str:
    """Return the checkpoint to load, or raise ``ToolError`` saying what to do."""
    if model is None:
        path = default_model_path()
        if not os.path.isfile(path):
            raise ToolError(f'the bundled default model is not installed ({path} is missing); '
                            f'reinstall the package or pass --model PATH to a HydraNet '
                            f'checkpoint')
        return path
    if not os.path.exists(model):
        raise ToolError(f'model file {model!r} does not exist; pass --model PATH to a HydraNet '
                        f'checkpoint (.pt from this project, or a published .pth/.ckpt with '
                        f'--preset), or leave --model out to use the bundled model')
    return model


def build_engine(model: Union[str, nn.Module, None], device: str = 'auto',
                 backend: str = 'auto', precision: str = 'auto',
                 input_size: Optional[Tuple[int, int]] = None, threads: Optional[int] = None,
                 preset: Optional[str] = None, overlay_alpha: float = 0.5,
                 fallback_to_cpu: bool = True, cache_dir: Optional[str] = None,
                 backend_options: Optional[Mapping[str, Any]] = None) -> InferenceEngine:
    """Create the engine every tool runs (its plan decides device, backend, precision, size).

    Raise ``ToolError`` for problems users can fix (a bad checkpoint, device, backend,
    precision or input size).
    """
    try:
        return InferenceEngine(model, device=device, backend=backend, precision=precision,
                               input_size=input_size, threads=threads, preset=preset,
                               fallback_to_cpu=fallback_to_cpu, overlay_alpha=overlay_alpha,
                               cache_dir=cache_dir, backend_options=backend_options)
    except (CheckpointError, DeviceError, BackendError, ValueError) as error:
        raise ToolError(str(error)) from error


def engine_from_args(args: argparse.Namespace) -> InferenceEngine:
    """Create the engine the options of :func:`add_engine_arguments` ask for."""
    return build_engine(resolve_model_path(args.model), device=args.device,
                        backend=args.backend, precision=args.precision,
                        input_size=args.input_size, threads=args.threads, preset=args.preset,
                        overlay_alpha=args.alpha)


def engine_line(engine: InferenceEngine) -> str:
    """Return what the tools print about how the model runs: runtime and network input."""
    return f'{engine.describe()}; {engine.network_input_text()}'


def engine_summary(engine: InferenceEngine) -> Dict[str, Any]:
    """Return how the model ran, for summary files: runtime, network input size and why."""
    plan = engine.plan
    return {'runtime': engine.describe(),
            'input_size': list(plan.input_size) if plan.input_size else None,
            'network_input': engine.network_input_text()}
