"""The node's parameters (names, defaults, descriptors, ranges, checks with reasons) and QoS.

The core parameters are declared here; each output adds the parameter that enables it
(``outputs.py``), and ``ParameterTable`` holds them all.
"""
import os
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

from ..engine import BACKENDS, PRECISIONS
from ..engine.depth_rules import DEFAULT_INVALID_DEPTH_CLASSES
from ..engine.devices import device_problem
from ..engine.geometry import POINTS_FIELD_CHOICES
from ..engine.metric_scale import DEPTH_SCALE_CHOICES
from ..engine.run_plan import plan_problem
from ..engine.transport_formats import DEFAULT_DEPTH_QUANTIZATION_M, DEFAULT_JPEG_QUALITY
from ..model import PRESETS

Value = Union[str, bool, int, float, Tuple[str, ...]]
MIN_INFERENCE_SIDE_PX = 32
MAX_INFERENCE_SIDE_PX = 8192
MAX_DEPTH_LIMIT_M = 1000.0
MAX_THREADS = 256
MAX_QOS_DEPTH = 100
MAX_POINTS_DECIMATION = 64
CONFIDENCE_ENCODINGS = ('32FC1', 'mono8')
MIN_INPUT_PIXELS = 64  # 8 x 8, the smallest image the engine takes
MAX_INPUT_PIXELS_LIMIT = 1 << 30  # OpenCV's own limit for decoded images
DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096
MAX_INPUT_TIMEOUT_S = 3600.0
HELP_WIDTH = 99
MAX_BATCH = 64
CAMERA_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*')
PIPELINE_CHOICES = ('auto', 'always', 'never')  # not on/off: YAML reads those as booleans
INPUT_QOS_CHOICES = ('sensor_data', 'reliable', 'best_effort')
OUTPUT_QOS_CHOICES = ('reliable', 'best_effort')
LATCHED_DEPTH = 1
JPEG_QUALITY_RANGE = (1, 100)
MIN_DEPTH_QUANTIZATION_M = 1.0


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter: its default (which fixes its type), description and constraints.

    A tuple default declares a string-array parameter (its value is kept as a tuple).
    """

    name: str
    default: Value
    description: str
    choices: Tuple[str, ...] = ()
    value_range: Optional[Tuple[float, float]] = None
    read_only: bool = False
    rebuilds_engine: bool = False
    constraints: str = ''


CORE_SPECS: Tuple[ParameterSpec, ...] = (
    ParameterSpec('model_path', '', 'HydraNet checkpoint (.pth/.pt, published or project '
                  'format); empty uses the bundled default model', rebuilds_engine=True,
                  constraints='empty or an existing file'),
    ParameterSpec('preset', '', 'Published variant whose class names and colours to use with '
                  'a checkpoint that has none; empty infers it from the weights',
                  choices=('',) + tuple(PRESETS), rebuilds_engine=True),
    ParameterSpec('device', 'auto', 'Inference device: auto (first CUDA GPU, else CPU), cpu, '
                  'cuda or cuda:N', rebuilds_engine=True, constraints='auto, cpu, cuda, cuda:N'),
    ParameterSpec('device_fallback', True, 'Fall back to the CPU (with a warning) when the '
                  'requested CUDA device is unavailable, instead of failing',
                  rebuilds_engine=True),
    ParameterSpec('backend', 'auto', 'Inference backend: auto (ONNX Runtime on the CPU when '
                  'installed, else PyTorch), torch or onnxruntime', choices=BACKENDS,
                  rebuilds_engine=True),
    ParameterSpec('precision', 'auto', 'Numeric precision: auto (fp16 on GPUs, fp32 on the '
                  'CPU), fp32, fp16 or bf16 (the last two on CUDA GPUs)', choices=PRECISIONS,
                  rebuilds_engine=True),
    ParameterSpec('threads', 0, 'CPU threads for inference; 0 lets the backend choose',
                  value_range=(0, MAX_THREADS), rebuilds_engine=True),
    ParameterSpec('inference_width', 0, 'Network input width in pixels (images are resized to '
                  'it, outputs keep the input resolution); 0: the training size the '
                  'checkpoint records (the bundled model: 96x320), else the image size. Takes '
                  'effect when inference_height is set too',
                  value_range=(0, MAX_INFERENCE_SIDE_PX), rebuilds_engine=True,
                  constraints=f'0 or >= {MIN_INFERENCE_SIDE_PX}'),
    ParameterSpec('inference_height', 0, 'Network input height in pixels; 0: as for '
                  'inference_width. Takes effect when inference_width is set too',
                  value_range=(0, MAX_INFERENCE_SIDE_PX), rebuilds_engine=True,
                  constraints=f'0 or >= {MIN_INFERENCE_SIDE_PX}'),
    ParameterSpec('max_input_pixels', DEFAULT_MAX_INPUT_PIXELS, 'Largest image (width x height '
                  'in pixels) processed; bigger frames are rejected on arrival, before decoding '
                  'or inference, so that a huge or lying frame cannot exhaust (GPU) memory',
                  value_range=(MIN_INPUT_PIXELS, MAX_INPUT_PIXELS_LIMIT)),
    ParameterSpec('input_timeout_s', 3.0, 'Warn (log and diagnostics) when no image has arrived '
                  'for this many seconds since the last one (the camera stopped); 0 disables',
                  value_range=(0.0, MAX_INPUT_TIMEOUT_S)),
    ParameterSpec('min_depth_m', 0.0, 'Depths nearer than this are published as NaN; 0 keeps '
                  "the model's minimum", value_range=(0.0, MAX_DEPTH_LIMIT_M)),
    ParameterSpec('max_depth_m', 0.0, 'Depths farther than this are published as NaN; 0 keeps '
                  "the model's maximum (the model's range is never extended)",
                  value_range=(0.0, MAX_DEPTH_LIMIT_M),
                  constraints='0 or greater than min_depth_m'),
    ParameterSpec('confidence_threshold', 0.0, 'Pixels whose confidence (max softmax '
                  'probability) is below this are labelled unlabelled (255, or 65535 for 16UC1); '
                  '0 labels every pixel', value_range=(0.0, 1.0)),
    ParameterSpec('invalid_depth_classes', DEFAULT_INVALID_DEPTH_CLASSES, 'Class names whose '
                  'pixels get NaN depth (REP 118), as do unlabelled pixels; names the model lacks '
                  'are ignored (the default sky matches the bundled and KITTI models, NYUDv2 has '
                  'none). [] keeps the depth of every class',
                  constraints='class names of the model (case-insensitive)'),
    ParameterSpec('min_confidence', 0.0, 'Pixels whose confidence (softmax probability of the '
                  'chosen class) is below this get NaN depth; 0 keeps every pixel',
                  value_range=(0.0, 1.0)),
    ParameterSpec('depth_scale', DEPTH_SCALE_CHOICES[0], 'Metric scale from the intrinsics: '
                  "intrinsics multiplies depth by the camera's focal length over the model's "
                  'training focal length, both in pixels of the network input (once camera_info '
                  'has arrived; models without a recorded training camera are not scaled); none '
                  'publishes the network depth as it is', choices=DEPTH_SCALE_CHOICES),
    ParameterSpec('confidence_encoding', '32FC1', 'Encoding of segmentation/confidence (the '
                  'softmax probability of the chosen class, higher is more reliable): 32FC1 '
                  '(0..1) or mono8 (0..255)', choices=CONFIDENCE_ENCODINGS),
    ParameterSpec('overlay_alpha', 0.5, 'Opacity of the class colours in segmentation/color: '
                  '0 shows the image, 1 only the colours', value_range=(0.0, 1.0)),
    ParameterSpec('points_decimation', 1, 'depth/points keeps every n-th pixel of every n-th '
                  'row (an organised cloud of ceil(H/n) x ceil(W/n) points)',
                  value_range=(1, MAX_POINTS_DECIMATION)),
    ParameterSpec('points_fields', POINTS_FIELD_CHOICES[0], 'Fields of depth/points: pcl (x y z '
                  'float32, rgb packed float32, label uint32, confidence float32) or autoware '
                  '(x y z float32, class_id uint8, probability float32)',
                  choices=POINTS_FIELD_CHOICES),
    ParameterSpec('points_keep_classes', (), 'Class names whose points depth/points keeps; [] '
                  'keeps every class (then points_drop_classes applies)',
                  constraints='class names of the model (case-insensitive)'),
    ParameterSpec('points_drop_classes', (), 'Class names whose points depth/points removes',
                  constraints='class names of the model (case-insensitive)'),
    ParameterSpec('points_min_depth_m', 0.0, 'depth/points removes points nearer than this; 0: '
                  'no bound', value_range=(0.0, MAX_DEPTH_LIMIT_M)),
    ParameterSpec('points_max_depth_m', 0.0, 'depth/points removes points farther than this; 0: '
                  'no bound', value_range=(0.0, MAX_DEPTH_LIMIT_M),
                  constraints='0 or greater than points_min_depth_m'),
    ParameterSpec('points_organized', True, 'depth/points keeps the image grid, with NaN points '
                  'where depth is invalid or a filter removes the point; false leaves those '
                  'points out (an unorganised cloud, height 1)'),
    ParameterSpec('color_jpeg_quality', DEFAULT_JPEG_QUALITY, 'JPEG quality of '
                  'segmentation/color/compressed (1..100, higher is better and larger)',
                  value_range=JPEG_QUALITY_RANGE),
    ParameterSpec('compressed_depth_max_m', 0.0, 'depth/image/compressedDepth marks depths at '
                  'or beyond this as invalid (the depth_max of the plugin); 0: just beyond the '
                  'farthest depth of each frame (every valid pixel kept)',
                  value_range=(0.0, MAX_DEPTH_LIMIT_M)),
    ParameterSpec('compressed_depth_quantization_m', DEFAULT_DEPTH_QUANTIZATION_M, 'Depth at '
                  'which one step of depth/image/compressedDepth is about 1 m (depth_quantization '
                  'of the plugin): with this value q the error at depth d is below '
                  'd^2 / (q (q + 1) - d); '
                  'larger is finer far away but cannot hold depths as near',
                  value_range=(MIN_DEPTH_QUANTIZATION_M, MAX_DEPTH_LIMIT_M)),
    ParameterSpec('pipeline', 'auto', 'Decode and publish each frame on a second thread while '
                  'the network runs the next: more frames per second, but on a CPU with no core '
                  'to spare the two compete (older frames, longer publishing). auto: on when '
                  'the CPU has more cores than inference threads or one inference lane serves '
                  'several cameras (not on CUDA devices)',
                  choices=PIPELINE_CHOICES),
    ParameterSpec('skip_without_subscribers', True, 'Skip inference while no output topic '
                  '(label_info and diagnostics aside) has a subscriber'),
    ParameterSpec('input_qos', 'sensor_data', 'QoS of the image and camera_info subscriptions: '
                  'sensor_data (= best_effort; accepts reliable and best-effort cameras) or '
                  'reliable', choices=INPUT_QOS_CHOICES, read_only=True),
    ParameterSpec('input_qos_depth', 5, 'History depth of the input subscriptions: frames '
                  'waiting for the node, which counts the ones it drops (only the newest frame '
                  'is processed)', value_range=(1, MAX_QOS_DEPTH), read_only=True),
    ParameterSpec('output_qos', 'reliable', 'QoS of the output images: reliable (RViz and '
                  'depth_image_proc subscribe reliable) or best_effort',
                  choices=OUTPUT_QOS_CHOICES, read_only=True),
    ParameterSpec('output_qos_depth', 2, 'History depth of the output publishers',
                  value_range=(1, MAX_QOS_DEPTH), read_only=True),
    ParameterSpec('points_qos', 'best_effort', 'QoS of depth/points: best_effort (as '
                  'depth_image_proc publishes clouds; RViz PointCloud2 displays need their '
                  'reliability set to best effort) or reliable', choices=OUTPUT_QOS_CHOICES,
                  read_only=True),
    ParameterSpec('points_qos_depth', 2, 'History depth of the depth/points publisher',
                  value_range=(1, MAX_QOS_DEPTH), read_only=True),
    ParameterSpec('use_compressed_input', False, 'Subscribe to <image>/compressed '
                  '(sensor_msgs/CompressedImage, jpeg or png) instead of the raw image topic',
                  read_only=True),
    ParameterSpec('cameras', (), 'Camera names; each subscribes <name>/image and '
                  '<name>/camera_info and publishes every output under <name>/ '
                  '(front/depth/image, ...). Empty: one camera on image and camera_info',
                  read_only=True,
                  constraints='distinct names of letters, digits, _ and /'),
    ParameterSpec('max_batch', 0, 'Most frames (one per camera) run through the network in one '
                  'batch; 0: the number of cameras', value_range=(0, MAX_BATCH), read_only=True),
    ParameterSpec('inference_lanes', 0, 'Inference threads serving the cameras at once, each '
                  'over its share of them (ONNX Runtime on the CPU only; elsewhere one); 0: '
                  'auto (one per camera)',
                  value_range=(0, MAX_BATCH), read_only=True),
    ParameterSpec('autostart', True, 'Configure and activate the lifecycle node at start; '
                  'false waits for a lifecycle manager', read_only=True),
)


class NodeSettings:
    """Validated values of every parameter, read as attributes (``settings.device``)."""

    __slots__ = ('_values',)

    def __init__(self, values: Mapping[str, Value]) -> None:
        object.__setattr__(self, '_values', dict(values))

    def __getattr__(self, name: str) -> Value:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f'no parameter {name!r}') from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError('NodeSettings is read-only; use replace()')

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NodeSettings) and self._values == other._values

    def __repr__(self) -> str:
        return f'NodeSettings({self._values!r})'

    def as_dict(self) -> Dict[str, Value]:
        """Return a copy of the values by parameter name."""
        return dict(self._values)

    def replace(self, changes: Mapping[str, Value]) -> 'NodeSettings':
        """Return a copy with some values changed."""
        return NodeSettings({**self._values, **changes})

    @property
    def inference_size(self) -> Optional[Tuple[int, int]]:
        """Return (height, width) of the network input, or None when not set."""
        if self.inference_width and self.inference_height:
            return (self.inference_height, self.inference_width)
        return None


class ParameterTable:
    """Every parameter of the node: declared, checked and turned into ``NodeSettings``."""

    def __init__(self, specs: Iterable[ParameterSpec]) -> None:
        self.specs: Tuple[ParameterSpec, ...] = tuple(specs)
        self.by_name: Dict[str, ParameterSpec] = {spec.name: spec for spec in self.specs}
        if len(self.by_name) != len(self.specs):
            raise ValueError('parameter names must be unique')
        self.engine_parameters: FrozenSet[str] = frozenset(
            spec.name for spec in self.specs if spec.rebuilds_engine)

    def defaults(self) -> NodeSettings:
        """Return the settings made of every default."""
        return NodeSettings({spec.name: spec.default for spec in self.specs})

    def cameras(self, settings: NodeSettings) -> Tuple[str, ...]:
        """Return the camera prefixes: the named cameras, or one unnamed camera ('')."""
        return tuple(settings.cameras) or ('',)

    def engine_key(self, settings: NodeSettings) -> tuple:
        """Return the values that define an engine; a change needs a new engine."""
        sized = ('inference_width', 'inference_height')
        return tuple(getattr(settings, name) for name in sorted(self.engine_parameters)
                     if name not in sized) + (settings.inference_size,)

    def check_value(self, name: str, value: Any, check_files: bool = True) -> Optional[str]:
        """Return why ``value`` is invalid for parameter ``name``, or None when it is valid."""
        spec = self.by_name.get(name)
        if spec is None:
            return f'unknown parameter {name!r}'
        if isinstance(spec.default, tuple):
            return _string_array_problem(name, value)
        if type(value) is not type(spec.default):
            return (f'{name} must be a {_type_name(spec.default)}, got {_type_name(value)} '
                    f'{value!r}')
        if spec.choices and value not in spec.choices:
            shown = ', '.join(repr(c) if c == '' else c for c in spec.choices)
            return f'{name} {value!r} is not one of {shown}'
        if spec.value_range is not None:
            low, high = spec.value_range
            if not low <= value <= high:
                return f'{name} {value} is outside [{low}, {high}]'
        if name == 'device':
            return device_problem(value)
        if name in ('inference_width', 'inference_height') and \
                0 < value < MIN_INFERENCE_SIDE_PX:
            return f'{name} {value} must be 0 (automatic) or >= {MIN_INFERENCE_SIDE_PX} px'
        if name == 'model_path' and value and check_files:
            path = os.path.expanduser(value)
            if not os.path.isfile(path):
                return f'model_path {value!r} is not an existing file'
        return None

    def check_settings(self, settings: NodeSettings) -> Optional[str]:
        """Return why a combination of values is invalid, or None."""
        if settings.max_depth_m and settings.max_depth_m <= settings.min_depth_m:
            return (f'max_depth_m {settings.max_depth_m} must be greater than min_depth_m '
                    f'{settings.min_depth_m} (or 0 for the model maximum)')
        if settings.points_max_depth_m and \
                settings.points_max_depth_m <= settings.points_min_depth_m:
            return (f'points_max_depth_m {settings.points_max_depth_m} must be greater than '
                    f'points_min_depth_m {settings.points_min_depth_m} (or 0 for no bound)')
        return plan_problem(settings.device, settings.backend, settings.precision)


def _string_array_problem(name: str, value: Any) -> Optional[str]:
    """Return why ``value`` is not a valid string array for ``name`` (cameras: names too)."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return f'{name} must be a string array, got {_type_name(value)} {value!r}'
    if name == 'cameras':
        bad = [v for v in value if not CAMERA_NAME.fullmatch(v)]
        if bad:
            return (f'cameras {bad!r}: a camera name is a relative topic prefix (letters, '
                    f'digits, _ and /, not starting with a digit), e.g. front or arm/left')
        if len(set(value)) != len(value):
            return f'cameras {list(value)!r} names a camera twice'
    return None


def normalised(value: Any, spec: Optional[ParameterSpec] = None) -> Value:
    """Return a parameter value as settings keep it (string arrays as tuples).

    A params file's empty list (``cameras: []``) reaches rclpy without a type, as None.
    """
    if value is None and spec is not None and isinstance(spec.default, tuple):
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else value


def declared_default(spec: ParameterSpec) -> Any:
    """Return the default as rclpy declares it.

    rclpy types a parameter by its default and takes ``[]`` for a byte array: a string array
    is declared by its type (its value stays unset, read as the empty default).
    """
    if isinstance(spec.default, tuple):
        return list(spec.default) if spec.default else Parameter.Type.STRING_ARRAY
    return spec.default


def _type_name(value: Any) -> str:
    return {bool: 'bool', int: 'integer', float: 'double', str: 'string'}.get(
        type(value), type(value).__name__)


def descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    """Return the ROS descriptor of a parameter: description, range, read-only flag."""
    constraints = spec.constraints
    if spec.choices:
        constraints = 'one of: ' + ', '.join(repr(c) if c == '' else c for c in spec.choices)
    result = ParameterDescriptor(name=spec.name, description=spec.description,
                                 additional_constraints=constraints, read_only=spec.read_only)
    if isinstance(spec.default, tuple):
        result.type = ParameterType.PARAMETER_STRING_ARRAY
    if spec.value_range is not None:
        low, high = spec.value_range
        if isinstance(spec.default, float):
            result.floating_point_range = [FloatingPointRange(
                from_value=float(low), to_value=float(high), step=0.0)]
        else:
            result.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return result


def asks_for_help(argv: Sequence[str]) -> bool:
    """Whether the command line (program name first) asks for -h/--help before --ros-args."""
    own = list(argv[1:])
    if '--ros-args' in own:
        own = own[:own.index('--ros-args')]
    return bool({'-h', '--help'} & set(own))


def usage_text(table: ParameterTable, output_topics: Sequence[str]) -> str:
    """Return the node's command line and every parameter with its default and description."""
    wrap = textwrap.TextWrapper(width=HELP_WIDTH, initial_indent='      ',
                                subsequent_indent='      ')
    lines: List[str] = [
        'usage: hydranet_node [-h] [--ros-args [-p NAME:=VALUE ...] [--params-file FILE] '
        '[-r FROM:=TO ...]]', '']
    lines += textwrap.wrap(
        'Metric depth and semantic segmentation (HydraNet) from a camera, as a ROS 2 lifecycle '
        'node. Subscribes to image (or image/compressed) and camera_info; publishes '
        + ', '.join(output_topics) + ', segmentation/label_info and /diagnostics. The shipped '
        'parameters file is config/hydranet.yaml in the package share directory.',
        HELP_WIDTH)
    lines += ['', 'parameters (-p NAME:=VALUE):']
    for spec in table.specs:
        default = repr(spec.default) if isinstance(spec.default, str) else spec.default
        flag = ' [read-only]' if spec.read_only else ''
        lines.append(f'  {spec.name} (default {default}){flag}')
        lines += wrap.wrap(spec.description)
    return '\n'.join(lines)


def input_qos(name: str, depth: int) -> QoSProfile:
    """Return the subscription QoS for camera topics.

    ``sensor_data`` (best effort, volatile, as rclpy's profile but with ``depth``) accepts both
    best-effort and reliable publishers; ``best_effort`` is its other name; ``reliable`` matches
    reliable publishers only and lets the publisher retransmit lost fragments.
    """
    if name not in INPUT_QOS_CHOICES:
        raise ValueError(f'unknown input QoS {name!r}; use one of {", ".join(INPUT_QOS_CHOICES)}')
    if name == 'reliable':
        return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=qos_profile_sensor_data.reliability,
                      durability=qos_profile_sensor_data.durability)


def output_qos(name: str, depth: int) -> QoSProfile:
    """Return the publisher QoS for images: reliable (RViz, depth_image_proc) or best effort."""
    if name not in OUTPUT_QOS_CHOICES:
        raise ValueError(
            f'unknown output QoS {name!r}; use one of {", ".join(OUTPUT_QOS_CHOICES)}')
    reliability = (ReliabilityPolicy.RELIABLE if name == 'reliable'
                   else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


def latched_qos() -> QoSProfile:
    """Return the QoS of class metadata: reliable and transient local, so late joiners get it."""
    return QoSProfile(depth=LATCHED_DEPTH, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)
