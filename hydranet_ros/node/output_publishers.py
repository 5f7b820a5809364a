"""The output publishers, created and destroyed as the publish_* parameters change."""
import threading
from typing import Dict, Optional

from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image

from hydranet_ros.msg import DepthSegmentation

from .parameters import NodeSettings, OUTPUTS

OUTPUT_TOPICS = {
    'depth': ('depth/image', Image),
    'camera_info': ('depth/camera_info', CameraInfo),
    'labels': ('segmentation/labels', Image),
    'color': ('segmentation/color', Image),
    'confidence': ('segmentation/confidence', Image),
    'bundle': ('perception', DepthSegmentation),
}
assert set(OUTPUT_TOPICS) == set(OUTPUTS)


class OutputPublishers:
    """One publisher per enabled output; ``lock`` is held while publishing one frame."""

    def __init__(self, node: Node, qos: QoSProfile) -> None:
        self._node = node
        self._qos = qos
        self._publishers: Dict[str, Publisher] = {}
        self.lock = threading.RLock()

    def sync(self, settings: NodeSettings) -> None:
        """Create the publishers of enabled outputs and destroy those of disabled ones."""
        with self.lock:
            for name, (topic, msg_type) in OUTPUT_TOPICS.items():
                enabled = settings.publishes(name)
                if enabled and name not in self._publishers:
                    self._publishers[name] = self._node.create_publisher(
                        msg_type, topic, self._qos)
                elif not enabled and name in self._publishers:
                    self._node.destroy_publisher(self._publishers.pop(name))

    def subscribed(self, name: str) -> Optional[Publisher]:
        """Return the publisher of an output if it is enabled and someone subscribes."""
        publisher = self._publishers.get(name)
        if publisher is None or publisher.get_subscription_count() == 0:
            return None
        return publisher

    def any_subscribed(self) -> bool:
        """Whether any output has a subscriber."""
        return any(self.subscribed(name) is not None for name in list(self._publishers))

    def destroy(self) -> None:
        """Destroy every publisher."""
        with self.lock:
            for publisher in self._publishers.values():
                self._node.destroy_publisher(publisher)
            self._publishers.clear()
