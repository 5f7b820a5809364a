"""Pulled camera subscriptions: executors leave them alone; their owner waits and takes."""
import threading
import time

import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed')

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo  # noqa: E402

from hydranet_ros.node.camera_input import PulledInput, received_perf_s  # noqa: E402
from ros_test_support import unique_domain_id  # noqa: E402

WAIT_S = 10.0
QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture
def node():
    """Yield a node in a context of its own on a private domain."""
    context = Context()
    rclpy.init(context=context, domain_id=unique_domain_id())
    node = rclpy.create_node('pulled_input_test', context=context)
    yield node
    node.destroy_node()
    rclpy.try_shutdown(context=context)


def _wait_until(condition) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.05)


def test_the_executor_never_takes_them_and_the_owner_takes_all_in_order(node):
    """Spinning the node leaves the queue alone; take() returns every message, oldest first."""
    pulled = PulledInput(node)
    subscription = pulled.subscribe(CameraInfo, 'info', QOS)
    publisher = node.create_publisher(CameraInfo, 'info', QOS)
    _wait_until(lambda: publisher.get_subscription_count() == 1)
    for width in (1, 2, 3):
        publisher.publish(CameraInfo(width=width))
    assert pulled.wait(WAIT_S) == [subscription]
    time.sleep(0.5)  # all three delivered
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    for _ in range(5):
        executor.spin_once(timeout_sec=0.1)
    messages = pulled.take(subscription)
    assert [msg.width for msg, _ in messages] == [1, 2, 3]
    assert all(info.get('received_timestamp', 0) > 0 for _, info in messages)
    assert pulled.take(subscription) == [] and pulled.depth(subscription) == 5
    pulled.destroy(subscription)
    assert pulled.subscriptions == [] and list(node.subscriptions) == []


def test_wake_ends_a_wait_at_once(node):
    """A wait with nothing to read returns as soon as another thread calls wake()."""
    pulled = PulledInput(node)
    pulled.subscribe(CameraInfo, 'quiet', QOS)
    threading.Timer(0.2, pulled.wake).start()
    started = time.monotonic()
    assert pulled.wait(WAIT_S) == []
    assert time.monotonic() - started < WAIT_S / 2


def test_received_time_maps_the_dds_reception_stamp_to_perf_counter():
    """A sample received 50 ms ago arrived 50 ms before now; without a stamp, now."""
    now_s = time.perf_counter()
    info = {'received_timestamp': time.time_ns() - 50_000_000}
    assert received_perf_s(info, now_s) == pytest.approx(now_s - 0.05, abs=0.01)
    assert received_perf_s({}, now_s) == now_s
