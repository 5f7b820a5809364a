"""The compressed outputs for remote viewers, from the node over real DDS.

The node runs the bundled model with the three compressed outputs on; this process sends the
KITTI sample at 640x480 and decodes what arrives as image_transport's stock subscribers would:
``segmentation/labels/compressed`` must equal ``segmentation/labels`` exactly,
``depth/image/compressedDepth`` must match ``depth/image`` within the format's quantisation,
``segmentation/color/compressed`` must look like ``segmentation/color``. A short stream measures
bytes per second of each compressed topic against its raw topic (printed as one JSON line).
"""
import json
import time

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from hydranet_ros.engine.transport_formats import (CompressedPayload,  # noqa: E402
                                                   decode_compressed, decode_compressed_depth,
                                                   depth_error_bound_m)
from hydranet_ros.node.messages import image_to_array  # noqa: E402
from node_harness import (camera_info, CameraPublisher, make_header,  # noqa: E402
                          request_outputs, running_node, sample_rgb)

NODE = 'hydranet_compressed_node'
WIDTH, HEIGHT = 640, 480
QUANTIZATION_M = 100.0
FLOAT_SLACK = 1e-5
JPEG_MEAN_ERROR_LIMIT = 8.0  # grey levels at color_jpeg_quality 80
OUTPUT_TIMEOUT_S = 60.0
STREAM_FRAMES = 30
STREAM_PERIOD_S = 0.1
DRAIN_S = 2.0
PAIRS = {'segmentation/labels/compressed': 'segmentation/labels',
         'segmentation/color/compressed': 'segmentation/color',
         'depth/image/compressedDepth': 'depth/image'}
TOPICS = {**{topic: CompressedImage for topic in PAIRS},
          **{topic: Image for topic in PAIRS.values()}}


@pytest.fixture(scope='module')
def ros(tmp_path_factory):
    """Start the node with the compressed outputs on, a client and a camera publisher."""
    with running_node(tmp_path_factory.mktemp('compressed'), NODE, {
            'backend': 'onnxruntime', 'threads': 1, 'publish_labels_compressed': True,
            'publish_color_compressed': True, 'publish_depth_compressed': True,
            'compressed_depth_quantization_m': QUANTIZATION_M},
            'hydranet_compressed_client') as (node, client):
        camera = CameraPublisher(client)
        assert client.wait_for_subscriber(camera.images), node.output()
        logs = {topic: client.subscribe(topic, msg_type) for topic, msg_type in TOPICS.items()}
        for topic in TOPICS:
            assert client.wait_for_publishers(topic), f'{topic} has no publisher'
        yield node, camera, logs


@pytest.fixture(scope='module')
def frame(ros):
    """Return the outputs of one frame of the sample, by topic."""
    node, camera, logs = ros
    rgb = sample_rgb('kitti_000099.png', WIDTH, HEIGHT)
    info = camera_info(WIDTH, HEIGHT, make_header(0))
    found = request_outputs(camera, lambda header: _image(rgb, header), logs, info,
                            timeout_s=OUTPUT_TIMEOUT_S)
    assert found, node.output()
    return found


def _image(rgb, header):
    from hydranet_ros.node.messages import array_to_image
    return array_to_image(rgb, 'rgb8', header)


def _payload(msg: CompressedImage) -> CompressedPayload:
    return CompressedPayload(msg.format, bytes(msg.data))


def test_labels_decode_to_exactly_the_raw_labels(frame):
    """PNG is lossless: the decoded mask equals segmentation/labels pixel for pixel."""
    msg = frame['segmentation/labels/compressed']
    assert msg.format == 'mono8; png compressed '
    decoded, encoding = decode_compressed(_payload(msg))
    assert encoding == 'mono8'
    np.testing.assert_array_equal(decoded, image_to_array(frame['segmentation/labels']))
    assert msg.header == frame['segmentation/labels'].header


def test_depth_decodes_within_the_quantisation(frame):
    """compressedDepth: 0 <= d' - d < d^2 / (a - d) where depth is valid, NaN where not."""
    msg = frame['depth/image/compressedDepth']
    assert msg.format == '32FC1; compressedDepth png'
    decoded = decode_compressed_depth(_payload(msg))
    raw = image_to_array(frame['depth/image'])
    valid = np.isfinite(raw)
    assert valid.any() and (~valid).any(), 'the sample has sky (NaN) and valid depth'
    np.testing.assert_array_equal(np.isfinite(decoded), valid)
    error = decoded[valid].astype(np.float64) - raw[valid]
    assert (error >= -FLOAT_SLACK * raw[valid]).all()
    assert (error <= depth_error_bound_m(raw[valid], QUANTIZATION_M)
            + FLOAT_SLACK * raw[valid]).all()


def test_color_jpeg_decodes_close_to_the_overlay(frame):
    """JPEG is lossy but close: a viewer sees the raw overlay."""
    msg = frame['segmentation/color/compressed']
    assert msg.format == 'rgb8; jpeg compressed bgr8'
    decoded, encoding = decode_compressed(_payload(msg))
    overlay = image_to_array(frame['segmentation/color'])
    assert encoding == 'rgb8' and decoded.shape == overlay.shape
    assert np.abs(decoded.astype(np.int16) - overlay).mean() < JPEG_MEAN_ERROR_LIMIT


def test_bytes_per_second_compressed_against_raw(ros, frame):
    """Stream frames; each compressed topic carries a fraction of its raw topic's bytes."""
    node, camera, logs = ros
    rgb = sample_rgb('kitti_000099.png', WIDTH, HEIGHT)
    info = camera_info(WIDTH, HEIGHT, make_header(0))
    for log in logs.values():
        log.clear()
    start = time.monotonic()
    for _ in range(STREAM_FRAMES):
        camera.publish(_image(rgb, camera.next_header()), info)
        time.sleep(STREAM_PERIOD_S)
    seconds = time.monotonic() - start
    time.sleep(DRAIN_S)
    figures = {}
    for compressed, raw in PAIRS.items():
        sizes = {topic: [len(m.data) for m in logs[topic].messages] for topic in (compressed, raw)}
        assert sizes[compressed] and len(sizes[compressed]) == len(sizes[raw]), sizes
        figures[compressed] = {
            'messages': len(sizes[compressed]),
            'compressed_bytes_per_message': int(np.mean(sizes[compressed])),
            'raw_bytes_per_message': int(np.mean(sizes[raw])),
            'compressed_mbit_s': round(8 * sum(sizes[compressed]) / seconds / 1e6, 2),
            'raw_mbit_s': round(8 * sum(sizes[raw]) / seconds / 1e6, 2),
            'ratio': round(sum(sizes[raw]) / sum(sizes[compressed]), 1)}
        assert figures[compressed]['ratio'] > 2.0, figures
    print(json.dumps({'width': WIDTH, 'height': HEIGHT, 'seconds': round(seconds, 2),
                      'topics': figures}))


def test_serialised_compressed_image_is_what_rclpy_writes():
    """The CDR bytes written for an output read back as the message, as long as rclpy's.

    (rclpy leaves its alignment padding uninitialised, so the bytes are compared as messages.)
    """
    from rclpy.serialization import deserialize_message, serialize_message
    from hydranet_ros.node.messages import serialize_compressed
    for frame_id, image_format, data in (('', 'mono8; png compressed ', b''),
                                         ('camera_optical_frame', 'rgb8; jpeg compressed bgr8',
                                          bytes(range(7))),
                                         ('cam', '32FC1; compressedDepth png', b'\x00' * 13)):
        header = make_header(3, frame_id)
        msg = CompressedImage(header=header, format=image_format, data=data)
        written = serialize_compressed(image_format, data, header)
        assert len(written) == len(serialize_message(msg))
        assert deserialize_message(written, CompressedImage) == msg
