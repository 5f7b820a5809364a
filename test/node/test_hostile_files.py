"""Hostile and broken checkpoints given to hydranet_node: at start and as a run-time change.

A checkpoint carrying a pickled payload (which would create a marker file if executed) is
refused without running it; truncated, empty and wrong-architecture files end the start with
exit code 1 and the reason, and as a run-time model change they leave the serving model on.
"""
import pathlib

import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from hydranet_ros.node.messages import array_to_image  # noqa: E402
from dev.reliability.node_watch import write_random_checkpoint  # noqa: E402
from node_harness import (CameraPublisher, RosClient, TestEnvironment,  # noqa: E402
                          request_outputs, sample_rgb, start_node)

NODE = 'hydranet_hostile_files_node'
OUTPUT_TIMEOUT_S = 60.0
SWAP_TIMEOUT_S = 60.0
WIDTH, HEIGHT = 64, 48
# file name -> what the node must say about it
EXPECTED_ERRORS = {
    'payload.pth': 'was refused: it is not a plain weights file',
    'truncated.pth': 'is truncated',
    'empty.pth': 'is empty (0 bytes)',
    'not_a_hydranet.pth': 'it is not a HydraNet',
    'wrong_classes.pth': 'does not fit a HydraNet',
}


class MarkerPayload:
    """An object whose unpickling creates a file: proof of code execution if it appears."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Write a good random checkpoint and every hostile or broken one; return their paths."""
    folder = tmp_path_factory.mktemp('hostile')
    good = pathlib.Path(write_random_checkpoint(str(folder / 'good.pth'), 4))
    marker = folder / 'payload_ran'
    content = torch.load(good, weights_only=True)
    torch.save({**content, 'extra': {'note': MarkerPayload(marker)}}, folder / 'payload.pth')
    data = good.read_bytes()
    (folder / 'truncated.pth').write_bytes(data[:len(data) // 2])
    (folder / 'empty.pth').write_bytes(b'')
    torch.save({'state_dict': torch.nn.Conv2d(3, 8, 3).state_dict()},
               folder / 'not_a_hydranet.pth')
    wrong = dict(content, config=dict(content['config'], num_classes=6))
    torch.save(wrong, folder / 'wrong_classes.pth')
    return {'good': good, 'marker': marker,
            **{name: folder / name for name in EXPECTED_ERRORS}}


def test_the_payload_would_run_if_unpickled_unsafely(files):
    """The marker mechanism works: loading without weights_only creates the file."""
    probe = files['marker'].with_name('probe_ran')
    torch.save({'x': MarkerPayload(probe)}, probe.with_suffix('.pth'))
    torch.load(probe.with_suffix('.pth'), weights_only=False)
    assert probe.exists()


def test_hostile_files_at_start_end_with_exit_code_1_and_the_reason(tmp_path, files):
    """Each file stops the start with its reason; the payload never runs."""
    environment = TestEnvironment(tmp_path)
    processes = {name: start_node(environment, f'hostile_{name.split(".")[0]}', {
        'model_path': files[name], 'backend': 'torch', 'device': 'cpu', 'threads': 1})
        for name in EXPECTED_ERRORS}
    try:
        for name, fragment in EXPECTED_ERRORS.items():
            process = processes[name]
            assert process.wait_exit() == 1, process.output()
            assert fragment in process.output(), process.output()
            assert 'could not configure at start' in process.output()
            assert 'Traceback' not in process.output(), process.output()
    finally:
        for process in processes.values():
            process.stop()
    assert not files['marker'].exists(), 'the pickled payload was executed'


def test_hostile_files_as_runtime_change_keep_the_serving_model(tmp_path, files):
    """Setting model_path to each file fails the rebuild; the good model keeps answering."""
    environment = TestEnvironment(tmp_path)
    environment.enter()
    node = start_node(environment, NODE, {'model_path': files['good'], 'backend': 'torch',
                                          'device': 'cpu', 'threads': 1})
    client = RosClient('hydranet_hostile_client')
    image = sample_rgb(width=WIDTH, height=HEIGHT)
    try:
        assert node.wait_for_output('active:'), node.output()
        camera = CameraPublisher(client)
        depth = client.subscribe('depth/image', Image)
        assert client.wait_for_subscriber(camera.images)
        logs = {'depth/image': depth}

        def frame(header):
            return array_to_image(image, 'rgb8', header)
        first = request_outputs(camera, frame, logs, timeout_s=OUTPUT_TIMEOUT_S)
        assert first, node.output()
        for name, fragment in EXPECTED_ERRORS.items():
            mark = len(node.output())
            assert client.set_parameter(NODE, 'model_path', str(files[name])).successful
            assert node.wait_for_output('cannot build the engine', SWAP_TIMEOUT_S, after=mark), \
                node.output()[mark:]
            assert fragment in node.output()[mark:], node.output()[mark:]
            assert 'still serving good.pth' in node.output()[mark:]
            received = request_outputs(camera, frame, logs, timeout_s=OUTPUT_TIMEOUT_S)
            assert received, f'no output after the failed change to {name}'
            np.testing.assert_array_equal(np.frombuffer(bytes(received['depth/image'].data),
                                                        np.float32),
                                          np.frombuffer(bytes(first['depth/image'].data),
                                                        np.float32))
    finally:
        client.close()
        code = node.stop()
        environment.exit()
    assert code == 0, node.output()
    assert 'Traceback' not in node.output(), node.output()
    assert not files['marker'].exists(), 'the pickled payload was executed'
