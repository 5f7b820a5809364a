"""One camera's input: its subscriptions, checks, newest-frame slot and transport accounting.

The executor of a lifecycle node rebuilds, each time it wakes, a wait set of every entity of
the node in Python; at 30 images and 30 camera_info messages a second that cost about 6% of a
core on a 2-core computer, taken from the network. The camera subscriptions therefore belong
to a callback group that no executor waits on or runs (``PulledInput``): the inference thread
waits on a wait set of these subscriptions alone, between frames, and takes every queued
message at once (the pattern of rclpy's ``wait_for_message``). Each ``CameraInput`` checks what
it takes, keeps the newest good frame and the newest valid camera_info, counts frames lost on
the way (gaps in the publisher's sequence numbers) and knows how long the camera was silent.
"""
import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple, Union

import numpy as np

from rclpy.callback_groups import CallbackGroup
# rclpy has no public wait set; rclpy.wait_for_message uses this one the same way.
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message
from rclpy.utilities import timeout_sec_to_nsec
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from ..engine.images import decode_compressed, decode_raw
from .diagnostics import NodeStatistics, RejectionLog
from .input_checks import (CAMERA_INFO, RejectedInput, check_camera_info, check_compressed,
                           check_image)
from .messages import SerializedImage, SerializedImageError

Message = Tuple[Any, Dict[str, Any]]
CameraMessage = Union[Image, CompressedImage, SerializedImage]
DRAIN_LIMIT_FACTOR = 4
MAX_PUBLISHERS = 32
CAMERA_INFO_GRACE_S = 2.0
WARNING_THROTTLE_S = 10.0
MS_PER_S = 1000.0


@dataclass
class ReceivedFrame:
    """One camera message and the monotonic time (perf_counter seconds) it reached the node.

    ``take_ms`` is how long the node spent taking and checking the queued camera messages
    before it could start on this frame.
    """

    msg: CameraMessage
    received_s: float
    camera: 'CameraInput'
    take_ms: float = 0.0

    @property
    def header(self) -> Header:
        """The camera's header, copied onto every output."""
        return self.msg.header

    @property
    def compressed(self) -> bool:
        """Whether the message is a CompressedImage."""
        return isinstance(self.msg, CompressedImage)

    def decode_rgb(self) -> np.ndarray:
        """Return the frame as contiguous RGB uint8 (H, W, 3); raise ``ImageFormatError``."""
        msg = self.msg
        if self.compressed:
            return decode_compressed(msg.data, msg.format)
        return decode_raw(msg.data, msg.encoding, int(msg.width), int(msg.height),
                          int(msg.step), bool(msg.is_bigendian))


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
        self._wakes: List = []  # one guard condition per reading thread (lane)
        self.lanes(1)

    @property
    def subscriptions(self) -> List:
        """The subscriptions, in the order they were made."""
        return list(self._subscriptions)

    def subscribe(self, msg_type, topic: str, qos: QoSProfile, raw: bool = False):
        """Create a subscription whose messages only ``take`` returns (serialised if ``raw``)."""
        subscription = self._node.create_subscription(
            msg_type, topic, _never_called, qos, callback_group=self._group, raw=raw)
        self._subscriptions.append(subscription)
        return subscription

    def destroy(self, subscription) -> None:
        """Destroy one subscription (after the reading thread has stopped)."""
        self._subscriptions.remove(subscription)
        self._node.destroy_subscription(subscription)

    def lanes(self, count: int) -> None:
        """Prepare for ``count`` threads waiting at once, each on its own subscriptions."""
        while len(self._wakes) < count:
            self._wakes.append(self._node.create_guard_condition(
                _never_called, callback_group=self._group))

    def wake(self) -> None:
        """Make every ``wait`` in progress return at once."""
        for wake in self._wakes:
            wake.trigger()

    def wait(self, timeout_s: float, subscriptions: Optional[List] = None,
             lane: int = 0) -> List:
        """Wait until a subscription has messages; return those that do (empty on timeout).

        ``subscriptions`` (default: all) are those of the caller's ``lane``: threads waiting
        at once each need a lane of their own (see ``lanes``).
        """
        if subscriptions is None:
            subscriptions = self.subscriptions
        if not subscriptions:
            time.sleep(timeout_s)
            return []
        wait_set = _rclpy.WaitSet(len(subscriptions), 1, 0, 0, 0, 0, self._node.context.handle)
        wait_set.clear_entities()
        for subscription in subscriptions:
            wait_set.add_subscription(subscription.handle)
        wait_set.add_guard_condition(self._wakes[lane].handle)
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


class SequenceGaps:
    """Count the sequence numbers skipped by each publisher since its previous message.

    DDS numbers every sample a writer sends; a best-effort input loses samples without telling
    the node, and the gaps between the numbers it does receive from one publisher count them.
    """

    def __init__(self, max_publishers: int = MAX_PUBLISHERS) -> None:
        self._last: 'collections.OrderedDict[Hashable, int]' = collections.OrderedDict()
        self._max_publishers = max_publishers

    def missing(self, publisher: Hashable, sequence: Optional[int]) -> int:
        """Return how many messages of ``publisher`` were skipped before ``sequence``.

        The first message of a publisher, an unknown sequence number (0 or None) and a number
        that goes backwards (a restarted publisher) count no loss.
        """
        if not sequence:
            return 0
        last = self._last.pop(publisher, None)
        self._last[publisher] = sequence
        if len(self._last) > self._max_publishers:
            self._last.popitem(last=False)
        if last is None or sequence <= last:
            return 0
        return sequence - last - 1

    def reset(self) -> None:
        """Forget every publisher: what was sent before now is not counted as lost."""
        self._last.clear()


class CameraInput:
    """The image and camera_info topics of one camera, read by the inference thread.

    ``take_ready`` takes every queued message of the subscriptions that are ready, checks
    them (a malformed image is rejected and never displaces a good frame), counts frames lost
    or pushed out of the input queue, and keeps the newest good frame for ``take_frame``.
    """

    def __init__(self, node, pulled: PulledInput, stats: NodeStatistics,
                 rejections: RejectionLog, prefix: str = '') -> None:
        self._node = node
        self._pulled = pulled
        self._stats = stats
        self._rejections = rejections
        self._prefix = f'{prefix.strip("/")}/' if prefix.strip('/') else ''
        self._lock = threading.Lock()
        self._image_subscription = None
        self._info_subscription = None
        self._frame: Optional[ReceivedFrame] = None
        self._camera_info: Optional[CameraInfo] = None
        self._gaps = SequenceGaps()
        self._max_pixels = 0
        self._timeout_s = 0.0
        self._compressed = False
        self._activated_s: Optional[float] = None
        self._first_image_s: Optional[float] = None
        self._looked_s: Optional[float] = None
        self._waiting = False
        self._stale_warned = False

    @property
    def stats(self) -> NodeStatistics:
        """This camera's counters and latencies."""
        return self._stats

    @property
    def name(self) -> str:
        """Return the camera's topic prefix: '' for the single unnamed camera."""
        return self._prefix.rstrip('/')

    @property
    def has_frame(self) -> bool:
        """Whether a good frame waits to be processed."""
        return self._frame is not None

    # ------------------------------------------------------------------ topics
    def topic(self, name: str) -> str:
        """Return the relative topic ``name`` of this camera (``front/image``)."""
        return self._prefix + name

    @property
    def image_topic(self) -> str:
        """The resolved topic the images come from."""
        topic = self._node.resolve_topic_name(self.topic('image'))
        return topic + '/compressed' if self._compressed else topic

    @property
    def camera_info_topic(self) -> str:
        """The resolved camera_info topic."""
        return self._node.resolve_topic_name(self.topic('camera_info'))

    @property
    def subscriptions(self) -> List:
        """The image and camera_info subscriptions; none while inactive."""
        return [subscription for subscription in (self._image_subscription,
                                                  self._info_subscription)
                if subscription is not None]

    def subscribe(self, settings, qos: QoSProfile) -> None:
        """Subscribe to the camera and start counting afresh (on activation)."""
        self._max_pixels = settings.max_input_pixels
        self._timeout_s = settings.input_timeout_s
        self._compressed = settings.use_compressed_input
        if self._compressed:
            self._image_subscription = self._pulled.subscribe(
                CompressedImage, self.topic('image') + '/compressed', qos)
        else:
            self._image_subscription = self._pulled.subscribe(
                Image, self.topic('image'), qos, raw=True)
        self._info_subscription = self._pulled.subscribe(CameraInfo, self.topic('camera_info'),
                                                         qos)
        self._gaps.reset()  # frames sent while inactive were not lost
        self._activated_s = self._looked_s = time.perf_counter()
        self._stale_warned = False

    def configure(self, settings) -> None:
        """Apply the run-time parameters that the input checks use."""
        self._max_pixels = settings.max_input_pixels
        self._timeout_s = settings.input_timeout_s

    def unsubscribe(self) -> bool:
        """Destroy the subscriptions; return whether an unprocessed frame was discarded."""
        for subscription in (self._image_subscription, self._info_subscription):
            if subscription is not None:
                self._pulled.destroy(subscription)
        self._image_subscription = self._info_subscription = None
        self._activated_s = None
        with self._lock:
            had_frame, self._frame = self._frame is not None, None
        return had_frame

    def forget_camera_info(self) -> None:
        """Drop the calibration (the node was cleaned up)."""
        with self._lock:
            self._camera_info = None

    # ------------------------------------------------------------------ inference thread
    def take_ready(self, ready: List, started_s: float) -> None:
        """Take and check the queued messages of the ready subscriptions among ``ready``."""
        if self._info_subscription in ready:
            for msg, _ in self._pulled.take(self._info_subscription):
                self._on_camera_info(msg)
        subscription = self._image_subscription
        if subscription in ready:
            messages = self._pulled.take(subscription)
            queue_was_full = len(messages) >= self._pulled.depth(subscription)
            for index, (msg, info) in enumerate(messages):
                if subscription.raw:
                    msg = _image_of(msg)
                self._on_image(msg, info, queue_was_full and index == 0)
            with self._lock:
                if self._frame is not None:
                    self._frame.take_ms = (time.perf_counter() - started_s) * MS_PER_S
        self._looked_s = time.perf_counter()

    def set_waiting(self, waiting: bool) -> None:
        """Tell the input whether the inference thread is waiting on the camera right now."""
        if not waiting:
            self._looked_s = time.perf_counter()
        self._waiting = waiting

    def take_frame(self) -> Optional[ReceivedFrame]:
        """Remove and return the newest good frame, if any."""
        with self._lock:
            frame, self._frame = self._frame, None
        return frame

    @property
    def camera_info(self) -> Optional[CameraInfo]:
        """The newest valid calibration of the camera, or None before the first."""
        with self._lock:
            return self._camera_info

    def _on_image(self, msg: CameraMessage, info: Dict[str, Any], queue_was_full: bool) -> None:
        now_s = received_perf_s(info)
        if self._activated_s is not None and now_s < self._activated_s:
            now_s = self._activated_s  # queued before activation: taken as arriving then
        self._count_missing(info, queue_was_full)
        if self._first_image_s is None:
            self._first_image_s = now_s
        frame = ReceivedFrame(msg, now_s, self)
        try:
            if frame.compressed:
                check_compressed(msg, self._max_pixels)
            else:
                check_image(msg, self._max_pixels)
        except RejectedInput as error:
            self._note_arrival(now_s, self._stats.frame_received(now_s), queue_was_full)
            self.reject(frame, error.kind, str(error))
            return
        with self._lock:
            dropped, self._frame = self._frame is not None, frame
        self._note_arrival(now_s, self._stats.frame_received(now_s, dropped), queue_was_full)

    def _count_missing(self, info: Dict[str, Any], queue_was_full: bool) -> None:
        """Count frames skipped in the publisher's sequence before this one.

        When the subscription's queue was full, the oldest frames were pushed out while the
        network ran: dropped for newer ones, as designed. Otherwise they were lost on the way.
        """
        gid = info.get('publisher_gid') or {}
        missing = self._gaps.missing(bytes(gid.get('data', b'')),
                                     info.get('publication_sequence_number'))
        if not missing:
            return
        if queue_was_full:
            self._stats.frames_pushed_out(missing)
            return
        self._stats.frames_lost(missing)
        self._node.get_logger().warning(
            f'{missing} frame(s) sent on {self.image_topic} never reached the node (lost by a '
            f'best-effort transport); counted as frames_lost_in_transport',
            throttle_duration_sec=WARNING_THROTTLE_S)

    def _note_arrival(self, now_s: float, gap_s: Optional[float], queue_was_full: bool) -> None:
        stale, self._stale_warned = self._stale_warned, False
        if gap_s is None or queue_was_full:  # a full queue: the frames between were pushed out
            return
        if self._activated_s is not None and now_s - gap_s < self._activated_s:
            gap_s = now_s - self._activated_s  # the previous frame came before activation
        if self._timeout_s <= 0.0 or gap_s <= self._timeout_s:
            return
        self._stats.input_gap(gap_s)
        if stale:
            self._node.get_logger().info(f'images resumed on {self.image_topic} after a gap '
                                         f'of {gap_s:.1f} s')

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            check_camera_info(msg)
        except RejectedInput as error:
            self._stats.camera_info_rejected(str(error))
            kept = self.camera_info is not None
            self._rejections.record(CAMERA_INFO, (
                f'rejected camera_info on {self.camera_info_topic} (stamp '
                f'{stamp_text(msg.header)}, frame {msg.header.frame_id!r}): {error}; ' +
                ('the last valid one is still used' if kept else
                 'depth/camera_info is not published until a valid one arrives')))
            return
        with self._lock:
            self._camera_info = msg

    def reject(self, frame: Optional[ReceivedFrame], kind: str, reason: str,
               verb: str = 'rejected a malformed') -> None:
        """Count a frame that cannot be processed and log why (throttled per kind)."""
        self._stats.frame_rejected(reason, kind)
        if frame is None:
            self._rejections.record(kind, f'rejected a frame ({kind}): {reason}')
            return
        what = 'compressed image' if frame.compressed else 'image'
        self._rejections.record(kind, (
            f'{verb} {what} on {self.image_topic} ({kind}; stamp {stamp_text(frame.header)}, '
            f'frame {frame.header.frame_id!r}): {reason}'))

    # ------------------------------------------------------------------ health
    def silence_s(self, now_s: Optional[float] = None) -> Optional[float]:
        """Return how long the camera is known to have sent nothing (None while inactive).

        Only time the inference thread has watched counts: while it is busy (a frame, a
        model swap), images may be waiting unread, so silence ends where it last looked.
        """
        if self._activated_s is None:
            return None
        now_s = time.perf_counter() if now_s is None else now_s
        last_s = self._stats.last_received_s
        since_s = self._activated_s if last_s is None else max(last_s, self._activated_s)
        watched_until_s = now_s if self._waiting else (self._looked_s or since_s)
        silent_s = max(0.0, watched_until_s - since_s)
        if last_s is not None and 0.0 < self._timeout_s < silent_s and not self._stale_warned:
            self._stale_warned = True
            self._node.get_logger().warning(
                f'input stale: no image on {self.image_topic} for {silent_s:.1f} s (more than '
                f'input_timeout_s {self._timeout_s:g}); the camera stopped or its topic is gone. '
                f'Outputs resume with the next image')
        return silent_s

    def warn_missing_camera_info(self) -> None:
        """Warn (throttled) that outputs flow without depth/camera_info, after a grace time."""
        first_s = self._first_image_s
        if first_s is None or time.perf_counter() - first_s < CAMERA_INFO_GRACE_S:
            return
        self._node.get_logger().warning(
            f'no camera_info received on {self.camera_info_topic}: outputs flow, but '
            f'depth/camera_info and depth/points are not published, depth is not rescaled to '
            f'the camera (and the perception bundle has an empty calibration) until it '
            f'arrives; remap camera_info to the calibration topic of the camera',
            throttle_duration_sec=WARNING_THROTTLE_S)


class Cameras:
    """Every camera of the node, read together by the inference thread or threads.

    With several inference threads (lanes), lane ``i`` of ``n`` owns cameras ``i``, ``i + n``,
    ...: a camera is only ever read and run by one thread, so its outputs keep their order.
    """

    def __init__(self, node, prefixes: Tuple[str, ...], rejections: RejectionLog) -> None:
        self._pulled = PulledInput(node)
        self.all: List[CameraInput] = [CameraInput(node, self._pulled, NodeStatistics(),
                                                   rejections, prefix) for prefix in prefixes]
        self._turns: List[int] = [0]  # per lane: the camera that goes first into its next batch

    def lanes(self, count: int) -> None:
        """Split the cameras between ``count`` threads that call ``next_frames`` at once."""
        self._pulled.lanes(count)
        self._turns = [0] * count

    def lane_cameras(self, lane: int = 0) -> List[CameraInput]:
        """Return the cameras that ``lane`` reads."""
        return self.all[lane::len(self._turns)]

    def subscribe(self, settings, qos: QoSProfile) -> None:
        """Subscribe every camera."""
        for camera in self.all:
            camera.subscribe(settings, qos)

    def unsubscribe(self) -> None:
        """Unsubscribe every camera; an unprocessed frame counts as dropped."""
        for camera in self.all:
            if camera.unsubscribe():
                camera.stats.frame_dropped()

    def forget_camera_info(self) -> None:
        """Drop every calibration."""
        for camera in self.all:
            camera.forget_camera_info()

    def wake(self) -> None:
        """Make every ``next_frames`` wait return at once."""
        self._pulled.wake()

    def next_frames(self, timeout_s: float, max_batch: int = 0,
                    lane: int = 0) -> Optional[List[ReceivedFrame]]:
        """Take every queued message of the lane's cameras (checked, counted); return a batch.

        The batch holds the newest frame of each of the lane's cameras that has one, at most
        ``max_batch`` (0: no limit), the cameras taking turns at going first, so that a faster
        camera never takes the place of a slower one; a silent camera costs nothing. None on
        timeout.
        """
        cameras = self.lane_cameras(lane)
        for camera in cameras:
            camera.set_waiting(True)
        try:
            ready = self._pulled.wait(
                timeout_s, [s for camera in cameras for s in camera.subscriptions], lane)
        finally:
            for camera in cameras:
                camera.set_waiting(False)
        started_s = time.perf_counter()
        for camera in cameras:
            camera.take_ready(ready, started_s)
        count, turn = len(cameras), self._turns[lane]
        order = [cameras[(turn + i) % count] for i in range(count)]
        batch = [camera for camera in order if camera.has_frame][:max_batch or count]
        if batch:
            self._turns[lane] = (cameras.index(batch[-1]) + 1) % count
        frames = [frame for frame in (camera.take_frame() for camera in batch) if frame]
        return frames or None


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


def stamp_text(header: Header) -> str:
    """Return a header's stamp as ``sec.nanosec``."""
    return f'{header.stamp.sec}.{header.stamp.nanosec:09d}'


def _image_of(serialized: bytes) -> Union[SerializedImage, Image]:
    """Return a serialised Image read in place, or deserialised when not plain CDR."""
    try:
        return SerializedImage(serialized)
    except SerializedImageError:
        return deserialize_message(serialized, Image)


def _never_called(*_args: Callable) -> None:
    """Do nothing: no executor runs the callbacks of pulled entities."""
