"""Many cameras, one model: three cameras of different sizes and frames through one node.

The node runs the bundled model (fixed network input, so frames of every size share a batch)
with ``cameras: [front, rear, side]``; this process is the three camera drivers. Every test
runs three times: with the CPU's automatic lanes (one per camera), with two inference lanes
(front and side in one, rear in the other) and with one lane running all three cameras as one
batch.
"""
import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from hydranet_ros.engine import InferenceEngine  # noqa: E402
from hydranet_ros.msg import LabelInfo  # noqa: E402
from hydranet_ros.node.messages import array_to_image, image_to_array  # noqa: E402
from node_harness import (camera_info, CameraPublisher, diagnostic_values, LATCHED,  # noqa: E402
                          make_header, request_outputs, RosClient, running_node, sample_rgb,
                          stamp_key)

NODE = 'hydranet_cameras_node'
CAMERAS = {'front': (160, 120, 'front_optical_frame', 'nyud_000464.png'),
           'rear': (320, 96, 'rear_optical_frame', 'kitti_000099.png'),
           'side': (128, 96, 'side_optical_frame', 'nyud_000464.png')}
OUTPUT_TIMEOUT_S = 60.0
DIAGNOSTICS_TIMEOUT_S = 20.0
ROUNDS_AFTER_STOP = 3
MAX_TIE_FLIPS = 1e-3


class Camera:
    """One camera of this process: its driver topics, its picture and its calibration."""

    def __init__(self, client: RosClient, name: str) -> None:
        width, height, frame_id, sample = CAMERAS[name]
        self.name, self.frame_id = name, frame_id
        self.image = sample_rgb(sample, width, height)
        self.info = camera_info(width * 2, height * 2, make_header(0, frame_id), hfov_deg=70.0)
        self.info.k[2] += 5.5  # a principal point off the centre
        self.publisher = CameraPublisher(client, f'{name}/image', f'{name}/camera_info')
        topics = {'depth/image': Image, 'depth/camera_info': CameraInfo,
                  'segmentation/labels': Image}
        self.logs = {topic: client.subscribe(f'{name}/{topic}', msg_type)
                     for topic, msg_type in topics.items()}

    def frame(self, header):
        """Return this camera's image message with ``header`` in this camera's frame."""
        header.frame_id = self.frame_id
        return array_to_image(self.image, 'rgb8', header)

    def request(self) -> dict:
        """Publish until one frame's outputs all arrived; return them."""
        return request_outputs(self.publisher, self.frame, self.logs, self.info,
                               OUTPUT_TIMEOUT_S)


# inference_lanes: requested, expected
LANES = {'lane_per_camera': (0, 3), 'two_lanes': (2, 2), 'one_lane': (1, 1)}


@pytest.fixture(scope='module', params=list(LANES))
def ros(request, tmp_path_factory):
    """Start the node with three cameras and this process's three camera drivers."""
    # The depth rules (sky NaN, scale from intrinsics) are tested elsewhere: here the outputs
    # are compared with the engine's own (a class name the model lacks is ignored; rclpy cannot
    # type an empty list given on the command line).
    with running_node(tmp_path_factory.mktemp('cameras'), NODE, {
            'cameras': '[front, rear, side]', 'threads': 2, 'depth_scale': 'none',
            'invalid_depth_classes': '[none]', 'backend': 'onnxruntime',
            'inference_lanes': LANES[request.param][0]},
            'hydranet_cameras_client') as (node, client):
        cameras = {name: Camera(client, name) for name in CAMERAS}
        for camera in cameras.values():
            assert client.wait_for_subscriber(camera.publisher.images), camera.name
        yield node, client, cameras, LANES[request.param][1]


@pytest.fixture(scope='module')
def engine() -> InferenceEngine:
    """Return the engine the node runs, for reference results."""
    return InferenceEngine(None, threads=2)


def _diagnostics(client: RosClient, predicate) -> dict:
    """Return {camera: values} of the first diagnostics message satisfying ``predicate``."""
    log = client.subscribe('/diagnostics', DiagnosticArray)
    log.clear()

    def by_camera(msg) -> dict:
        return {diagnostic_values(s)['camera']: diagnostic_values(s) for s in msg.status
                if s.name.startswith(f'{NODE}: camera ')}
    msg = log.wait_for(lambda m: len(by_camera(m)) == len(CAMERAS) and predicate(by_camera(m)),
                       DIAGNOSTICS_TIMEOUT_S)
    assert msg is not None, 'no matching diagnostics from the node'
    return by_camera(msg)


def test_every_camera_gets_its_own_header_size_and_calibration(ros, engine):
    """Outputs under each camera's name carry its stamp, frame id, size and scaled K."""
    node, client, cameras, lanes = ros
    for camera in cameras.values():
        received = camera.request()
        assert received, f'no outputs for camera {camera.name}: {node.output()[-2000:]}'
        depth, labels = received['depth/image'], received['segmentation/labels']
        info = received['depth/camera_info']
        height, width = camera.image.shape[:2]
        assert depth.header == labels.header == info.header
        assert depth.header.frame_id == camera.frame_id
        assert (depth.width, depth.height, info.width, info.height) == (width, height) * 2
        assert info.k[0] == pytest.approx(camera.info.k[0] / 2)
        assert info.k[2] == pytest.approx((camera.info.k[2] + 0.5) / 2 - 0.5)
        expected = engine.infer(camera.image, with_overlay=False)
        flips = np.mean(image_to_array(labels) != expected.labels)
        assert flips <= MAX_TIE_FLIPS, (camera.name, flips)
        np.testing.assert_allclose(image_to_array(depth), expected.depth, rtol=1e-3, atol=1e-3)


def test_each_camera_has_its_latched_class_map(ros):
    """segmentation/label_info is published under every camera's name."""
    node, client, cameras, lanes = ros
    for name in CAMERAS:
        log = client.subscribe(f'{name}/segmentation/label_info', LabelInfo, LATCHED)
        msg = log.wait_for(lambda m: True, OUTPUT_TIMEOUT_S)
        assert msg is not None and len(msg.class_map) == 6, name


def test_cameras_sent_together_run_together_and_all_are_answered(ros):
    """Frames of the three cameras published at once: each camera's own frame comes back."""
    node, client, cameras, lanes = ros
    keys = {name: camera.publisher.publish(camera.frame(camera.publisher.next_header()),
                                           camera.info)
            for name, camera in cameras.items()}
    for name, key in keys.items():
        log = cameras[name].logs['depth/image']
        assert log.wait_for(lambda m: stamp_key(m.header) == key, OUTPUT_TIMEOUT_S), name
    values = _diagnostics(client, lambda v: True)
    assert all(float(v['mean_batch_size']) >= 1.0 for v in values.values())
    assert all(int(v['inference_lanes']) == lanes for v in values.values())


def test_a_stopped_camera_costs_the_others_nothing(ros):
    """With rear silent, front and side are answered round after round."""
    node, client, cameras, lanes = ros
    for _ in range(ROUNDS_AFTER_STOP):
        for name in ('front', 'side'):
            assert cameras[name].request(), f'{name} was not answered while rear was silent'


def test_one_cameras_bad_frame_leaves_the_others_alone(ros):
    """A malformed side frame is rejected and counted for side only; front and rear flow."""
    node, client, cameras, lanes = ros
    before = _diagnostics(client, lambda v: True)
    side = cameras['side']
    bad = side.frame(side.publisher.next_header())
    bad.data = bad.data[:100]
    mark = len(node.output())
    side.publisher.publish(bad, side.info)
    assert node.wait_for_output('side/image', OUTPUT_TIMEOUT_S, after=mark), node.output()[mark:]
    for name in ('front', 'rear'):
        assert cameras[name].request(), name
    after = _diagnostics(client, lambda v: int(v['side']['frames_rejected'])
                         > int(before['side']['frames_rejected']))
    for name in ('front', 'rear'):
        assert after[name]['frames_rejected'] == before[name]['frames_rejected'], name
    assert int(after['side']['frames_rejected_data_length']) >= 1
