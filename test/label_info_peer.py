"""Publisher or late subscriber of one latched hydranet_ros/LabelInfo, for cross-process tests.

    python test/label_info_peer.py publisher TOPIC HEX   # publish the serialised message, stay up
    python test/label_info_peer.py subscriber TOPIC      # print the received message as hex

Both sides use the QoS of the node's class-map topic: reliable, transient local, depth 1.
"""
import sys
import time

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message

from hydranet_ros.msg import LabelInfo

LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
PUBLISHER_LIFETIME_S = 60.0
SUBSCRIBER_TIMEOUT_S = 20.0


def publish(topic: str, message_hex: str) -> None:
    """Publish the message once, then keep it available to late subscribers."""
    node = rclpy.create_node('label_info_publisher')
    publisher = node.create_publisher(LabelInfo, topic, LATCHED_QOS)
    publisher.publish(deserialize_message(bytes.fromhex(message_hex), LabelInfo))
    print('published', flush=True)
    deadline = time.monotonic() + PUBLISHER_LIFETIME_S
    while rclpy.ok() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)


def subscribe(topic: str) -> int:
    """Wait for one message and print it serialised as hex; return 1 on timeout."""
    node = rclpy.create_node('label_info_late_subscriber')
    received = []
    node.create_subscription(LabelInfo, topic, received.append, LATCHED_QOS)
    deadline = time.monotonic() + SUBSCRIBER_TIMEOUT_S
    while not received and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if not received:
        print('timeout', flush=True)
        return 1
    print(serialize_message(received[0]).hex(), flush=True)
    return 0


def main(argv: list) -> int:
    """Run the role named by argv[0]."""
    rclpy.init()
    try:
        if argv[0] == 'publisher':
            publish(argv[1], argv[2])
            return 0
        return subscribe(argv[1])
    except KeyboardInterrupt:
        return 0
    finally:
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
