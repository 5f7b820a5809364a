"""Watching a running hydranet_node from a tool: its outputs by stamp and its diagnostics.

Shared by the reliability tools (fuzzing, soak): ``NodeWatch`` records when each output stamp
arrives and the latest diagnostics of each node; ``write_random_checkpoint`` makes a small
random-weight model so that a test run does not depend on trained weights.
"""
import os
import subprocess
import threading
import time
from typing import Callable, Dict, Iterable, Optional, Tuple

from hydranet_ros.tools.node_processes import Listener

StampKey = Tuple[int, int]
OUTPUT_QOS_DEPTH = 10
DIAGNOSTICS_QOS_DEPTH = 10
NS_PER_S = 10**9


def write_random_checkpoint(path: str, num_classes: int = 4, seed: int = 0) -> str:
    """Save a HydraNet with random weights and ``num_classes`` classes; return its path."""
    import torch

    from hydranet_ros.model import HydraNetConfig, build_hydranet, save_hydranet
    torch.manual_seed(seed)
    model = build_hydranet(HydraNetConfig(num_classes=num_classes, max_depth_m=20.0))
    save_hydranet(model, path, extra={'purpose': 'random weights for reliability runs'})
    return os.path.abspath(path)


def source_revision() -> str:
    """Return the git commit of the source tree (with ``+changes`` if modified), or ''."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=root, text=True,
                                capture_output=True, check=True).stdout.strip()
        changed = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no',
                                  '--', 'hydranet_ros'], cwd=root, text=True,
                                 capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ''
    return commit + ('+changes' if changed else '')


def stamp_key(header) -> StampKey:
    """Return (sec, nanosec) of a header."""
    return (header.stamp.sec, header.stamp.nanosec)


def stamp_ns(header) -> int:
    """Return a header's stamp in nanoseconds."""
    return header.stamp.sec * NS_PER_S + header.stamp.nanosec


class NodeWatch:
    """Output stamps (with arrival time) and the latest diagnostics of hydranet_node(s)."""

    def __init__(self, listener: Listener, output_topics: Iterable[str],
                 on_output: Optional[Callable[[str, object, int], None]] = None) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        self._condition = threading.Condition()
        self._on_output = on_output
        self.arrivals: Dict[str, Dict[StampKey, int]] = {}
        self.diagnostics: Dict[str, Dict[str, str]] = {}
        self.diagnostics_messages: Dict[str, str] = {}
        reliable = QoSProfile(depth=OUTPUT_QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        for topic in output_topics:
            self.arrivals[topic] = {}
            msg_type = CameraInfo if topic.endswith('camera_info') else Image
            listener.listen(msg_type, topic,
                            lambda msg, topic=topic: self._output(topic, msg), reliable)
        listener.listen(DiagnosticArray, '/diagnostics', self._diagnostics,
                        DIAGNOSTICS_QOS_DEPTH)

    def _output(self, topic: str, msg) -> None:
        arrival_ns = time.time_ns()
        with self._condition:
            self.arrivals[topic][stamp_key(msg.header)] = arrival_ns
            self._condition.notify_all()
        if self._on_output is not None:
            self._on_output(topic, msg, arrival_ns)

    def _diagnostics(self, msg) -> None:
        with self._condition:
            for status in msg.status:
                name = status.name.split(':')[0]
                self.diagnostics[name] = {item.key: item.value for item in status.values}
                self.diagnostics_messages[name] = status.message
            self._condition.notify_all()

    def wait_for_stamp(self, topic: str, key: StampKey, timeout_s: float) -> Optional[int]:
        """Return the arrival time (ns) of the output stamped ``key``; None on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while key not in self.arrivals[topic]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)
            return self.arrivals[topic][key]

    def has_stamp(self, topic: str, key: StampKey) -> bool:
        """Return whether an output stamped ``key`` arrived on ``topic``."""
        with self._condition:
            return key in self.arrivals[topic]

    def latest(self, node_name: str) -> Dict[str, str]:
        """Return the node's last diagnostics values (empty before the first)."""
        with self._condition:
            return dict(self.diagnostics.get(node_name, {}))

    def message(self, node_name: str) -> str:
        """Return the node's last diagnostics message."""
        with self._condition:
            return self.diagnostics_messages.get(node_name, '')

    def wait_for_diagnostics(self, node_name: str, predicate: Callable[[Dict[str, str]], bool],
                             timeout_s: float) -> Optional[Dict[str, str]]:
        """Return the first diagnostics of the node that satisfy ``predicate``; None on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:
                values = self.diagnostics.get(node_name)
                if values is not None and predicate(values):
                    return dict(values)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)

    def clear_diagnostics(self, node_name: str) -> None:
        """Forget the node's diagnostics (to wait for fresh ones)."""
        with self._condition:
            self.diagnostics.pop(node_name, None)


def count(values: Dict[str, str], key: str) -> int:
    """Return an integer diagnostics value (0 when absent)."""
    try:
        return int(float(values.get(key, 0)))
    except ValueError:
        return 0
