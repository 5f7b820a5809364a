"""How the package's programs end on SIGINT and SIGTERM: exit status 0 and no traceback.

A program is stopped by SIGINT (Ctrl-C: the terminal sends it to the whole process group, and
``ros2 launch`` forwards it to each process once more) or by SIGTERM (``kill``, systemd, a
container stop, or the end of the launch that started it). The first signal ends the program
its usual way; any later one, which arrives while the program cleans up, is ignored, so that it
can neither raise a KeyboardInterrupt inside the clean-up nor kill the process by the default
action. Nothing here imports ROS: the ROS executables and the console tools share it.

- ``exit_at_once_on_stop()``: while a program's libraries load (rclpy, PyTorch and OpenCV take a
  second or two) there is nothing to clean up; a stop signal ends the process at once with 0.
- ``record_stop_signals()``: for rclpy programs, called before ``rclpy.init()``. rclpy's own
  handlers shut the context down (spinning then ends with ExternalShutdownException) and then
  call the Python handler found before them: these only record the signal.
- ``stops_quietly``: for console tools without rclpy. The first signal raises ``Stopped`` (a
  KeyboardInterrupt) in the main thread, later ones are ignored; the tool's main then returns 0.

The interpreter puts the default action (ending the process by the signal) back for every
signal that has a Python handler when it exits, which takes a moment after a ROS node (DDS is
torn down then): both keep the signals ignored from then on instead.
"""
import atexit
import contextlib
import functools
import os
import signal
import threading
from types import FrameType
from typing import Callable, Dict, Iterator, Optional, TypeVar

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOPPED_EXIT_STATUS = 0

Main = TypeVar('Main', bound=Callable[..., Optional[int]])


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT or SIGTERM of a ``stops_quietly`` tool.

    A KeyboardInterrupt, so that code which saves partial results on Ctrl-C does the same on
    SIGTERM.
    """


def _install(handler) -> Dict[int, object]:
    """Install handler for every stop signal; return the handlers it replaced."""
    return {number: signal.signal(number, handler) for number in STOP_SIGNALS}


def _restore(previous: Dict[int, object]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)


def _exit_now(number: int, frame: Optional[FrameType]) -> None:
    os._exit(STOPPED_EXIT_STATUS)


def _ignore_from_now_on() -> None:
    """Ignore the stop signals (SIG_IGN, which the interpreter's exit leaves in place)."""
    _install(signal.SIG_IGN)


@contextlib.contextmanager
def exit_at_once_on_stop() -> Iterator[None]:
    """End the process at once with status 0 when SIGINT or SIGTERM arrives inside the block.

    For the imports of a program, before it has anything to clean up or to flush. The handlers
    that were installed before come back when the block ends.
    """
    previous = _install(_exit_now)
    try:
        yield
    finally:
        _restore(previous)


def record_stop_signals() -> threading.Event:
    """Make SIGINT and SIGTERM only set the returned event, however often they arrive.

    Call it before ``rclpy.init()``: rclpy then shuts the context down on each signal and calls
    the handler installed here, which neither raises nor exits, also after ``rclpy.shutdown()``
    has put these handlers back, and they are ignored while the interpreter exits. A signal
    that arrives before ``rclpy.init()`` has installed rclpy's handlers leaves the context
    running: check the event once init has returned.
    """
    stopped = threading.Event()

    def record(number: int, frame: Optional[FrameType]) -> None:
        stopped.set()

    _install(record)
    atexit.register(_ignore_from_now_on)
    return stopped


def stops_quietly(main: Main) -> Main:
    """Decorate a console tool's main so that SIGINT or SIGTERM ends it with status 0.

    The first signal raises ``Stopped`` in the main thread; the signals after it are ignored, so
    the clean-up that follows (``finally`` blocks, an ``except KeyboardInterrupt`` that writes
    what was done so far) runs to its end, and ignoring goes on while the interpreter exits.
    main then returns 0 instead of the exception reaching the top with a traceback. When main
    ends without a signal, the previous handlers come back (a test may call main in-process).
    """
    @functools.wraps(main)
    def run(*args, **kwargs) -> Optional[int]:
        state = {'stopped': False}

        def stop(number: int, frame: Optional[FrameType]) -> None:
            if state['stopped']:
                return
            state['stopped'] = True
            raise Stopped(signal.Signals(number).name)

        previous = _install(stop)
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt:
            state['stopped'] = True
            return STOPPED_EXIT_STATUS
        finally:
            if state['stopped']:
                _ignore_from_now_on()
            else:
                _restore(previous)

    return run  # type: ignore[return-value]
