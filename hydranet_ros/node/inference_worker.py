"""The thread that takes the newest frame from its source and processes it, one at a time."""
import threading
from typing import Callable, Generic, Optional, TypeVar

Item = TypeVar('Item')

POLL_PERIOD_S = 0.5
STOP_TIMEOUT_S = 30.0


class InferenceWorker(Generic[Item]):
    """Run ``process(item)`` on a background thread for each item ``next_item`` returns.

    ``next_item(timeout_s)`` waits up to ``timeout_s`` for the newest frame (None if there is
    none), so the worker never falls behind the camera; ``wake()`` must make a waiting
    ``next_item`` return early. ``on_error`` receives unexpected exceptions; the thread keeps
    running.
    """

    def __init__(self, next_item: Callable[[float], Optional[Item]],
                 process: Callable[[Item], None], on_error: Callable[[BaseException], None],
                 wake: Callable[[], None], name: str = 'inference') -> None:
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
        """Stop after the frame in progress; return False if the thread did not end in time."""
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
