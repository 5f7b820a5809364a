"""How every command-line tool reports a problem: one line, an exit code, no traceback.

Every tool's ``main`` is wrapped by :func:`tool_main`. A problem is reported as one line on
stderr, ``<tool>: error: <file>: <what is wrong>; <what to do>``, and the exit code says what
kind of problem it was:

- 0: done;
- 1: a failure while running (some inputs of a folder or a bag failed and were listed, or an
  unexpected error);
- 2: bad usage or bad input, found before any work (an option, a missing or unusable file).

A traceback is printed only with ``--debug``. Text that comes from a library is cut to its
first line and cleared of advice this project never gives (to load a checkpoint with
``weights_only`` turned off, which would run whatever code the file carries).
"""
import argparse
import functools
import sys
import traceback
from typing import Callable, List, Optional, Sequence, Tuple, TypeVar

import cv2

from ..model import CheckpointError
from ..model.checkpoint_file import without_unsafe_advice
from ..signals import stops_quietly

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEBUG_FLAG = '--debug'
MAX_REASON_CHARS = 300

Main = TypeVar('Main', bound=Callable[..., int])


class ToolError(RuntimeError):
    """Bad usage or a bad input the user can fix (an option, a missing or unusable file): 2."""


class ToolFailure(RuntimeError):
    """A failure while running, after the work started: exit code 1."""


def file_problem(path: str, problem: str, fix: str = '') -> str:
    """Return the one-line form ``<path>: <what is wrong>; <what to do>``."""
    return f'{path}: {problem}' + (f'; {fix}' if fix else '')


def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """Return library text as one safe line: unsafe advice removed, whitespace collapsed."""
    cleaned = ' '.join(without_unsafe_advice(str(text)).split())
    return cleaned if len(cleaned) <= limit else cleaned[:limit - 3].rstrip() + '...'


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--debug``: print the traceback of an error as well."""
    parser.add_argument(DEBUG_FLAG, action='store_true',
                        help='on an error, print the Python traceback as well')


def classify(error: BaseException) -> Tuple[int, str]:
    """Return the exit code and the one-line text for an error that ended a tool."""
    if isinstance(error, ToolError):
        return EXIT_USAGE, one_line(str(error), 10 * MAX_REASON_CHARS)
    if isinstance(error, CheckpointError):
        return EXIT_USAGE, one_line(str(error), 10 * MAX_REASON_CHARS)
    if isinstance(error, ToolFailure):
        return EXIT_FAILED, one_line(str(error), 10 * MAX_REASON_CHARS)
    if isinstance(error, MemoryError) or type(error).__name__ == 'OutOfMemoryError':
        return EXIT_FAILED, ('ran out of memory; lower --max-input-pixels or --input-size, or '
                             'free memory and try again')
    if isinstance(error, (FileNotFoundError, IsADirectoryError, NotADirectoryError,
                          PermissionError)):
        if getattr(error, 'filename', None) and error.strerror:
            return EXIT_USAGE, file_problem(str(error.filename), error.strerror.lower(),
                                            'check the path')
        return EXIT_USAGE, one_line(str(error))
    if isinstance(error, OSError):
        where = f'{error.filename}: ' if getattr(error, 'filename', None) else ''
        return EXIT_FAILED, f'{where}{one_line(error.strerror or str(error))}'
    return EXIT_FAILED, (f'unexpected {type(error).__name__}: {one_line(str(error))}; rerun with '
                         f'{DEBUG_FLAG} for the traceback')


def report(prog: str, error: BaseException, debug: bool = False) -> int:
    """Print the error line (and the traceback with ``debug``); return the exit code."""
    code, text = classify(error)
    if debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    print(f'{prog}: error: {text}', file=sys.stderr)
    return code


def quiet_opencv() -> None:
    """Stop OpenCV's own log lines (``[ WARN:0] ... PNG input buffer is incomplete``).

    The tools say in their own line what is wrong with a file OpenCV cannot decode.
    """
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def tool_main(prog: str) -> Callable[[Main], Main]:
    """Wrap a tool's ``main(argv)``: errors become one line and an exit code; signals end it.

    SIGINT and SIGTERM end the tool quietly (``hydranet_ros.signals.stops_quietly``).
    """
    def wrap(main: Main) -> Main:
        @functools.wraps(main)
        def run(argv: Optional[Sequence[str]] = None) -> int:
            given: List[str] = list(sys.argv[1:] if argv is None else argv)
            quiet_opencv()
            try:
                return main(argv)
            except KeyboardInterrupt:
                raise
            except Exception as error:  # noqa: B902 - every error ends as one line and a code
                return report(prog, error, DEBUG_FLAG in given)
        return stops_quietly(run)  # type: ignore[return-value]
    return wrap
