"""The node's outputs: one declaration each (parameter, topic, type, QoS, builder).

Adding an output is one ``OutputDeclaration`` in ``OUTPUT_DECLARATIONS`` and its builder, a
function of one processed frame (``OutputFrame``) that returns the message, or the serialised
bytes, to publish. ``Outputs`` creates and destroys the publishers as the enabling parameters
change, builds an output only while someone subscribes, and also owns the latched class map
(``segmentation/label_info``) and the camera_info scaled to the output size.
"""
import copy
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from rclpy.publisher import Publisher
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from hydranet_ros.msg import DepthSegmentation, LabelInfo, SegmentationClass

from ..engine import overlay_labels
from ..engine.class_map import class_name, model_name, unlabeled_id
from ..engine.depth_rules import apply_depth_rules, class_ids, DepthRules
from ..engine.geometry import build_cloud, CloudFilter, PinholeIntrinsics
from ..engine.prediction import Prediction
from ..engine.transport_formats import compressed_depth, jpeg_compressed, png_compressed
from ..model import HydraNetConfig
from .messages import array_to_image, serialize_compressed, serialize_image, serialize_point_cloud
from .parameters import NodeSettings, ParameterSpec, latched_qos, output_qos

CONFIDENCE_MONO8_SCALE = 255.0


@dataclass
class OutputFrame:
    """One processed frame, as the builders see it (arrays at the input's resolution)."""

    header: Header
    rgb: np.ndarray
    prediction: Prediction
    camera_info: Optional[CameraInfo]
    settings: NodeSettings
    colors: np.ndarray
    width: int
    height: int
    config: Optional[HydraNetConfig] = None

    @cached_property
    def cloud_filter(self) -> CloudFilter:
        """The class and depth filters of depth/points, with class ids of the serving model."""
        settings = self.settings
        keep, drop = (), ()
        if self.config is not None:
            keep = class_ids(self.config, settings.points_keep_classes)[0]
            drop = class_ids(self.config, settings.points_drop_classes)[0]
            if settings.points_keep_classes and not keep:
                keep = (unlabeled_id(self.prediction.labels.dtype),)  # none known: keep none
        return CloudFilter(keep, drop, settings.points_min_depth_m, settings.points_max_depth_m)

    @cached_property
    def overlay(self) -> np.ndarray:
        """The class colours blended over the image (rgb8), made once for both colour outputs."""
        return overlay_labels(self.rgb, self.prediction.labels, self.colors,
                              self.settings.overlay_alpha)

    @cached_property
    def labels_encoding(self) -> str:
        """mono8 for uint8 labels, 16UC1 above 255 classes."""
        return 'mono8' if self.prediction.labels.dtype == np.uint8 else '16UC1'

    @cached_property
    def confidence_pixels(self) -> np.ndarray:
        """Confidence as ``confidence_encoding`` wants it: 32FC1 0..1, or mono8 0..255."""
        confidence = self.prediction.confidence
        if self.settings.confidence_encoding == '32FC1':
            return confidence
        scaled = np.clip(confidence, 0.0, 1.0) * np.float32(CONFIDENCE_MONO8_SCALE)
        return np.rint(scaled).astype(np.uint8)


Builder = Callable[[OutputFrame], Any]


@dataclass(frozen=True)
class OutputDeclaration:
    """An output: the parameter that enables it, its topic and type, QoS and builder.

    ``qos`` names the pair of parameters that give the publisher's QoS (``output_qos`` and
    ``output_qos_depth``); ``needs_camera_info`` outputs are skipped until one has arrived.
    """

    name: str
    parameter: ParameterSpec
    topic: str
    msg_type: type
    build: Builder
    qos: str = 'output_qos'
    needs_camera_info: bool = False


def _depth(frame: OutputFrame) -> bytes:
    return serialize_image(frame.prediction.depth, '32FC1', frame.header)


def _labels(frame: OutputFrame) -> bytes:
    return serialize_image(frame.prediction.labels, frame.labels_encoding, frame.header)


def _confidence(frame: OutputFrame) -> bytes:
    return serialize_image(frame.confidence_pixels, frame.settings.confidence_encoding,
                           frame.header)


def _color(frame: OutputFrame) -> bytes:
    return serialize_image(frame.overlay, 'rgb8', frame.header)


def _labels_compressed(frame: OutputFrame) -> bytes:
    """PNG of the labels: lossless, as image_transport's compressed plugin writes it."""
    payload = png_compressed(frame.prediction.labels, frame.labels_encoding)
    return serialize_compressed(payload.format, payload.data, frame.header)


def _color_compressed(frame: OutputFrame) -> bytes:
    """JPEG of the overlay, as image_transport's compressed plugin writes it."""
    payload = jpeg_compressed(frame.overlay, 'rgb8', frame.settings.color_jpeg_quality)
    return serialize_compressed(payload.format, payload.data, frame.header)


def _depth_compressed(frame: OutputFrame) -> bytes:
    """Quantised inverse depth in a 16-bit PNG, as compressed_depth_image_transport writes."""
    settings = frame.settings
    payload = compressed_depth(frame.prediction.depth, settings.compressed_depth_max_m,
                               settings.compressed_depth_quantization_m)
    return serialize_compressed(payload.format, payload.data, frame.header)


def _points(frame: OutputFrame) -> bytes:
    """Back-project the published depth through the published camera_info's K."""
    settings, prediction = frame.settings, frame.prediction
    cloud = build_cloud(prediction.depth, PinholeIntrinsics.from_k(frame.camera_info.k),
                        prediction.labels, prediction.confidence, frame.rgb,
                        settings.points_fields, settings.points_decimation, frame.cloud_filter,
                        settings.points_organized)
    return serialize_point_cloud(cloud, frame.header)


def _camera_info(frame: OutputFrame) -> CameraInfo:
    return frame.camera_info


def _bundle(frame: OutputFrame) -> DepthSegmentation:
    info = frame.camera_info or CameraInfo(header=frame.header, width=frame.width,
                                           height=frame.height)
    return DepthSegmentation(
        header=frame.header, depth=array_to_image(frame.prediction.depth, '32FC1', frame.header),
        labels=array_to_image(frame.prediction.labels, frame.labels_encoding, frame.header),
        confidence=array_to_image(frame.confidence_pixels, frame.settings.confidence_encoding,
                                  frame.header),
        camera_info=info)


def _enable(name: str, description: str) -> ParameterSpec:
    return ParameterSpec(f'publish_{name}', True, description)


OUTPUT_DECLARATIONS: Tuple[OutputDeclaration, ...] = (
    OutputDeclaration('depth', _enable('depth', 'Publish depth/image (32FC1 metres, NaN '
                                                'invalid)'),
                      'depth/image', Image, _depth),
    OutputDeclaration('camera_info', _enable('camera_info', 'Publish depth/camera_info (once '
                                                            'camera_info has been received)'),
                      'depth/camera_info', CameraInfo, _camera_info, needs_camera_info=True),
    OutputDeclaration('labels', _enable('labels', 'Publish segmentation/labels (mono8, 16UC1 '
                                                  'above 255 classes)'),
                      'segmentation/labels', Image, _labels),
    OutputDeclaration('color', _enable('color', 'Publish segmentation/color (rgb8 overlay for '
                                                'people; computed only while subscribed)'),
                      'segmentation/color', Image, _color),
    OutputDeclaration('confidence', _enable('confidence', 'Publish segmentation/confidence '
                                                          '(softmax probability of the chosen '
                                                          'class, 0..1, higher is more '
                                                          'reliable)'),
                      'segmentation/confidence', Image, _confidence),
    OutputDeclaration('bundle', _enable('bundle', 'Publish perception (hydranet_ros/'
                                                  'DepthSegmentation: depth, labels, confidence '
                                                  'and camera_info of one frame)'),
                      'perception', DepthSegmentation, _bundle),
    OutputDeclaration('points', ParameterSpec('publish_points', False, 'Publish depth/points '
                                              '(sensor_msgs/PointCloud2: the published depth '
                                              'back-projected through depth/camera_info, with '
                                              'labels and confidence; needs camera_info)'),
                      'depth/points', PointCloud2, _points, qos='points_qos',
                      needs_camera_info=True),
    OutputDeclaration('labels_compressed', ParameterSpec(
        'publish_labels_compressed', False, 'Publish segmentation/labels/compressed '
        '(sensor_msgs/CompressedImage: PNG, lossless, as the compressed plugin of '
        'image_transport writes it)'),
        'segmentation/labels/compressed', CompressedImage, _labels_compressed),
    OutputDeclaration('color_compressed', ParameterSpec(
        'publish_color_compressed', False, 'Publish segmentation/color/compressed '
        '(sensor_msgs/CompressedImage: JPEG of the overlay at color_jpeg_quality)'),
        'segmentation/color/compressed', CompressedImage, _color_compressed),
    OutputDeclaration('depth_compressed', ParameterSpec(
        'publish_depth_compressed', False, 'Publish depth/image/compressedDepth '
        '(sensor_msgs/CompressedImage: quantised inverse depth in a 16-bit PNG, as '
        'compressed_depth_image_transport writes it)'),
        'depth/image/compressedDepth', CompressedImage, _depth_compressed),
)
OUTPUT_PARAMETERS: Tuple[ParameterSpec, ...] = tuple(o.parameter for o in OUTPUT_DECLARATIONS)


@dataclass
class Outputs:
    """The publishers of one camera's outputs (topics under ``prefix``) and its class map."""

    node: Any
    prefix: str = ''
    lock: threading.RLock = field(default_factory=threading.RLock)
    _publishers: Dict[str, Publisher] = field(default_factory=dict)
    _label_info: Optional[Publisher] = None
    _scaled_info: Dict[tuple, CameraInfo] = field(default_factory=dict)
    _frame_id: Optional[str] = None

    def topic(self, name: str) -> str:
        """Return the relative topic of an output of this camera."""
        prefix = self.prefix.strip('/')
        return f'{prefix}/{name}' if prefix else name

    def sync(self, settings: NodeSettings) -> None:
        """Create the publishers of enabled outputs and destroy those of disabled ones."""
        with self.lock:
            if self._label_info is None:
                self._label_info = self.node.create_publisher(
                    LabelInfo, self.topic('segmentation/label_info'), latched_qos())
            for output in OUTPUT_DECLARATIONS:
                enabled = bool(getattr(settings, output.parameter.name))
                if enabled and output.name not in self._publishers:
                    qos = output_qos(getattr(settings, output.qos),
                                     getattr(settings, output.qos + '_depth'))
                    self._publishers[output.name] = self.node.create_publisher(
                        output.msg_type, self.topic(output.topic), qos)
                elif not enabled and output.name in self._publishers:
                    self.node.destroy_publisher(self._publishers.pop(output.name))

    def _subscribed(self) -> List[Tuple[OutputDeclaration, Publisher]]:
        result = []
        for output in OUTPUT_DECLARATIONS:
            publisher = self._publishers.get(output.name)
            if publisher is not None and publisher.get_subscription_count() > 0:
                result.append((output, publisher))
        return result

    def any_subscribed(self) -> bool:
        """Whether any output has a subscriber."""
        with self.lock:
            return bool(self._subscribed())

    def publish(self, frame: OutputFrame) -> None:
        """Build and publish every subscribed output of one frame."""
        with self.lock:
            for output, publisher in self._subscribed():
                if output.needs_camera_info and frame.camera_info is None:
                    continue
                publisher.publish(output.build(frame))

    def camera_info_for(self, info: Optional[CameraInfo], header: Header, width: int,
                        height: int) -> Optional[CameraInfo]:
        """Return ``info`` scaled to the output size, carrying the frame's header."""
        if info is None:
            return None
        key = (id(info), width, height)
        scaled = self._scaled_info.get(key)
        if scaled is None:
            self._scaled_info.clear()
            scaled = self._scaled_info[key] = scale_camera_info(info, width, height)
        scaled.header = header
        return scaled

    def frame_id_changed(self, frame_id: str) -> bool:
        """Remember the camera's frame id; return whether it differs from the last one."""
        changed, self._frame_id = frame_id != self._frame_id, frame_id
        return changed

    def publish_label_info(self, engine, model_path: str, settings: NodeSettings,
                           stamp) -> None:
        """Publish the class map of the serving model (latched)."""
        publisher = self._label_info
        if publisher is None:
            return
        config = engine.config
        low, high = effective_depth_range(config.min_depth_m, config.max_depth_m,
                                          settings.min_depth_m, settings.max_depth_m)
        publisher.publish(class_map_message(
            config, engine.colors, Header(stamp=stamp, frame_id=self._frame_id or ''),
            settings.confidence_threshold, unlabeled_id(engine.labels_dtype),
            model_name(model_path), low, high))

    def destroy(self) -> None:
        """Destroy every publisher."""
        with self.lock:
            for publisher in list(self._publishers.values()) + [self._label_info]:
                if publisher is not None:
                    self.node.destroy_publisher(publisher)
            self._publishers.clear()
            self._label_info = None
            self._scaled_info.clear()


def class_map_message(config, colors: np.ndarray, header: Header, threshold: float,
                      unlabeled: int, name: str, min_depth_m: float,
                      max_depth_m: float) -> LabelInfo:
    """Return the class map: id, name and overlay colour of every class, and the depth range."""
    class_map = [SegmentationClass(class_id=i, class_name=class_name(config, i),
                                   r=int(colors[i][0]), g=int(colors[i][1]), b=int(colors[i][2]))
                 for i in range(config.num_classes)]
    return LabelInfo(header=header, class_map=class_map, threshold=float(threshold),
                     unlabeled_id=unlabeled, model_name=name, min_depth_m=float(min_depth_m),
                     max_depth_m=float(max_depth_m))


def output_rules(settings: NodeSettings, config: Optional[HydraNetConfig] = None,
                 scale: float = 1.0) -> DepthRules:
    """Return the depth rules of the parameters (class names resolved for ``config``)."""
    invalid = class_ids(config, settings.invalid_depth_classes)[0] if config else ()
    return DepthRules(invalid, settings.min_confidence, settings.min_depth_m,
                      settings.max_depth_m, settings.confidence_threshold, scale)


def limit_outputs(prediction: Prediction, settings: NodeSettings,
                  config: Optional[HydraNetConfig] = None, scale: float = 1.0) -> None:
    """Apply the parameters' depth rules (``engine.depth_rules``) to a prediction, in place.

    Low-confidence labels become unlabelled; depth is scaled, then NaN for invalid classes,
    unlabelled or low-confidence pixels and outside the depth range.
    """
    apply_depth_rules(prediction, output_rules(settings, config, scale))


def effective_depth_range(model_min_m: float, model_max_m: float, min_override_m: float,
                          max_override_m: float) -> Tuple[float, float]:
    """Return the published depth range: the model's, narrowed by non-zero overrides."""
    low = max(model_min_m, min_override_m) if min_override_m > 0.0 else model_min_m
    high = min(model_max_m, max_override_m) if max_override_m > 0.0 else model_max_m
    return low, high


def scale_camera_info(info: CameraInfo, width: int, height: int) -> CameraInfo:
    """Return a copy of ``info`` describing the same camera at ``width`` x ``height`` pixels.

    Pixel centres are at integer coordinates (as in OpenCV), so a principal point scales as
    ``(c + 0.5) * s - 0.5``; focal lengths and the projection's translation scale by ``s``.
    Binning is folded into the scale (the result has binning 0) and the ROI is scaled.
    """
    scaled = copy.deepcopy(info)
    if info.width == 0 or info.height == 0 or (info.width, info.height) == (width, height):
        scaled.width, scaled.height = width, height
        return scaled
    scale_x = width / float(info.width)
    scale_y = height / float(info.height)
    k = list(info.k)
    k[0] *= scale_x
    k[1] *= scale_x
    k[2] = (k[2] + 0.5) * scale_x - 0.5
    k[4] *= scale_y
    k[5] = (k[5] + 0.5) * scale_y - 0.5
    scaled.k = k
    p = list(info.p)
    p[0] *= scale_x
    p[1] *= scale_x
    p[2] = (p[2] + 0.5) * scale_x - 0.5
    p[3] *= scale_x
    p[5] *= scale_y
    p[6] = (p[6] + 0.5) * scale_y - 0.5
    p[7] *= scale_y
    scaled.p = p
    scaled.width, scaled.height = width, height
    scaled.binning_x = scaled.binning_y = 0
    roi = scaled.roi
    roi.x_offset = int(round(info.roi.x_offset * scale_x))
    roi.y_offset = int(round(info.roi.y_offset * scale_y))
    roi.width = int(round(info.roi.width * scale_x))
    roi.height = int(round(info.roi.height * scale_y))
    return scaled
