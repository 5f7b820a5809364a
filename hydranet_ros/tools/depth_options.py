"""The node's depth rules in the tools: command-line options and their application per frame.

``hydranet-infer`` and ``hydranet-bag`` apply the rules of ``engine.depth_rules`` as the node
does (sky and unlabelled pixels NaN, ``--min-confidence``, the metric scale from the camera's
focal length). The focal length comes from ``--focal-px`` or, in a bag, from the recorded
camera_info; without one, depth is not rescaled.
"""
import argparse
import logging
from typing import Optional, Sequence, Set, Tuple

from ..engine import InferenceEngine
from ..engine.depth_rules import apply_depth_rules, class_ids, DEFAULT_INVALID_DEPTH_CLASSES, \
    depth_rules
from ..engine.geometry import PinholeIntrinsics
from ..engine.metric_scale import DEPTH_SCALE_CHOICES, focal_mismatch, intrinsics_scale, \
    training_camera
from ..engine.prediction import Prediction
from .engine_options import unit_interval

LOGGER = logging.getLogger('hydranet_ros.tools')
FALLBACK_HFOV_FOCAL_PER_WIDTH = 0.866  # 60 degrees horizontal field of view: 0.5 / tan(30 deg)

Focal = Tuple[float, float]


def focal_lengths(text: str) -> Focal:
    """Parse ``FX`` or ``FX,FY`` (pixels, > 0) for argparse."""
    try:
        values = [float(part) for part in text.split(',')]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) <= 0.0:
        raise argparse.ArgumentTypeError(f'expected FX or FX,FY in pixels (> 0), got {text!r}')
    return (values[0], values[-1])


def class_list(text: str) -> Tuple[str, ...]:
    """Parse a comma-separated list of class names ('' for none)."""
    return tuple(name.strip() for name in text.split(',') if name.strip())


def add_depth_arguments(parser: argparse.ArgumentParser, with_focal: bool = True) -> None:
    """Add the options of the depth rules (the node's parameters of the same names)."""
    group = parser.add_argument_group('trusted depth (as the node does it)')
    group.add_argument('--invalid-depth-classes', type=class_list,
                       default=DEFAULT_INVALID_DEPTH_CLASSES, metavar='LIST',
                       help='comma-separated class names whose pixels get NaN depth, as do '
                            'unlabelled pixels; names the model lacks are ignored (default: '
                            "%(default)s; '' keeps every class)")
    group.add_argument('--min-confidence', type=unit_interval, default=0.0, metavar='P',
                       help='NaN depth where the confidence (softmax probability of the chosen '
                            'class) is below P (default: %(default)s, off)')
    group.add_argument('--depth-scale', choices=DEPTH_SCALE_CHOICES,
                       default=DEPTH_SCALE_CHOICES[0],
                       help="intrinsics: rescale depth by the camera's focal length over the "
                            "model's training focal length when a focal length is known "
                            '(default: %(default)s); none: the network depth as it is')
    if with_focal:
        group.add_argument('--focal-px', type=focal_lengths, metavar='FX[,FY]',
                           help='focal length of the camera in pixels at the image size (the '
                                'camera_info K); without it depth is not rescaled and point '
                                "files assume the training camera's field of view")


class ToolDepthRules:
    """Applies the depth rules of the options to each frame of one engine."""

    def __init__(self, args: argparse.Namespace, engine: InferenceEngine) -> None:
        self.engine = engine
        self.invalid_classes: Sequence[str] = args.invalid_depth_classes
        self.min_confidence: float = args.min_confidence
        self.depth_scale: str = args.depth_scale
        self.focal: Optional[Focal] = getattr(args, 'focal_px', None)
        self._warned: Set[object] = set()
        unknown = class_ids(engine.config, self.invalid_classes)[1]
        if unknown and tuple(self.invalid_classes) != DEFAULT_INVALID_DEPTH_CLASSES:
            LOGGER.warning('--invalid-depth-classes: the model has no class %s; ignored',
                           ', '.join(map(repr, unknown)))

    def scale(self, image_size: Tuple[int, int], focal: Optional[Focal] = None) -> float:
        """Return the depth factor for an image of ``image_size`` (height, width)."""
        focal = focal or self.focal
        if focal is None:
            return 1.0
        trained = training_camera(self.engine.config)
        scale = intrinsics_scale(trained, focal[0], focal[1], image_size,
                                 self.engine.plan.input_size)
        if self.depth_scale == 'intrinsics':
            return scale
        if trained is not None and focal_mismatch(scale) and round(scale, 2) not in self._warned:
            self._warned.add(round(scale, 2))
            LOGGER.warning("the camera's focal length is %.2fx the training camera's (%s) and "
                           '--depth-scale is none: depth is off by about that factor',
                           scale, trained.describe())
        return 1.0

    def apply(self, prediction: Prediction, focal: Optional[Focal] = None) -> Prediction:
        """Apply the rules to one prediction in place; ``focal`` overrides ``--focal-px``."""
        scale = self.scale(prediction.depth.shape, focal)
        return apply_depth_rules(prediction, depth_rules(
            self.engine.config, self.invalid_classes, self.min_confidence, scale=scale))

    def intrinsics(self, image_size: Tuple[int, int],
                   focal: Optional[Focal] = None) -> PinholeIntrinsics:
        """Return K for back-projecting an image of ``image_size`` (principal point centred).

        Without a focal length: the training camera's field of view, else 60 degrees.
        """
        height, width = image_size
        focal = focal or self.focal
        if focal is None:
            trained = training_camera(self.engine.config)
            per_width = (trained.focal_length_px / trained.image_size[1] if trained
                         else FALLBACK_HFOV_FOCAL_PER_WIDTH)
            focal = (per_width * width, per_width * width)
        return PinholeIntrinsics(focal[0], focal[1], (width - 1) / 2.0, (height - 1) / 2.0)
