"""hydranet_node's lifecycle, compressed input, missing camera_info and start-up failures.

One node per module, started without autostart and with a model path that does not exist, so
the test drives it through configure (failing, then succeeding), activate, deactivate and
cleanup as a lifecycle manager would.
"""
import time

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from hydranet_ros.engine import InferenceEngine  # noqa: E402
from hydranet_ros.node.messages import encode_compressed, image_to_array  # noqa: E402
from node_harness import (CameraPublisher, RosClient, TestEnvironment,  # noqa: E402
                          diagnostic_values, request_outputs, sample_rgb, start_node)

NODE = 'hydranet_lifecycle_node'
THREADS = 2
WIDTH, HEIGHT = 128, 96
OUTPUT_TIMEOUT_S = 40.0
CAMERA_INFO_WARNING_TIMEOUT_S = 20.0
FRAME_PERIOD_S = 0.2
QUIET_PERIOD_S = 2.0
MISSING_MODEL = '/nonexistent/hydranet_missing_model.pth'
OUTPUTS = {'depth/image': Image, 'segmentation/labels': Image, 'depth/camera_info': CameraInfo}


@pytest.fixture(scope='module')
def ros(tmp_path_factory):
    """Start the node (not autostarted, model missing) and a client on a private domain."""
    environment = TestEnvironment(tmp_path_factory.mktemp('lifecycle'))
    environment.enter()
    node = start_node(environment, NODE, {
        'autostart': False, 'model_path': MISSING_MODEL, 'backend': 'torch', 'device': 'cpu',
        'threads': THREADS, 'use_compressed_input': True})
    client = RosClient('hydranet_lifecycle_client')
    try:
        assert client.get_state(NODE) == 'unconfigured', node.output()
        yield node, client
    finally:
        client.close()
        code = node.stop()
        environment.exit()
    assert code == 0, node.output()
    assert 'Traceback' not in node.output(), node.output()


@pytest.fixture(scope='module')
def image() -> np.ndarray:
    """Return a real sample picture at test size."""
    return sample_rgb('kitti_000099.png', WIDTH, HEIGHT)


def _compressed(image: np.ndarray, image_format: str = 'png'):
    return lambda header: encode_compressed(image, 'rgb8', image_format, header)


def _diagnostics(client: RosClient, predicate, timeout_s: float = 20.0) -> dict:
    log = client.subscribe('/diagnostics', DiagnosticArray)
    log.clear()

    def values(msg):
        status = [s for s in msg.status if s.name.startswith(f'{NODE}:')]
        return ({'message': status[0].message, **diagnostic_values(status[0])}
                if status else None)
    msg = log.wait_for(lambda m: values(m) is not None and predicate(values(m)), timeout_s)
    assert msg is not None, 'no matching diagnostics from the node'
    return values(msg)


def test_starts_unconfigured_without_outputs(client):
    """Without autostart nothing is loaded or published until a manager configures it."""
    assert client.get_state(NODE) == 'unconfigured'
    assert client.node.count_publishers('depth/image') == 0


def test_configure_with_missing_weights_fails_and_the_node_stays_up(client, node):
    """A missing checkpoint makes configure fail with a clear log line, not a crash."""
    assert not client.change_state(NODE, Transition.TRANSITION_CONFIGURE)
    assert node.wait_for_output('configure failed: cannot load the model', 10.0), node.output()
    assert 'does not exist' in node.output()
    assert node.process.poll() is None
    assert client.get_state(NODE) == 'unconfigured'
    values = _diagnostics(client, lambda v: True)
    assert 'no engine' in values['message']


def test_configure_and_activate_after_setting_the_model(client, nyud_checkpoint):
    """Setting model_path while unconfigured, then configure and activate, starts outputs."""
    assert client.set_parameter(NODE, 'model_path', str(nyud_checkpoint)).successful
    assert client.change_state(NODE, Transition.TRANSITION_CONFIGURE)
    assert client.get_state(NODE) == 'inactive'
    assert client.wait_for_publishers('depth/image', 1, 20.0)
    assert client.change_state(NODE, Transition.TRANSITION_ACTIVATE)
    assert client.get_state(NODE) == 'active'


def test_compressed_input_without_camera_info(client, node, image, nyud_checkpoint):
    """PNG frames on image/compressed are processed; no camera_info: warned, not published."""
    logs = {topic: client.subscribe(topic, msg_type) for topic, msg_type in OUTPUTS.items()}
    camera = CameraPublisher(client, 'image/compressed', None, msg_type=CompressedImage)
    assert client.wait_for_subscriber(camera.images), 'the node does not subscribe to compressed'
    received = request_outputs(camera, _compressed(image),
                               {t: logs[t] for t in ('depth/image', 'segmentation/labels')},
                               timeout_s=OUTPUT_TIMEOUT_S)
    assert received, node.output()
    engine = InferenceEngine(str(nyud_checkpoint), device='cpu', backend='torch',
                             threads=THREADS)
    expected = engine.infer(image, 'rgb8')
    assert np.array_equal(image_to_array(received['segmentation/labels']), expected.labels)
    np.testing.assert_array_equal(image_to_array(received['depth/image']), expected.depth)
    deadline = time.monotonic() + CAMERA_INFO_WARNING_TIMEOUT_S
    while 'no camera_info received on' not in node.output() and time.monotonic() < deadline:
        camera.publish(_compressed(image)(camera.next_header()))
        time.sleep(FRAME_PERIOD_S)
    assert 'no camera_info received on /camera_info' in node.output()
    assert not logs['depth/camera_info'].messages
    values = _diagnostics(client, lambda v: True)
    assert values['camera_info_received'] == 'False'
    assert 'camera_info' in values['message']

    mark = len(node.output())
    depth_stream = CompressedImage(header=camera.next_header(), format='16UC1; compressedDepth')
    depth_stream.data = encode_compressed(image, 'rgb8').data
    camera.publish(depth_stream)
    assert node.wait_for_output('compressedDepth', 20.0, after=mark)
    assert 'rejected a malformed compressed image' in node.output()[mark:]


def test_inference_is_skipped_without_subscribers(client, image):
    """With nobody subscribed to an output, frames are counted as skipped, not processed."""
    for topic in OUTPUTS:
        client.unsubscribe(topic)
    time.sleep(QUIET_PERIOD_S)
    before = _diagnostics(client, lambda v: True)
    camera = CameraPublisher(client, 'image/compressed', None, msg_type=CompressedImage)
    assert client.wait_for_subscriber(camera.images)
    for _ in range(3):
        camera.publish(_compressed(image)(camera.next_header()))
        time.sleep(FRAME_PERIOD_S * 2)
    skipped = int(before['frames_skipped_no_subscribers'])
    after = _diagnostics(client, lambda v: int(v['frames_skipped_no_subscribers']) > skipped)
    assert after['frames_processed'] == before['frames_processed']


def test_deactivate_stops_processing_and_cleanup_releases(client, image):
    """Deactivate unsubscribes from the camera; cleanup removes the publishers."""
    depth = client.subscribe('depth/image', Image)
    assert client.change_state(NODE, Transition.TRANSITION_DEACTIVATE)
    assert client.get_state(NODE) == 'inactive'
    camera = CameraPublisher(client, 'image/compressed', None, msg_type=CompressedImage)
    deadline = time.monotonic() + 20.0
    while camera.images.get_subscription_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert camera.images.get_subscription_count() == 0
    depth.clear()
    camera.publish(_compressed(image)(camera.next_header()))
    time.sleep(QUIET_PERIOD_S)
    assert not depth.messages
    assert client.change_state(NODE, Transition.TRANSITION_CLEANUP)
    assert client.get_state(NODE) == 'unconfigured'
    assert client.wait_for_publishers('depth/image', 0, 20.0)


def test_bad_configuration_at_start_exits_non_zero_with_the_reason(tmp_path):
    """Invalid values and missing weights end the process with a message saying what to fix."""
    environment = TestEnvironment(tmp_path)
    cases = {
        'range': ({'overlay_alpha': 2.0}, 2, 'overlay_alpha'),
        'choice': ({'backend': 'tensorrt'}, 2, "backend 'tensorrt' is not one of"),
        'weights': ({'model_path': MISSING_MODEL, 'device': 'cpu'}, 1, 'does not exist'),
    }
    processes = {name: start_node(environment, f'bad_{name}', overrides)
                 for name, (overrides, _, _) in cases.items()}
    try:
        for name, (_, code, fragment) in cases.items():
            assert processes[name].wait_exit() == code, processes[name].output()
            assert fragment in processes[name].output(), processes[name].output()
    finally:
        for process in processes.values():
            process.stop()
