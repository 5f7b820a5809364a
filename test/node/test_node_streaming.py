"""A camera streaming at 10 Hz into the node: what a model swap and an inactive period report.

The node runs the bundled model on ONNX Runtime (the backend whose rebuild exports a network);
a thread of this process publishes a real sample at the camera's rate, best effort as drivers
do, for the whole module.
"""
import threading
import time

import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from node_harness import (camera_info, CameraPublisher, diagnostic_values,  # noqa: E402
                          make_header, RosClient, running_node, sample_rgb)

NODE = 'hydranet_streaming_node'
WIDTH, HEIGHT = 320, 96
CAMERA_PERIOD_S = 0.1
INACTIVE_S = 2.0
OUTPUT_TIMEOUT_S = 60.0
SWAP_TIMEOUT_S = 180.0
DIAGNOSTICS_TIMEOUT_S = 20.0


class StreamingCamera:
    """Publishes a sample image and its camera_info at a fixed rate on a thread."""

    def __init__(self, client: RosClient) -> None:
        self.publisher = CameraPublisher(client, qos=qos_profile_sensor_data)
        self.image = sample_rgb('kitti_000099.png', WIDTH, HEIGHT)
        self.info = camera_info(WIDTH, HEIGHT, make_header(0))
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Start streaming."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(CAMERA_PERIOD_S):
            self.publisher.publish_array(self.image, 'rgb8', self.info)
            self.sent += 1

    def stop(self) -> None:
        """Stop streaming."""
        self._stop.set()
        self._thread.join(5.0)


@pytest.fixture(scope='module')
def ros(tmp_path_factory):
    """Start the node, a client and the streaming camera; stop them after the module."""
    with running_node(tmp_path_factory.mktemp('streaming'), NODE,
                      {'backend': 'onnxruntime', 'threads': 1},
                      'hydranet_streaming_client') as (node, client):
        camera = StreamingCamera(client)
        assert client.wait_for_subscriber(camera.publisher.images)
        depth = client.subscribe('depth/image', Image)
        camera.start()
        try:
            assert depth.wait_for(lambda m: True, OUTPUT_TIMEOUT_S), node.output()
            yield node, client, depth
        finally:
            camera.stop()


def _diagnostics(client: RosClient, predicate, timeout_s: float = DIAGNOSTICS_TIMEOUT_S):
    log = client.subscribe('/diagnostics', DiagnosticArray)
    log.clear()

    def values_of(msg):
        status = [s for s in msg.status if s.name.startswith(f'{NODE}:')]
        return diagnostic_values(status[0]) if status else None
    msg = log.wait_for(lambda m: values_of(m) is not None and predicate(values_of(m)), timeout_s)
    assert msg is not None, 'no matching diagnostics from the node'
    return values_of(msg)


def test_a_model_swap_keeps_serving_and_reports_no_stall(ros):
    """Exporting the new network runs beside the serving engine: frames keep coming out."""
    node, client, depth = ros
    before = _diagnostics(client, lambda v: True)
    mark = len(node.output())
    results = client.set_parameters(NODE, {'inference_width': 192, 'inference_height': 64})
    assert all(r.successful for r in results), [r.reason for r in results]
    rebuilding = []
    log = client.subscribe('/diagnostics', DiagnosticArray)
    deadline = time.monotonic() + SWAP_TIMEOUT_S
    while 'now serving' not in node.output()[mark:] and time.monotonic() < deadline:
        values = _diagnostics(client, lambda v: True)
        if values['engine_rebuilding'] == 'True':
            rebuilding.append(int(values['frames_processed']))
    assert 'now serving' in node.output()[mark:], node.output()[mark:]
    assert 'network input 64x192' in node.output()[mark:]
    log.clear()
    assert len(rebuilding) >= 2, 'the rebuild ended before two diagnostics could see it'
    assert rebuilding[-1] > rebuilding[0], 'no frame was served while the engine was rebuilt'
    after = _diagnostics(client, lambda v: True)
    assert 'input stale' not in node.output()[mark:]
    assert 'never reached the node' not in node.output()[mark:]
    assert after['input_gaps'] == before['input_gaps']
    assert after['frames_lost_in_transport'] == before['frames_lost_in_transport']


def test_frames_sent_while_inactive_are_not_reported_lost(ros):
    """Deactivate for two seconds while the camera streams, activate: no loss, no gap."""
    node, client, depth = ros
    before = _diagnostics(client, lambda v: v['state'] == 'active')
    mark = len(node.output())
    assert client.change_state(NODE, Transition.TRANSITION_DEACTIVATE)
    time.sleep(INACTIVE_S)
    assert client.change_state(NODE, Transition.TRANSITION_ACTIVATE)
    depth.clear()
    assert depth.wait_for(lambda m: True, OUTPUT_TIMEOUT_S), node.output()[mark:]
    after = _diagnostics(client, lambda v: v['state'] == 'active' and
                         int(v['frames_processed']) > int(before['frames_processed']))
    assert 'never reached the node' not in node.output()[mark:]
    assert 'input stale' not in node.output()[mark:]
    assert after['frames_lost_in_transport'] == before['frames_lost_in_transport']
    assert after['input_gaps'] == before['input_gaps']
