"""hydranet_demo_source: publish sample scenes on ``image`` and ``camera_info`` like a camera.

Publishes the shipped sample images (hydranet_ros/assets/samples) or, with ``source:
generated`` (or when no sample is installed), procedurally rendered street scenes, at
``rate_hz`` with fresh stamps, frame ``camera_optical_frame`` and a pinhole camera_info
(the generator's K, or a ``hfov_deg`` field of view for the samples). Each image is shown for
``seconds_per_image`` before the next.
"""
import glob
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

import cv2
import rclpy
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
# RCLError (what rcl raises when the context is shut down under a call) has no public name.
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ..engine.memory import keep_large_buffers
from ..signals import record_stop_signals
from .messages import array_to_image, encode_compressed

SAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'assets', 'samples')
DEFAULT_HFOV_DEG = 60.0
GENERATED_DEFAULT_SIZE = (480, 640)
MAX_RATE_HZ = 200.0
MAX_SIDE_PX = 8192
QOS_CHOICES = ('reliable', 'best_effort')
SOURCE_CHOICES = ('samples', 'generated')
ENCODING_CHOICES = ('rgb8', 'bgr8')
COMPRESSED_FORMATS = ('png', 'jpeg')


@dataclass
class DemoFrame:
    """One picture to publish (RGB) and its camera matrix."""

    name: str
    image_rgb: np.ndarray
    camera_matrix: np.ndarray


def pinhole_matrix(width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    """Return K of an ideal pinhole camera with square pixels and a centred principal point."""
    focal = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
    return np.array([[focal, 0.0, (width - 1) / 2.0],
                     [0.0, focal, (height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


def camera_info_message(camera_matrix: np.ndarray, width: int, height: int,
                        frame_id: str) -> CameraInfo:
    """Return an undistorted, rectified camera_info for K."""
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.header.frame_id = frame_id
    info.d = [0.0] * 5
    info.k = [float(v) for v in camera_matrix.ravel()]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [info.k[0], info.k[1], info.k[2], 0.0,
              info.k[3], info.k[4], info.k[5], 0.0,
              0.0, 0.0, 1.0, 0.0]
    return info


def sample_paths(paths: List[str]) -> List[str]:
    """Return the images to publish: ``paths`` if given, else the shipped samples."""
    if paths:
        return list(paths)
    return sorted(glob.glob(os.path.join(SAMPLES_DIR, '*.png')))


def load_samples(paths: List[str], size: Optional[tuple], hfov_deg: float) -> List[DemoFrame]:
    """Read images (resized to (height, width) if given) with a pinhole K each."""
    frames = []
    for path in paths:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f'cannot read image {path!r}')
        if size is not None:
            bgr = cv2.resize(bgr, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        height, width = bgr.shape[:2]
        frames.append(DemoFrame(os.path.basename(path), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                                pinhole_matrix(width, height, hfov_deg)))
    return frames


def generate_scenes(count: int, size: Optional[tuple], seed: int) -> List[DemoFrame]:
    """Render ``count`` street scenes with the generator's own camera matrix."""
    from ..data.scene_generator import StreetSceneGenerator
    height, width = size or GENERATED_DEFAULT_SIZE
    generator = StreetSceneGenerator(seed=seed, height=height, width=width)
    frames = []
    for index in range(count):
        scene = generator.render(index)
        frames.append(DemoFrame(f'generated street scene {index}', scene.image_rgb,
                                np.asarray(scene.K, np.float64)))
    return frames


class DemoSource(Node):
    """Publishes the demo frames as a camera driver does."""

    def __init__(self) -> None:
        super().__init__('hydranet_demo_source')
        self.rate_hz = self._declare('rate_hz', 10.0, 'Images per second',
                                     float_range=(0.1, MAX_RATE_HZ))
        self.seconds_per_image = self._declare(
            'seconds_per_image', 5.0, 'How long each image is repeated before the next',
            float_range=(0.0, 3600.0))
        self.source = self._declare('source', 'samples', 'samples (shipped pictures, or the '
                                    'files in images) or generated (rendered street scenes)',
                                    choices=SOURCE_CHOICES)
        images = self._declare('images', [''], 'Image files to publish instead of the shipped '
                               'samples (source samples)')
        width = self._declare('width', 0, 'Resize images to this width (0 keeps the size)',
                              int_range=(0, MAX_SIDE_PX))
        height = self._declare('height', 0, 'Resize images to this height (0 keeps the size)',
                               int_range=(0, MAX_SIDE_PX))
        self.frame_id = self._declare('frame_id', 'camera_optical_frame',
                                      'frame_id of images and camera_info')
        hfov_deg = self._declare('hfov_deg', DEFAULT_HFOV_DEG, 'Horizontal field of view of '
                                 'the pinhole camera_info of sample images',
                                 float_range=(1.0, 179.0))
        self.encoding = self._declare('encoding', 'rgb8', 'Image encoding: rgb8 or bgr8',
                                      choices=ENCODING_CHOICES)
        qos_name = self._declare('qos', 'reliable', 'Publisher reliability: reliable or '
                                 'best_effort', choices=QOS_CHOICES)
        self.publish_compressed = self._declare(
            'publish_compressed', False, 'Also publish image/compressed (CompressedImage)')
        self.compressed_format = self._declare('compressed_format', 'png', 'png or jpeg',
                                               choices=COMPRESSED_FORMATS)
        seed = self._declare('seed', 0, 'Seed of the generated scenes', int_range=(0, 2**31))
        count = self._declare('generated_count', 4, 'Number of generated scenes',
                              int_range=(1, 100))
        size = (height, width) if width and height else None
        paths = [p for p in images if p]
        self.frames = self._load(paths, size, hfov_deg, count, seed)
        qos = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                         reliability=(ReliabilityPolicy.RELIABLE if qos_name == 'reliable'
                                      else ReliabilityPolicy.BEST_EFFORT))
        self.image_publisher = self.create_publisher(Image, 'image', qos)
        self.info_publisher = self.create_publisher(CameraInfo, 'camera_info', qos)
        self.compressed_publisher = (self.create_publisher(
            CompressedImage, 'image/compressed', qos) if self.publish_compressed else None)
        self._messages = [self._messages_of(frame) for frame in self.frames]
        self._started_s = time.monotonic()
        self.published = 0
        self.create_timer(1.0 / self.rate_hz, self._publish)
        self.get_logger().info(
            f'publishing {len(self.frames)} image(s) ({", ".join(f.name for f in self.frames)}) '
            f'on {self.resolve_topic_name("image")} at {self.rate_hz:g} Hz')

    def _declare(self, name: str, default, description: str, choices=(), float_range=None,
                 int_range=None):
        descriptor = ParameterDescriptor(name=name, description=description, read_only=True)
        if choices:
            descriptor.additional_constraints = 'one of: ' + ', '.join(choices)
        if float_range:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float_range[0], to_value=float_range[1], step=0.0)]
        if int_range:
            descriptor.integer_range = [IntegerRange(
                from_value=int_range[0], to_value=int_range[1], step=1)]
        value = self.declare_parameter(name, default, descriptor).value
        if choices and value not in choices:
            raise ValueError(f'{name} {value!r} is not one of {", ".join(choices)}')
        return value

    def _load(self, paths: List[str], size: Optional[tuple], hfov_deg: float, count: int,
              seed: int) -> List[DemoFrame]:
        if self.source == 'samples':
            found = sample_paths(paths)
            if found:
                return load_samples(found, size, hfov_deg)
            self.get_logger().warning(f'no sample image in {SAMPLES_DIR}: publishing generated '
                                      f'street scenes instead')
        return generate_scenes(count, size, seed)

    def _messages_of(self, frame: DemoFrame) -> tuple:
        pixels = frame.image_rgb
        if self.encoding == 'bgr8':
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
        image = array_to_image(pixels, self.encoding)
        image.header.frame_id = self.frame_id
        height, width = pixels.shape[:2]
        info = camera_info_message(frame.camera_matrix, width, height, self.frame_id)
        compressed = (encode_compressed(pixels, self.encoding, self.compressed_format)
                      if self.publish_compressed else None)
        if compressed is not None:
            compressed.header.frame_id = self.frame_id
        return image, info, compressed

    def current_index(self) -> int:
        """Return which frame is shown now."""
        if self.seconds_per_image <= 0.0:
            return self.published % len(self.frames)
        elapsed_s = time.monotonic() - self._started_s
        return int(elapsed_s / self.seconds_per_image) % len(self.frames)

    def _publish(self) -> None:
        image, info, compressed = self._messages[self.current_index()]
        stamp = self.get_clock().now().to_msg()
        for msg in (image, info, compressed):
            if msg is not None:
                msg.header.stamp = stamp
        self.info_publisher.publish(info)
        self.image_publisher.publish(image)
        if compressed is not None:
            self.compressed_publisher.publish(compressed)
        self.published += 1


def main(args: Optional[List[str]] = None) -> int:
    """Publish until SIGINT or SIGTERM, then exit 0 (also when a second one comes meanwhile)."""
    keep_large_buffers()  # frame-sized messages reuse heap memory: no page faults per frame
    stopped = record_stop_signals()  # rclpy's handlers shut the context down, then call it
    rclpy.init(args=args)
    node = None
    try:
        if stopped.is_set():  # before rclpy.init had installed its handlers
            return 0
        node = DemoSource()
        rclpy.spin(node)
    except ExternalShutdownException:
        pass
    except (ValueError, FileNotFoundError, InvalidParameterTypeException,
            InvalidParameterValueException) as error:
        print(f'[hydranet_demo_source] {error}', file=sys.stderr)
        return 2
    except _rclpy.RCLError:
        if rclpy.ok():
            raise
        # A signal shut the context down while the node was being created.
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
