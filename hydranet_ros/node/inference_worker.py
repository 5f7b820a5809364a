"""The thread that takes the newest frame from a slot and processes it, one at a time."""
import threading
from typing import Callable, Generic, Optional

from .frame_slot import Item, LatestFrameSlot

POLL_PERIOD_S = 0.5
STOP_TIMEOUT_S = 30.0


class InferenceWorker(Generic[Item]):
    """Run ``process(item)`` on a background thread for each item taken from ``slot``.

    Frames that arrive while one is processed wait in the slot; only the newest survives, so
    the worker never falls behind the camera. ``on_error`` receives unexpected exceptions;
    the thread keeps running.
    """

    def __init__(self, slot: LatestFrameSlot[Item], process: Callable[[Item], None],
                 on_error: Callable[[BaseException], None], name: str = 'inference') -> None:
        self._slot = slot
        self._process = process
        self._on_error = on_error
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
        self._slot.reopen()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop after the frame in progress; return False if the thread did not end in time."""
        self._stop.set()
        self._slot.close()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        stopped = not self._thread.is_alive()
        if stopped:
            self._thread = None
        return stopped

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._slot.take(POLL_PERIOD_S)
            if item is None:
                continue
            try:
                self._process(item)
            except Exception as error:  # the thread must survive any frame
                self._on_error(error)
