"""Processing frames: the inference threads, the optional publishing thread, and their timing.

An inference thread takes the newest frame of each of its cameras that has one, decodes them
and runs the network on them as one batch; the rest (decoding the network's outputs, building
and publishing each camera's messages) runs on the same thread, or, when pipelining, on the
publishing thread while the network runs the next batch. There is one inference thread (lane),
except on the CPU with several cameras: then each core's share of the threads runs a lane of
its own over its share of the cameras, so that the lanes never wait for each other (see
``engine_holder.inference_lanes``). Every frame ends counted in its camera's statistics:
published, dropped, skipped, rejected or failed.
"""
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, List, Optional, Tuple, TypeVar

import numpy as np

from ..engine import ImageFormatError, InferenceEngine
from ..engine.memory import release_unused_heap
from ..engine.prediction import NetworkOutputs
from .camera_input import ReceivedFrame
from .diagnostics import FrameTimes, stamp_on_node_clock
from .engine_holder import (inference_lanes, is_out_of_memory, lane_threads, pipelined,
                            release_memory)
from .input_checks import ENCODING, OUT_OF_MEMORY, UNDECODABLE
from .depth_trust import DepthTrust
from .outputs import OutputFrame, limit_outputs

Item = TypeVar('Item')
POLL_PERIOD_S = 0.5
STOP_TIMEOUT_S = 30.0
WARNING_THROTTLE_S = 10.0
MS_PER_S = 1000.0


class Worker(Generic[Item]):
    """Run ``process(item)`` on a background thread for each item ``next_item`` returns.

    ``next_item(timeout_s)`` waits up to ``timeout_s`` for the next item (None if there is
    none); ``wake()`` must make a waiting ``next_item`` return early. ``on_error`` receives
    unexpected exceptions; the thread keeps running.
    """

    def __init__(self, next_item: Callable[[float], Optional[Item]],
                 process: Callable[[Item], None], on_error: Callable[[BaseException], None],
                 wake: Callable[[], Any], name: str) -> None:
        self._next_item = next_item
        self._process = process
        self._on_error = on_error
        self._wake = wake
        self._name = name
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (no-op if it runs)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop after the item in progress; return False if the thread did not end in time."""
        self._stop.set()
        self._wake()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        stopped = not self._thread.is_alive()
        if stopped:
            self._thread = None
        return stopped

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._next_item(POLL_PERIOD_S)
            except Exception as error:  # e.g. the context shut down under the wait
                self._on_error(error)
                self._stop.wait(POLL_PERIOD_S)
                continue
            if item is None or self._stop.is_set():
                continue
            try:
                self._process(item)
            except Exception as error:  # the thread must survive any frame
                self._on_error(error)


class Handoff(Generic[Item]):
    """Pass items one at a time between two threads; the giver waits while one is pending."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Optional[Item] = None
        self._closed = False

    def put(self, item: Item) -> bool:
        """Wait until the previous item was taken, then leave ``item``; False once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is None or self._closed)
            if self._closed:
                return False
            self._item = item
            self._condition.notify_all()
        return True

    def take(self, timeout_s: Optional[float] = None) -> Optional[Item]:
        """Wait for an item and remove it; None on timeout or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout_s)
            if self._closed or self._item is None:
                return None
            item, self._item = self._item, None
            self._condition.notify_all()
            return item

    def close(self) -> Optional[Item]:
        """Wake both sides; later calls fail until ``reopen``. Return the item left untaken."""
        with self._condition:
            self._closed = True
            lost, self._item = self._item, None
            self._condition.notify_all()
        return lost

    def reopen(self) -> None:
        """Accept items again after ``close``."""
        with self._condition:
            self._closed = False


@dataclass
class FrameInFlight:
    """A frame whose network has run, on its way to the outputs.

    Times are ``time.perf_counter`` seconds; ``waited_s`` is how long the frame waited for
    the inference thread (it arrived while the previous frame held it) and ``period_ms`` the
    time between the starts of the two frames (None when the inference thread was idle).
    """

    frame: ReceivedFrame
    engine: InferenceEngine
    rgb: np.ndarray
    network: NetworkOutputs
    start_s: float
    decode_ms: float
    network_ms: float
    network_end_s: float
    waited_s: float
    period_ms: Optional[float]


@dataclass
class Lane:
    """One inference thread: its cameras' worker and the times of its previous batch."""

    worker: Worker[List[ReceivedFrame]]
    threads: Optional[int]  # of the network; None: the backend's own
    previous_start_s: Optional[float] = None
    previous_end_s: Optional[float] = None


class FrameProcessor:
    """Runs the engine on camera frames and hands the results to each camera's outputs.

    ``context`` is the node: it provides ``settings``, ``engines`` (the engine holder),
    ``outputs_of(camera)``, ``is_active()``, ``publish_label_info(outputs)``, the logger and
    the clock. ``cameras`` (:class:`~.camera_input.Cameras`) returns the newest frame of each
    ready camera of a lane (at most one per camera), or None.
    """

    def __init__(self, context, cameras) -> None:
        self._context = context
        self._cameras = cameras
        self._handoff: Handoff[List[FrameInFlight]] = Handoff()
        self._lanes: List[Lane] = []
        self._publishing = Worker(self._handoff.take, self._finish_batch, self.on_error,
                                  self._handoff.close, name='publishing')
        self._last_image_size: Optional[tuple] = None
        self._depth_trust = DepthTrust(context.get_logger)
        self._count_lock = threading.Lock()
        self.batches = 0
        self.batched_frames = 0

    @property
    def running(self) -> bool:
        """Whether an inference thread runs."""
        return any(lane.worker.running for lane in self._lanes)

    @property
    def lanes(self) -> int:
        """How many inference threads run (0 while stopped)."""
        return len(self._lanes)

    @property
    def last_image_size(self) -> Optional[tuple]:
        """(height, width) of the last processed image, for warming up a new engine."""
        return self._last_image_size

    def start(self) -> None:
        """Start the inference threads (one per lane) and the publishing thread."""
        if self.running:
            return
        engine = self._context.engines.engine
        cameras = len(self._cameras.all)
        count = (inference_lanes(engine, cameras, self._context.settings.inference_lanes)
                 if engine is not None else 1)
        threads = lane_threads(engine, count) if engine is not None else None
        self._cameras.lanes(count)
        self._lanes = [Lane(Worker(
            lambda timeout_s, lane=index: self._cameras.next_frames(
                timeout_s, self._context.settings.max_batch, lane),
            lambda frames, lane=index: self._process_frames(frames, self._lanes[lane]),
            self.on_error, self._cameras.wake,
            name='inference' if count == 1 else f'inference_{index}'), threads)
            for index in range(count)]
        self._handoff.reopen()
        self._publishing.start()
        for lane in self._lanes:
            lane.worker.start()

    def stop(self) -> bool:
        """Stop after the frame in progress; return False if a thread did not end in time."""
        stopped = all([lane.worker.stop() for lane in self._lanes])
        if stopped:
            self._lanes = []
        for lost in self._handoff.close() or ():
            lost.frame.camera.stats.frame_dropped()
        return self._publishing.stop() and stopped

    def _accepted(self, frames: List[ReceivedFrame]) -> List[Tuple[ReceivedFrame, np.ndarray]]:
        """Return the frames to run with their RGB pixels; count the others."""
        context = self._context
        settings = context.settings
        accepted = []
        for frame in frames:
            stats = frame.camera.stats
            outputs = context.outputs_of(frame.camera)
            if context.engines.engine is None or outputs is None or not context.is_active():
                stats.frame_dropped()
                continue
            if settings.skip_without_subscribers and not outputs.any_subscribed():
                stats.frame_skipped()
                continue
            try:
                accepted.append((frame, frame.decode_rgb()))
            except (ImageFormatError, ValueError) as error:
                frame.camera.reject(frame, UNDECODABLE if frame.compressed else ENCODING,
                                    str(error))
        return accepted

    def _process_frames(self, frames: List[ReceivedFrame], lane: Lane) -> None:
        """Decode the frames and run the network on them together; then finish each."""
        start_s = time.perf_counter()
        engine = self._context.engines.engine
        accepted = self._accepted(frames)
        if not accepted or engine is None:
            return
        network_start_s = time.perf_counter()
        try:
            networks = engine.run_network_many([rgb for _, rgb in accepted],
                                               threads=lane.threads)
        except Exception as error:  # one bad batch must not stop the stream
            for frame, _ in accepted:
                self._failed(frame, engine, error)
            return
        network_end_s = time.perf_counter()
        with self._count_lock:
            self.batches += 1
            self.batched_frames += len(accepted)
        batch = []
        for (frame, rgb), network in zip(accepted, networks):
            waited_s, period_ms = 0.0, None
            if lane.previous_end_s is not None and frame.received_s < lane.previous_end_s:
                # It arrived while the previous batch held this thread: the network is the limit.
                waited_s = lane.previous_end_s - frame.received_s
                period_ms = (start_s - lane.previous_start_s) * MS_PER_S
            in_flight = FrameInFlight(
                frame=frame, engine=engine, rgb=rgb, network=network, start_s=start_s,
                decode_ms=(network_start_s - start_s) * MS_PER_S / len(accepted),
                network_ms=(network_end_s - network_start_s) * MS_PER_S,
                network_end_s=network_end_s, waited_s=waited_s, period_ms=period_ms)
            batch.append(in_flight)
        settings = self._context.settings
        if not pipelined(settings.pipeline, engine, max(1, len(settings.cameras)),
                         len(self._lanes)):
            self._finish_batch(batch)
        elif not self._handoff.put(batch):  # deactivated meanwhile
            for in_flight in batch:
                in_flight.frame.camera.stats.frame_dropped()
        lane.previous_start_s, lane.previous_end_s = start_s, time.perf_counter()

    def _finish_batch(self, batch: List[FrameInFlight]) -> None:
        """Finish every frame of a batch, the whole batch handed over at once."""
        for in_flight in batch:
            self._finish_frame(in_flight)

    def _finish_frame(self, in_flight: FrameInFlight) -> None:
        """Decode the network's outputs and publish them."""
        finish_start_s = time.perf_counter()
        frame, engine, rgb = in_flight.frame, in_flight.engine, in_flight.rgb
        context = self._context
        settings = context.settings
        outputs = context.outputs_of(frame.camera)
        if outputs is None:
            frame.camera.stats.frame_dropped()
            return
        try:
            prediction = engine.finish(in_flight.network, with_overlay=False)[0]
        except Exception as error:
            self._failed(frame, engine, error)
            return
        inference_ms = in_flight.network_ms + (time.perf_counter() - finish_start_s) * MS_PER_S
        height, width = rgb.shape[:2]
        if self._last_image_size != (height, width):
            release_unused_heap()  # a new size may have built (exported) a network for it
        self._last_image_size = (height, width)
        header = frame.header
        if outputs.frame_id_changed(header.frame_id):
            context.publish_label_info(outputs)
        info = outputs.camera_info_for(frame.camera.camera_info, header, width, height)
        if info is None:
            frame.camera.warn_missing_camera_info()
        scale = self._depth_trust.scale(frame.camera.name, settings, engine, info, width, height)
        limit_outputs(prediction, settings, engine.config, scale)
        publish_start_s = time.perf_counter()
        outputs.publish(OutputFrame(header=header, rgb=rgb, prediction=prediction,
                                    camera_info=info, settings=settings, colors=engine.colors,
                                    width=width, height=height, config=engine.config))
        end_s = time.perf_counter()
        self._record_times(in_flight, finish_start_s, end_s, inference_ms,
                           (end_s - publish_start_s) * MS_PER_S)

    def _record_times(self, in_flight: FrameInFlight, finish_start_s: float, end_s: float,
                      inference_ms: float, publish_ms: float) -> None:
        frame = in_flight.frame
        # Waiting for the inference thread, and for the publishing thread to finish the
        # previous frame, is the pipeline's limit, not this frame's overhead.
        waited_s = in_flight.waited_s + (finish_start_s - in_flight.network_end_s)
        receive_to_publish_ms = (end_s - frame.received_s) * MS_PER_S
        stamp = frame.header.stamp
        now_ns = self._context.get_clock().now().nanoseconds
        stamp_to_publish_ms = (now_ns - (stamp.sec * 10**9 + stamp.nanosec)) / 1e6
        frame.camera.stats.frame_published(end_s, FrameTimes(
            inference_ms=inference_ms, receive_to_publish_ms=receive_to_publish_ms,
            overhead_ms=receive_to_publish_ms - inference_ms - waited_s * MS_PER_S,
            stamp_to_publish_ms=stamp_to_publish_ms
            if stamp_on_node_clock(stamp_to_publish_ms, receive_to_publish_ms) else None,
            frame_age_ms=(in_flight.start_s - frame.received_s) * MS_PER_S,
            period_ms=in_flight.period_ms, take_ms=frame.take_ms, decode_ms=in_flight.decode_ms,
            publish_ms=publish_ms))

    def _failed(self, frame: Optional[ReceivedFrame], engine: Optional[InferenceEngine],
                error: BaseException) -> None:
        if is_out_of_memory(error):
            release_memory(engine.device if engine is not None else None)
            size = ''
            if frame is not None and not frame.compressed:
                size = f'{frame.msg.width}x{frame.msg.height} '
            reason = (f'out of memory while processing this {size}frame '
                      f'({type(error).__name__}: {str(error).strip()[:200]}); lower '
                      f'max_input_pixels or set inference_width/inference_height to bound the '
                      f'network input')
            if frame is not None:
                frame.camera.reject(frame, OUT_OF_MEMORY, reason, verb='could not process an')
            else:
                self._context.reject_unattributed(OUT_OF_MEMORY, reason)
            return
        if frame is not None:
            frame.camera.stats.frame_failed()
        self._context.get_logger().error(f'inference failed: {type(error).__name__}: {error}',
                                         throttle_duration_sec=WARNING_THROTTLE_S)

    def on_error(self, error: BaseException) -> None:
        """Count and log an error of a thread that is not tied to one frame.

        Errors of a context being shut down (a stop signal) are the end of the node, not a
        failure: they are not reported.
        """
        if not self._context.context.ok():
            return
        self._failed(None, self._context.engines.engine, error)
