"""Diagnostics that make sense whatever the camera's clock, and short ones for a failed swap.

One node in its own process over real DDS, with a small random-weight model. Frames stamped
in simulation time (seconds since a simulator started) or with a recording's old stamps are
not on the node's clock: their stamp-to-publish latency is reported as n/a, not as decades.
Frames stamped now get a real figure. A model change to a broken file leaves a short
diagnostic message and the whole reason in the log.
"""
import time

import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from hydranet_ros.node.diagnostics import MAX_MESSAGE_REASON_CHARS  # noqa: E402
from hydranet_ros.node.messages import array_to_image  # noqa: E402
from dev.reliability.node_watch import write_random_checkpoint  # noqa: E402
from node_harness import (CameraPublisher, diagnostic_values, RosClient,  # noqa: E402
                          running_node, sample_rgb, stamp_key)

NODE = 'hydranet_clock_node'
WIDTH, HEIGHT = 64, 48
SIMULATION_START_S = 100  # a simulator's clock starts near zero
OUTPUT_TIMEOUT_S = 60.0
DIAGNOSTICS_TIMEOUT_S = 20.0
SWAP_TIMEOUT_S = 60.0
FRAMES = 3
# The status message of a failed swap: the short reason plus what the node does about it.
MAX_STATUS_MESSAGE_CHARS = MAX_MESSAGE_REASON_CHARS + 160


@pytest.fixture(scope='module')
def ros(tmp_path_factory):
    """Start the node and a client on a private domain; check a clean exit at the end."""
    folder = tmp_path_factory.mktemp('clock')
    model = write_random_checkpoint(str(folder / 'random4.pth'), 4)
    with running_node(folder, NODE, {'model_path': model, 'backend': 'torch', 'device': 'cpu',
                                     'threads': 1}, 'hydranet_clock_client') as (node, client):
        yield node, client, folder


def header(sec: int, nanosec: int) -> Header:
    """Return a camera header with this stamp."""
    stamped = Header(frame_id='camera_optical_frame')
    stamped.stamp.sec, stamped.stamp.nanosec = sec, nanosec
    return stamped


def publish_until_answered(client: RosClient, stamps) -> None:
    """Publish one frame per stamp and wait for the depth output of each."""
    camera = CameraPublisher(client, info_topic=None)
    depth = client.subscribe('depth/image', Image)
    image = sample_rgb(width=WIDTH, height=HEIGHT)
    for sec, nanosec in stamps:
        msg = array_to_image(image, 'rgb8', header(sec, nanosec))
        deadline = time.monotonic() + OUTPUT_TIMEOUT_S
        while time.monotonic() < deadline:
            camera.publish(msg)
            if depth.wait_for(lambda m: stamp_key(m.header) == (sec, nanosec), 1.0):
                break
        else:
            pytest.fail(f'no output for the frame stamped {sec}.{nanosec:09d}')


def diagnostics(client: RosClient, predicate) -> dict:
    """Return the next diagnostics of the node (its message and values) that predicate accepts."""
    log = client.subscribe('/diagnostics', DiagnosticArray)
    log.clear()

    def values(msg) -> dict:
        status = [s for s in msg.status if s.name.startswith(f'{NODE}:')]
        return {'message': status[0].message, **diagnostic_values(status[0])} if status else {}
    found = log.wait_for(lambda m: bool(values(m)) and predicate(values(m)),
                         DIAGNOSTICS_TIMEOUT_S)
    assert found is not None, 'no matching diagnostics from the node'
    return values(found)


def test_simulation_stamps_give_no_latency_from_the_stamp(ros):
    _, client, _ = ros
    publish_until_answered(client, [(SIMULATION_START_S + i, 0) for i in range(FRAMES)])
    values = diagnostics(client, lambda v: int(v['frames_processed']) >= FRAMES)
    assert values['stamp_to_publish_ms'].startswith('n/a'), values
    assert 'use_sim_time' in values['stamp_to_publish_ms']
    assert 'stamp_to_publish_ms_mean' not in values
    assert int(values['frames_stamp_not_on_clock']) >= FRAMES
    assert float(values['receive_to_publish_ms_mean']) > 0.0, 'latencies from reception stay'


def test_stamps_on_the_node_clock_give_a_real_latency(ros):
    _, client, _ = ros
    now_ns = time.time_ns()
    publish_until_answered(client, [divmod(now_ns + i, 10**9) for i in range(FRAMES)])
    values = diagnostics(client, lambda v: 'stamp_to_publish_ms_mean' in v)
    assert 0.0 < float(values['stamp_to_publish_ms_mean']) < OUTPUT_TIMEOUT_S * 1000.0
    assert float(values['stamp_to_publish_ms_max']) < OUTPUT_TIMEOUT_S * 1000.0
    assert 'stamp_to_publish_ms' not in values


def test_failed_model_swap_gives_a_short_message_and_the_whole_reason_in_the_log(ros):
    node, client, folder = ros
    broken = folder / 'broken.pth'
    broken.write_bytes(b'PK\x03\x04' + bytes(range(256)) * 8)  # a zip header, then garbage
    mark = len(node.output())
    assert client.set_parameter(NODE, 'model_path', str(broken)).successful
    assert node.wait_for_output('cannot build the engine', SWAP_TIMEOUT_S, after=mark)
    logged = node.output()[mark:]
    values = diagnostics(client, lambda v: v['engine_error'] != '')
    assert 'broken.pth' in values['engine_error']
    assert 'the full reason is in the log' in values['engine_error']
    (swap_problem,) = [part for part in values['message'].split('; ')
                       if 'engine rebuild failed' in part]
    assert len(swap_problem) <= MAX_STATUS_MESSAGE_CHARS, swap_problem
    assert len(values['engine_error']) <= MAX_STATUS_MESSAGE_CHARS
    line = next(line for line in logged.splitlines() if 'cannot build the engine' in line)
    assert 'is truncated' in line and 'copy or download it again' in line
    assert 'weights_only' not in logged
    publish_until_answered(client, [(SIMULATION_START_S + 50, 0)])  # the old model serves on
