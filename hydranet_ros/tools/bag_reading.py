"""Reading a recorded rosbag2 that may be truncated or damaged, without a traceback.

A bag that cannot be opened is refused with one line saying what is wrong and what to do; one
that turns out damaged part-way through ends the reading there (``BagDamaged``, with how far it
got), so that what came before is kept; a single message that cannot be deserialised is
skipped and counted (``CorruptMessage``). The bag libraries raise many kinds of exceptions on
damaged files (their own, sqlite3's, struct's, decoding and overflow errors), hence the broad
catches here, each of which ends as one of these three.
"""
import os
from typing import Any, Iterator, Optional, Sequence, Tuple

from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader
from rosbags.typesys.store import Typestore

from ..model.checkpoint_file import library_reason
from .errors import file_problem, ToolError

MCAP_RECOVER_HINT = 'for an MCAP file cut off while recording, `mcap recover` rebuilds its end'
SQLITE_HINT = 'copy it again, or recover the database with `sqlite3 <file>.db3 .recover`'

Message = Tuple[Connection, int, bytes]


class BagDamaged(RuntimeError):
    """A bag became unreadable part-way through; ``messages_read`` came before the damage."""

    def __init__(self, message: str, messages_read: int, last_time_ns: Optional[int]) -> None:
        super().__init__(message)
        self.messages_read = messages_read
        self.last_time_ns = last_time_ns


class CorruptMessage(ValueError):
    """One recorded message whose bytes cannot be deserialised as its type."""


def _storage_hint(path: str) -> str:
    names = os.listdir(path) if os.path.isdir(path) else [path]
    if any(name.endswith('.mcap') for name in names):
        return MCAP_RECOVER_HINT
    return SQLITE_HINT


def open_bag(path: str) -> Reader:
    """Open a rosbag2 for reading or raise ``ToolError`` saying why it cannot be."""
    if not os.path.exists(path):
        raise ToolError(file_problem(path, 'does not exist (expected a bag folder, or its .db3 '
                                     'or .mcap file)', 'check the path'))
    if path.endswith('.bag'):
        raise ToolError(file_problem(path, 'is a ROS 1 bag', f'convert it first (rosbags-convert '
                                     f'--src {path} --dst <folder>)'))
    if os.path.isdir(path) and not os.listdir(path):
        raise ToolError(file_problem(path, 'is an empty folder, not a rosbag2',
                                     'pass the folder ros2 bag record wrote'))
    reader = Reader(path)
    try:
        reader.open()
    except Exception as error:  # noqa: B902 - see the module docstring
        reason = library_reason(error)
        if isinstance(error, FileNotFoundError) or 'metadata' in reason.lower():
            fix = ('pass the folder ros2 bag record wrote; a folder whose metadata.yaml is '
                   'missing or broken can be repaired with `ros2 bag reindex`')
        else:
            fix = f'it may be truncated or damaged: {_storage_hint(path)}'
        raise ToolError(file_problem(path, f'not a readable rosbag2 ({reason})', fix)) \
            from None
    return reader


def messages(reader: Reader, path: str, connections: Sequence[Connection] = (),
             start: Optional[int] = None, stop: Optional[int] = None) -> Iterator[Message]:
    """Yield (connection, record time, raw bytes) until the end or the first damage.

    ``connections`` empty means every topic. Raise ``BagDamaged`` where reading fails.
    """
    count = 0
    last_time: Optional[int] = None
    kwargs: dict = {'start': start, 'stop': stop}
    if connections:
        kwargs['connections'] = list(connections)
    try:
        stream = reader.messages(**kwargs)
        for connection, timestamp, raw in stream:
            yield connection, timestamp, raw
            count += 1
            last_time = timestamp
    except GeneratorExit:
        raise
    except Exception as error:  # noqa: B902 - see the module docstring
        where = (f'after {count} message(s)' if count else 'before its first message')
        raise BagDamaged(file_problem(
            path, f'the bag is damaged {where} ({library_reason(error)})',
            _storage_hint(path)), count, last_time) from None


def deserialize(store: Typestore, raw: Any, msgtype: str) -> Any:
    """Return the message in ``raw``; raise ``CorruptMessage`` when its bytes do not fit."""
    try:
        return store.deserialize_cdr(raw, msgtype)
    except Exception as error:  # noqa: B902 - see the module docstring
        raise CorruptMessage(f'{msgtype} message of {len(raw)} bytes cannot be deserialised '
                             f'({library_reason(error)}): the recording is damaged here') \
            from None
