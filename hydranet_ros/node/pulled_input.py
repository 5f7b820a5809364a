"""Camera subscriptions that the inference thread waits on and reads itself.

The executor of a lifecycle node rebuilds, each time it wakes, a wait set of every service,
timer, guard condition and QoS event of the node in Python. At 30 images and 30 camera_info
messages a second that cost about 6% of a core on a 2-core computer, time taken from the
network. Subscriptions created here belong to a callback group that no executor waits on or
runs; the inference thread waits on a wait set of these subscriptions alone, between frames,
and takes every queued message at once (the same pattern as rclpy's ``wait_for_message``).
"""
import time
from typing import Any, Dict, List, Optional, Tuple

from rclpy.callback_groups import CallbackGroup
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.utilities import timeout_sec_to_nsec

Message = Tuple[Any, Dict[str, Any]]
DRAIN_LIMIT_FACTOR = 4


class PulledCallbackGroup(CallbackGroup):
    """A callback group whose entities executors leave out of their wait sets."""

    def can_execute(self, entity) -> bool:
        """Never: the owner takes the messages itself."""
        return False

    def beginning_execution(self, entity) -> bool:
        """Never start a callback."""
        return False

    def ending_execution(self, entity) -> None:
        """Nothing runs, so nothing ends."""


class PulledInput:
    """Subscriptions of one node read by a thread of the caller's, not by the executor."""

    def __init__(self, node) -> None:
        self._node = node
        self._group = PulledCallbackGroup()
        self._subscriptions: List = []
        self._wake = node.create_guard_condition(_never_woken, callback_group=self._group)

    @property
    def subscriptions(self) -> List:
        """The subscriptions, in the order they were made."""
        return list(self._subscriptions)

    def subscribe(self, msg_type, topic: str, qos, raw: bool = False):
        """Create a subscription whose messages only ``take`` returns (serialised if ``raw``)."""
        subscription = self._node.create_subscription(
            msg_type, topic, _never_called, qos, callback_group=self._group, raw=raw)
        self._subscriptions.append(subscription)
        return subscription

    def destroy(self) -> None:
        """Destroy the subscriptions (after the reading thread has stopped)."""
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions.clear()

    def wake(self) -> None:
        """Make a ``wait`` in progress return at once."""
        self._wake.trigger()

    def wait(self, timeout_s: float) -> List:
        """Wait until a subscription has messages; return those that do (empty on timeout)."""
        subscriptions = self.subscriptions
        if not subscriptions:
            time.sleep(timeout_s)
            return []
        context = self._node.context
        wait_set = _rclpy.WaitSet(len(subscriptions), 1, 0, 0, 0, 0, context.handle)
        wait_set.clear_entities()
        for subscription in subscriptions:
            wait_set.add_subscription(subscription.handle)
        wait_set.add_guard_condition(self._wake.handle)
        wait_set.wait(timeout_sec_to_nsec(timeout_s))
        ready = wait_set.get_ready_entities('subscription')
        return [s for s in subscriptions if s.handle.pointer in ready]

    @staticmethod
    def depth(subscription) -> int:
        """Return the history depth of a subscription (at least 1)."""
        return max(1, int(subscription.qos_profile.depth))

    def take(self, subscription) -> List[Message]:
        """Take every queued message, oldest first, as (message, message info) pairs.

        A raw subscription's messages are the serialised bytes.
        """
        messages: List[Message] = []
        limit = DRAIN_LIMIT_FACTOR * self.depth(subscription)
        with subscription.handle:
            while len(messages) < limit:
                taken = subscription.handle.take_message(subscription.msg_type,
                                                         subscription.raw)
                if taken is None:
                    break
                info = taken[1] if len(taken) > 1 and isinstance(taken[1], dict) else {}
                messages.append((taken[0], info))
        return messages


def received_perf_s(info: Dict[str, Any], now_perf_s: Optional[float] = None) -> float:
    """Return when a message reached this process, in ``time.perf_counter`` seconds.

    DDS stamps each sample on reception (system clock, ns); without that stamp, now.
    """
    now_perf_s = time.perf_counter() if now_perf_s is None else now_perf_s
    received_ns = info.get('received_timestamp') or 0
    if received_ns <= 0:
        return now_perf_s
    waited_s = max(0.0, (time.time_ns() - received_ns) / 1e9)
    return now_perf_s - waited_s


def _never_called(_msg) -> None:
    """Do nothing: no executor runs the callbacks of pulled subscriptions."""


def _never_woken() -> None:
    """Do nothing: no executor runs the wake-up guard condition's callback."""
