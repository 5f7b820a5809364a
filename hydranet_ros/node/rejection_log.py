"""Warnings about rejected input, at most one per kind and period, with the count left unsaid.

A camera that sends only malformed frames must not flood the log: the first rejection of a
kind is logged at once, later ones of that kind at most every ``period_s``, each line saying
how many of the kind went unlogged since the previous line.
"""
import threading
import time
from typing import Callable, Dict

REJECTION_LOG_PERIOD_S = 5.0


class RejectionLog:
    """Throttled, per-kind warnings; safe to call from several threads."""

    def __init__(self, warn: Callable[[str], None], period_s: float = REJECTION_LOG_PERIOD_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._warn = warn
        self._period_s = period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_logged_s: Dict[str, float] = {}
        self._unlogged: Dict[str, int] = {}

    def record(self, kind: str, message: str) -> bool:
        """Log ``message`` unless ``kind`` was logged within the period; return whether logged."""
        now_s = self._clock()
        with self._lock:
            last_s = self._last_logged_s.get(kind)
            if last_s is not None and now_s - last_s < self._period_s:
                self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
                return False
            unlogged = self._unlogged.pop(kind, 0)
            self._last_logged_s[kind] = now_s
        if unlogged:
            message += (f' [{unlogged} more rejection(s) of kind {kind} since the previous '
                        f'message of this kind]')
        self._warn(message)
        return True
