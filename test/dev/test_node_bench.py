"""The node benchmark reads stamps from serialised messages as rclpy writes them."""
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed')

from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from dev.bench.node_bench import stamp_ns  # noqa: E402


@pytest.mark.parametrize('sec, nanosec, frame_id', [
    (0, 0, ''), (1_700_000_000, 999_999_999, 'camera_optical_frame'), (-5, 1, 'x' * 37)])
def test_stamp_of_a_serialised_image(sec, nanosec, frame_id):
    """The stamp parsed from CDR equals the one the message was given."""
    msg = Image(height=2, width=3, encoding='mono8', step=3, data=bytes(6))
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    msg.header.frame_id = frame_id
    assert stamp_ns(serialize_message(msg)) == sec * 10**9 + nanosec
