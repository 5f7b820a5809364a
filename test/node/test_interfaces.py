"""The generated hydranet_ros interfaces: fields, serialisation and transport between processes."""
import math
import select
import time

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from ros_test_support import FIXTURES_DIR, ros_env, start_python, unique_domain_id

try:
    from hydranet_ros.msg import DepthSegmentation, LabelInfo, SegmentationClass
except ImportError as error:
    raise ImportError(f'hydranet_ros.msg does not import ({error}): build the interfaces with '
                      'bash scripts/build_interfaces.sh .venv (or colcon build)') from error

PEER = str(FIXTURES_DIR / 'label_info_peer.py')
PEER_START_TIMEOUT_S = 30.0
LATE_SUBSCRIBER_DELAY_S = 1.0
CLASSES = (('road', (128, 64, 128)), ('building', (70, 70, 70)), ('vegetation', (107, 142, 35)),
           ('sky', (70, 130, 180)), ('person', (220, 20, 60)), ('car', (0, 0, 142)))


def make_label_info() -> LabelInfo:
    """Return a class map as the node publishes it."""
    info = LabelInfo()
    info.header = Header(frame_id='camera_optical_frame')
    info.header.stamp.sec, info.header.stamp.nanosec = 1700000000, 123456789
    info.class_map = [SegmentationClass(class_id=index, class_name=name, r=r, g=g, b=b)
                      for index, (name, (r, g, b)) in enumerate(CLASSES)]
    info.threshold = 0.25
    info.unlabeled_id = 255
    info.model_name = 'hydranet_mobilenetv2_kitti'
    info.min_depth_m = 0.5  # float32-exact values compare equal after the round trip
    info.max_depth_m = 80.0
    return info


def make_image(array: np.ndarray, encoding: str, header: Header) -> Image:
    """Wrap an array in a sensor_msgs/Image with the given encoding."""
    height, width = array.shape[:2]
    return Image(header=header, height=height, width=width, encoding=encoding,
                 is_bigendian=0, step=array.strides[0], data=array.tobytes())


def make_depth_segmentation(height: int = 48, width: int = 64) -> DepthSegmentation:
    """Return a bundle of one 64x48 frame with NaN holes in the depth."""
    rng = np.random.default_rng(7)
    header = Header(frame_id='camera_optical_frame')
    header.stamp.sec = 42
    depth = rng.uniform(0.5, 40.0, (height, width)).astype(np.float32)
    depth[0, :] = np.nan
    labels = rng.integers(0, len(CLASSES), (height, width), dtype=np.uint8)
    labels[-1, :] = 255
    confidence = rng.uniform(0.0, 1.0, (height, width)).astype(np.float32)
    info = CameraInfo(header=header, height=height, width=width, distortion_model='plumb_bob')
    info.k = [50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0]
    info.p = [50.0, 0.0, 32.0, 0.0, 0.0, 50.0, 24.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return DepthSegmentation(header=header, depth=make_image(depth, '32FC1', header),
                             labels=make_image(labels, 'mono8', header),
                             confidence=make_image(confidence, '32FC1', header),
                             camera_info=info)


def test_segmentation_class_fields():
    """Check SegmentationClass field names and types."""
    assert SegmentationClass.get_fields_and_field_types() == {
        'class_id': 'uint16', 'class_name': 'string', 'r': 'uint8', 'g': 'uint8', 'b': 'uint8'}


def test_label_info_fields():
    """Check LabelInfo field names and types (modelled on vision_msgs/LabelInfo)."""
    assert LabelInfo.get_fields_and_field_types() == {
        'header': 'std_msgs/Header',
        'class_map': 'sequence<hydranet_ros/SegmentationClass>',
        'threshold': 'float',
        'unlabeled_id': 'uint16',
        'model_name': 'string',
        'min_depth_m': 'float',
        'max_depth_m': 'float',
    }


def test_depth_segmentation_fields():
    """Check DepthSegmentation field names and types."""
    assert DepthSegmentation.get_fields_and_field_types() == {
        'header': 'std_msgs/Header',
        'depth': 'sensor_msgs/Image',
        'labels': 'sensor_msgs/Image',
        'confidence': 'sensor_msgs/Image',
        'camera_info': 'sensor_msgs/CameraInfo',
    }


def test_label_info_round_trip():
    """Serialise and deserialise a class map without loss."""
    info = make_label_info()
    data = serialize_message(info)
    restored = deserialize_message(data, LabelInfo)
    assert restored == info
    assert [c.class_name for c in restored.class_map] == [name for name, _ in CLASSES]
    assert (restored.class_map[4].r, restored.class_map[4].g, restored.class_map[4].b) == (
        220, 20, 60)
    assert math.isclose(restored.threshold, 0.25)
    assert math.isclose(restored.max_depth_m, 80.0)


def test_depth_segmentation_round_trip_keeps_pixels_and_nan():
    """Serialise a frame bundle; pixels, NaN holes and calibration survive."""
    bundle = make_depth_segmentation()
    data = serialize_message(bundle)
    assert len(data) > 3 * 64 * 48  # the three images travel in the one message
    restored = deserialize_message(data, DepthSegmentation)
    assert restored == bundle
    depth = np.frombuffer(restored.depth.data, np.float32).reshape(48, 64)
    assert np.isnan(depth[0]).all() and np.isfinite(depth[1:]).all()
    labels = np.frombuffer(restored.labels.data, np.uint8).reshape(48, 64)
    assert (labels[-1] == 255).all() and labels[:-1].max() < len(CLASSES)
    assert restored.camera_info.k[2] == 32.0
    assert restored.depth.header.frame_id == restored.header.frame_id == 'camera_optical_frame'


def read_line(process, timeout_s: float) -> str:
    """Return the next stdout line of process, failing after timeout_s."""
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    line = process.stdout.readline() if ready else ''
    if not line:
        process.kill()
        pytest.fail(f'no output from {process.args[1:3]}: {process.stderr.read()[-2000:]}')
    return line.strip()


def test_late_subscriber_in_another_process_receives_latched_label_info(tmp_path):
    """Deliver a transient-local class map to a subscriber started after publication."""
    env = ros_env(tmp_path, unique_domain_id())
    info = make_label_info()
    sent_hex = serialize_message(info).hex()
    topic = 'hydranet/label_info'
    publisher = start_python([PEER, 'publisher', topic, sent_hex], env)
    subscriber = None
    try:
        assert read_line(publisher, PEER_START_TIMEOUT_S) == 'published'
        time.sleep(LATE_SUBSCRIBER_DELAY_S)  # the message is gone before the subscriber exists
        subscriber = start_python([PEER, 'subscriber', topic], env)
        output, errors = subscriber.communicate(timeout=PEER_START_TIMEOUT_S + 30)
        assert subscriber.returncode == 0, f'{output} {errors[-2000:]}'
        received = deserialize_message(
            bytes.fromhex(output.strip().splitlines()[-1]), LabelInfo)
        assert received == info
    finally:
        for process in (publisher, subscriber):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
