"""Per camera: the depth scale from its camera_info, and warnings about the depth rules.

The rules themselves are the engine's (``engine.depth_rules``, ``engine.metric_scale``); this
module gives them the camera's published calibration and logs, once each, what a user must
know: a camera whose focal length differs from the training camera's by more than 30% while
``depth_scale`` is ``none``, and class names (in ``invalid_depth_classes`` or the
``points_*_classes`` filters) that the serving model does not have.
"""
import threading
from typing import Callable, Hashable, Optional, Set, Tuple

from sensor_msgs.msg import CameraInfo

from ..engine.depth_rules import class_ids, DEFAULT_INVALID_DEPTH_CLASSES
from ..engine.metric_scale import focal_mismatch, intrinsics_scale, training_camera
from .parameters import NodeSettings

CLASS_PARAMETERS = ('invalid_depth_classes', 'points_keep_classes', 'points_drop_classes')


class DepthTrust:
    """Computes each frame's depth scale and warns once per camera, model and value."""

    def __init__(self, logger: Callable[[], object]) -> None:
        self._logger = logger
        self._warned: Set[Hashable] = set()
        self._lock = threading.Lock()

    def _warn_once(self, key: Hashable, text: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        self._logger().warning(text)

    def scale(self, camera: str, settings: NodeSettings, engine,
              info: Optional[CameraInfo], width: int, height: int) -> float:
        """Return the factor for this frame's depth (1 without camera_info or when off)."""
        self._check_class_names(settings, engine.config)
        if info is None:
            return 1.0
        trained = training_camera(engine.config)
        scale = intrinsics_scale(trained, float(info.k[0]), float(info.k[4]), (height, width),
                                 engine.plan.input_size)
        if settings.depth_scale == 'intrinsics':
            return scale
        if trained is not None and focal_mismatch(scale):
            self._warn_once(('focal', camera, id(engine), round(scale, 2)), (
                f'camera {camera or "image"}: its focal length is {scale:.2f}x the training '
                f"camera's ({trained.describe()}) at the network input, and depth_scale is "
                f'none: depth is off by about that factor; set depth_scale to intrinsics'))
        return 1.0

    def _check_class_names(self, settings: NodeSettings, config) -> None:
        for name in CLASS_PARAMETERS:
            names: Tuple[str, ...] = tuple(getattr(settings, name))
            if name == 'invalid_depth_classes' and names == DEFAULT_INVALID_DEPTH_CLASSES:
                continue  # the default names the sky of the models that have one
            unknown = class_ids(config, names)[1]
            if unknown:
                self._warn_once(('classes', name, names, id(config)), (
                    f'{name}: the model has no class {", ".join(map(repr, unknown))}; ignored '
                    f'(its classes are listed on segmentation/label_info)'))
