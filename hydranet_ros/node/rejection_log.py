"""Warnings about rejected input: a few per kind and period, with the count left unsaid.

A camera that sends only malformed frames must not flood the log: at most ``burst`` lines of
one kind are logged within any ``period_s`` seconds (so that a few different problems in a
row are all shown), and the next line of that kind says how many went unlogged.
"""
import collections
import threading
import time
from typing import Callable, Deque, Dict

REJECTION_LOG_PERIOD_S = 5.0
REJECTION_LOG_BURST = 3


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
