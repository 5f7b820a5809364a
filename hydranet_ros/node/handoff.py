"""A one-item handoff between two threads: the giver waits while an item is still pending."""
import threading
from typing import Generic, Optional, TypeVar

Item = TypeVar('Item')


class Handoff(Generic[Item]):
    """Pass items one at a time; unlike a frame slot, nothing is ever replaced."""

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

    def close(self) -> bool:
        """Wake both sides; later calls fail until ``reopen``. Return whether an item was lost."""
        with self._condition:
            self._closed = True
            lost, self._item = self._item is not None, None
            self._condition.notify_all()
        return lost

    def reopen(self) -> None:
        """Accept items again after ``close``."""
        with self._condition:
            self._closed = False
