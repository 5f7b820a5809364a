"""Health of the node: counters and latencies, diagnostic_msgs, and throttled log lines.

``NodeStatistics`` is shared by the camera input and the processing threads; ``health``
summarises it for people; ``RejectionLog`` keeps a camera that sends only malformed frames
from flooding the log (at most ``burst`` lines of one kind within ``period_s``, and the next
line of that kind says how many went unlogged); ``forward_package_logs`` sends the engine's
Python log records to the node's ROS logger.
"""
import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, List, Optional, Tuple

import numpy as np

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

RATE_WINDOW_S = 5.0
WINDOW_SAMPLES = 300
REJECTION_LOG_PERIOD_S = 5.0
REJECTION_LOG_BURST = 3
LATENCY_NAMES = ('inference', 'receive_to_publish', 'overhead', 'take', 'decode', 'publish',
                 'stamp_to_publish', 'frame_age', 'period')
MAX_STAMP_TO_RECEIVE_MS = 60_000.0
"""A camera stamp older than this at reception is not on the node's clock (bag or sim time)."""
MAX_STAMP_AHEAD_MS = 1_000.0
"""A stamp this far ahead of the node's clock is not on it either (beyond clock skew)."""
STAMP_NOT_ON_CLOCK = ('n/a: the camera stamps are not on the node clock (a bag or a simulation '
                      'without use_sim_time?)')
MAX_MESSAGE_REASON_CHARS = 160


def stamp_on_node_clock(stamp_to_publish_ms: float, receive_to_publish_ms: float) -> bool:
    """Return True when a frame's stamp is on the node's clock, so that its age means something.

    The time from the stamp to the frame's reception must lie between a little ahead (clock
    skew between hosts) and ``MAX_STAMP_TO_RECEIVE_MS``; a bag replayed without
    ``use_sim_time``, or a simulation stamping from zero, is days or decades off.
    """
    stamp_to_receive_ms = stamp_to_publish_ms - receive_to_publish_ms
    return -MAX_STAMP_AHEAD_MS <= stamp_to_receive_ms <= MAX_STAMP_TO_RECEIVE_MS


def short_reason(error: BaseException, limit: int = MAX_MESSAGE_REASON_CHARS) -> str:
    """Return an error as its type and first sentence, short enough for a status message."""
    text = ' '.join(str(error).split())
    first = text.split('. ')[0].rstrip('.') or type(error).__name__
    if len(first) > limit:
        first = first[:limit - 3].rstrip() + '...'
    return f'{type(error).__name__}: {first}'


class RateWindow:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = RATE_WINDOW_S, max_events: int = WINDOW_SAMPLES) -> None:
        self.window_s = window_s
        self._times: Deque[float] = collections.deque(maxlen=max_events)

    def add(self, now_s: float) -> None:
        """Record one event at monotonic time ``now_s``."""
        self._times.append(now_s)

    def rate_hz(self, now_s: float) -> float:
        """Return the event rate; 0 when fewer than two events fall in the window."""
        recent = [t for t in self._times if now_s - t <= self.window_s]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])


class LatencyWindow:
    """The last ``max_samples`` durations in milliseconds, summarised on demand."""

    def __init__(self, max_samples: int = WINDOW_SAMPLES) -> None:
        self._values: Deque[float] = collections.deque(maxlen=max_samples)

    def add(self, value_ms: float) -> None:
        """Record one duration."""
        self._values.append(float(value_ms))

    def summary(self) -> Optional[Dict[str, float]]:
        """Return mean, p50, p99 and max, or None without samples."""
        if not self._values:
            return None
        values = np.sort(np.fromiter(self._values, np.float64))
        return {'mean': float(values.mean()), 'p50': _percentile(values, 50.0),
                'p99': _percentile(values, 99.0), 'max': float(values[-1])}


def _percentile(ordered: np.ndarray, percent: float) -> float:
    """Return a percentile of sorted values, interpolated as ``np.percentile`` does.

    One sort for every percentile of a window: the diagnostics of many cameras summarise
    dozens of windows each second, under the interpreter lock.
    """
    position = percent / 100.0 * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return float(ordered[below] + (ordered[above] - ordered[below]) * (position - below))


@dataclass
class FrameTimes:
    """Timings of one processed frame, in milliseconds.

    ``overhead_ms`` is the node's own share of receive-to-publish: without inference and
    without the wait for the previous frame; ``take_ms``, ``decode_ms`` and ``publish_ms`` are
    parts of it (taking the queued camera messages; message to pixels; outputs to messages
    and publishing them).
    """

    inference_ms: float
    receive_to_publish_ms: float
    overhead_ms: float
    stamp_to_publish_ms: Optional[float]
    """None when the stamp is not on the node's clock (see ``stamp_on_node_clock``)."""
    frame_age_ms: float
    period_ms: Optional[float]
    take_ms: float = 0.0
    decode_ms: float = 0.0
    publish_ms: float = 0.0


@dataclass
class NodeStatistics:
    """Counters and windows shared by the camera input and the processing threads."""

    received: int = 0
    processed: int = 0
    dropped: int = 0
    rejected: int = 0
    skipped_no_subscribers: int = 0
    failed: int = 0
    stale: int = 0
    stamps_not_on_clock: int = 0
    last_rejection: str = ''
    rejected_by_kind: Dict[str, int] = field(default_factory=dict)
    rejected_camera_infos: int = 0
    last_camera_info_rejection: str = ''
    last_received_s: Optional[float] = None
    input_gaps: int = 0
    lost_in_transport: int = 0
    longest_input_gap_s: float = 0.0
    input_rate: RateWindow = field(default_factory=RateWindow)
    output_rate: RateWindow = field(default_factory=RateWindow)
    latencies: Dict[str, LatencyWindow] = field(
        default_factory=lambda: {name: LatencyWindow() for name in LATENCY_NAMES})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def frame_received(self, now_s: float, dropped_older: bool = False) -> Optional[float]:
        """Count a frame that arrived (and an unprocessed one it replaced).

        Return the seconds since the previous frame arrived (None for the first).
        """
        with self.lock:
            self.received += 1
            self.dropped += int(dropped_older)
            self.input_rate.add(now_s)
            previous_s, self.last_received_s = self.last_received_s, now_s
        return None if previous_s is None else now_s - previous_s

    def frame_dropped(self) -> None:
        """Count a received frame discarded unprocessed (the node stopped processing)."""
        with self.lock:
            self.dropped += 1

    def frame_rejected(self, reason: str, kind: str = 'other') -> None:
        """Count a malformed frame (or one that could not be processed), by kind."""
        with self.lock:
            self.rejected += 1
            self.rejected_by_kind[kind] = self.rejected_by_kind.get(kind, 0) + 1
            self.last_rejection = reason

    def camera_info_rejected(self, reason: str) -> None:
        """Count a camera_info that cannot be used."""
        with self.lock:
            self.rejected_camera_infos += 1
            self.last_camera_info_rejection = reason

    def frames_pushed_out(self, count: int) -> None:
        """Count frames that reached the node but left its input queue for newer ones unread."""
        with self.lock:
            self.received += count
            self.dropped += count

    def frames_lost(self, count: int) -> None:
        """Count frames the camera sent that never reached the node."""
        with self.lock:
            self.lost_in_transport += count

    def input_gap(self, gap_s: float) -> None:
        """Count a pause of the camera longer than the input timeout."""
        with self.lock:
            self.input_gaps += 1
            self.longest_input_gap_s = max(self.longest_input_gap_s, gap_s)

    def seconds_since_last_frame(self, now_s: float) -> Optional[float]:
        """Return how long ago the last frame arrived (None before the first)."""
        with self.lock:
            last_s = self.last_received_s
        return None if last_s is None else now_s - last_s

    def frame_skipped(self) -> None:
        """Count a frame not processed because nobody subscribes."""
        with self.lock:
            self.skipped_no_subscribers += 1

    def frame_failed(self) -> None:
        """Count a frame whose inference raised."""
        with self.lock:
            self.failed += 1

    def frame_published(self, now_s: float, times: FrameTimes) -> None:
        """Record a processed frame's timings; a frame older than one period counts as stale."""
        with self.lock:
            self.processed += 1
            self.output_rate.add(now_s)
            self.latencies['inference'].add(times.inference_ms)
            self.latencies['receive_to_publish'].add(times.receive_to_publish_ms)
            self.latencies['overhead'].add(times.overhead_ms)
            self.latencies['take'].add(times.take_ms)
            self.latencies['decode'].add(times.decode_ms)
            self.latencies['publish'].add(times.publish_ms)
            if times.stamp_to_publish_ms is None:
                self.stamps_not_on_clock += 1
            else:
                self.latencies['stamp_to_publish'].add(times.stamp_to_publish_ms)
            self.latencies['frame_age'].add(times.frame_age_ms)
            if times.period_ms is not None:
                self.latencies['period'].add(times.period_ms)
                if times.frame_age_ms > times.period_ms:
                    self.stale += 1

    def snapshot(self, now_s: Optional[float] = None) -> Dict[str, object]:
        """Return every figure as plain numbers (for diagnostics and benchmarks)."""
        now_s = time.monotonic() if now_s is None else now_s
        with self.lock:
            result: Dict[str, object] = {
                'frames_received': self.received, 'frames_processed': self.processed,
                'frames_dropped': self.dropped, 'frames_rejected': self.rejected,
                'frames_skipped_no_subscribers': self.skipped_no_subscribers,
                'frames_failed': self.failed, 'frames_stale': self.stale,
                'frames_stamp_not_on_clock': self.stamps_not_on_clock,
                'last_rejection': self.last_rejection,
                'camera_info_rejected': self.rejected_camera_infos,
                'last_camera_info_rejection': self.last_camera_info_rejection,
                'input_gaps': self.input_gaps,
                'frames_lost_in_transport': self.lost_in_transport,
                'longest_input_gap_s': self.longest_input_gap_s,
                'input_rate_hz': self.input_rate.rate_hz(now_s),
                'output_rate_hz': self.output_rate.rate_hz(now_s),
            }
            for kind, count in self.rejected_by_kind.items():
                result[f'frames_rejected_{kind}'] = count
            for name, window in self.latencies.items():
                summary = window.summary()
                for key, value in (summary or {}).items():
                    result[f'{name}_ms_{key}'] = value
            if self.stamps_not_on_clock and self.latencies['stamp_to_publish'].summary() is None:
                result['stamp_to_publish_ms'] = STAMP_NOT_ON_CLOCK
        return result


def _format(value: object) -> str:
    if isinstance(value, float):
        return f'{value:.2f}'
    return str(value)


def diagnostic_status(name: str, hardware_id: str, level: bytes, message: str,
                      values: List[Tuple[str, object]]) -> DiagnosticStatus:
    """Return one DiagnosticStatus with values formatted as text."""
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=key, value=_format(value))
                                    for key, value in values])


def health(state: str, snapshot: Dict[str, object], camera_info_known: bool,
           rejected_since_last: int, engine_error: Optional[str],
           has_engine: bool, input_silent_s: Optional[float] = None,
           input_timeout_s: float = 0.0) -> Tuple[bytes, str]:
    """Return (level, message) summarising the node's state for people.

    ``input_silent_s`` is how long ago the last image arrived; beyond ``input_timeout_s``
    (when positive) the input counts as stopped.
    """
    if not has_engine and engine_error:
        return DiagnosticStatus.ERROR, f'no engine: {engine_error}'
    if state != 'active':
        return DiagnosticStatus.WARN, f'{state}: not processing images'
    problems = []
    if engine_error:
        problems.append(f'engine rebuild failed, previous engine still serving: '
                        f'{engine_error}')
    if snapshot['frames_received'] == 0:
        problems.append('no image received yet')
    elif input_timeout_s > 0.0 and input_silent_s is not None \
            and input_silent_s > input_timeout_s:
        problems.append(f'input stale: no image for {input_silent_s:.1f} s (camera stopped?)')
    if snapshot['frames_received'] and not camera_info_known:
        problems.append('no camera_info received: depth/camera_info is not published')
        if snapshot.get('camera_info_rejected'):
            problems.append(f'camera_info rejected: {snapshot["last_camera_info_rejection"]}')
    if rejected_since_last:
        problems.append(f'{rejected_since_last} malformed image(s) rejected: '
                        f'{snapshot["last_rejection"]}')
    if problems:
        return DiagnosticStatus.WARN, '; '.join(problems)
    return DiagnosticStatus.OK, 'processing'


def diagnostic_array(stamp, statuses: List[DiagnosticStatus]) -> DiagnosticArray:
    """Return a DiagnosticArray message."""
    array_msg = DiagnosticArray(status=statuses)
    array_msg.header.stamp = stamp
    return array_msg


class RejectionLog:
    """Throttled, per-kind warnings; safe to call from several threads."""

    def __init__(self, warn: Callable[[str], None], period_s: float = REJECTION_LOG_PERIOD_S,
                 burst: int = REJECTION_LOG_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._warn = warn
        self._period_s = period_s
        self._burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._logged_s: Dict[str, Deque[float]] = {}
        self._unlogged: Dict[str, int] = {}

    def record(self, kind: str, message: str) -> bool:
        """Log ``message`` unless ``kind`` used up its lines of the period; return if logged."""
        now_s = self._clock()
        with self._lock:
            times = self._logged_s.setdefault(kind, collections.deque(maxlen=self._burst))
            if len(times) == self._burst and now_s - times[0] < self._period_s:
                self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
                return False
            times.append(now_s)
            unlogged = self._unlogged.pop(kind, 0)
        if unlogged:
            message += (f' [{unlogged} more rejection(s) of kind {kind} not logged since the '
                        f'previous message of this kind]')
        self._warn(message)
        return True


class RosLogHandler(logging.Handler):
    """A logging handler that writes records through an rclpy logger."""

    def __init__(self, ros_logger) -> None:
        super().__init__()
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record at the matching ROS severity.

        rclpy remembers the severity of each call site, so every severity has its own call.
        """
        try:
            message = self.format(record)
            if record.levelno >= logging.ERROR:
                self._ros_logger.error(message)
            elif record.levelno >= logging.WARNING:
                self._ros_logger.warning(message)
            elif record.levelno >= logging.INFO:
                self._ros_logger.info(message)
            else:
                self._ros_logger.debug(message)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


def forward_package_logs(ros_logger, package: str = 'hydranet_ros') -> RosLogHandler:
    """Route the package's Python log records (INFO and above) to ``ros_logger``."""
    handler = RosLogHandler(ros_logger)
    handler.setFormatter(logging.Formatter('%(message)s'))
    python_logger = logging.getLogger(package)
    python_logger.addHandler(handler)
    python_logger.setLevel(logging.INFO)
    python_logger.propagate = False
    return handler
