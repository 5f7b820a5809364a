"""A one-frame mailbox: the newest frame replaces an unprocessed older one, which is counted."""
import threading
from typing import Generic, Optional, TypeVar

Item = TypeVar('Item')


class LatestFrameSlot(Generic[Item]):
    """Hold at most one item; ``put`` never blocks and ``take`` returns the newest item."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Optional[Item] = None
        self._closed = False
        self.dropped = 0

    def put(self, item: Item) -> bool:
        """Store ``item``; return True when it replaced (dropped) an unprocessed one."""
        with self._condition:
            replaced = self._item is not None
            if replaced:
                self.dropped += 1
            self._item = item
            self._condition.notify()
        return replaced

    def take(self, timeout_s: Optional[float] = None) -> Optional[Item]:
        """Wait for an item and remove it; return None on timeout or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout_s)
            if self._closed:
                return None
            item, self._item = self._item, None
            return item

    def clear(self) -> bool:
        """Forget a waiting item without counting it here; return whether there was one."""
        with self._condition:
            had_item = self._item is not None
            self._item = None
        return had_item

    def close(self) -> None:
        """Wake every waiter; later ``take`` calls return None until ``reopen``."""
        with self._condition:
            self._closed = True
            self._item = None
            self._condition.notify_all()

    def reopen(self) -> None:
        """Accept items again after ``close``."""
        with self._condition:
            self._closed = False
