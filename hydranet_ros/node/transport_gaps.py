"""Frames that never reached the node: gaps in each publisher's sequence numbers.

DDS numbers every sample a writer sends. A best-effort input (or a reader whose keep-last
queue overflowed) loses samples without telling the node; the gaps between the sequence
numbers it does receive from one publisher count them.
"""
import collections
from typing import Hashable, Optional

MAX_PUBLISHERS = 32


class SequenceGaps:
    """Count the sequence numbers skipped by each publisher since its previous message."""

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
