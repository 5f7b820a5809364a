"""Run a command that gets SIGTERM when the launch that started it ends, however it ends.

    python3 -m hydranet_ros.stop_with_launch LAUNCH_PID COMMAND [ARGUMENT ...]

``ros2 launch`` passes Ctrl-C (SIGINT) on to the processes it started and waits for them, but
SIGTERM (``kill``, systemd, a container stop) or SIGKILL ends the launch process at once and
leaves its nodes running with no parent. perception.launch.py starts every node through this
prefix: it asks Linux to send SIGTERM to the process when its parent, the launch, ends
(PR_SET_PDEATHSIG, kept across exec) and then becomes COMMAND (same process id, so the launch
sees its output, signals and exit status as before). A launch that already ended before the
request was made leaves COMMAND unstarted. Elsewhere than on Linux COMMAND just runs.
"""
import ctypes
import ctypes.util
import os
import signal
import sys
from typing import List, Optional

from .signals import exit_at_once_on_stop

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
EXIT_USAGE = 2
EXIT_NOT_FOUND = 127  # what a shell returns for a command it cannot run
PROG = 'stop_with_launch'


def request_parent_death_signal(number: int = signal.SIGTERM) -> bool:
    """Ask Linux to send this process signal number when its parent ends; False elsewhere."""
    if not sys.platform.startswith('linux'):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(number), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f'prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}')
    return True


def main(argv: Optional[List[str]] = None) -> int:
    """Request SIGTERM at the launch's end, then replace this process by the command."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or not args[0].isdigit():
        print(f'usage: python3 -m hydranet_ros.{PROG} LAUNCH_PID COMMAND [ARGUMENT ...]',
              file=sys.stderr)
        return EXIT_USAGE
    launch_pid, command = int(args[0]), args[1:]
    with exit_at_once_on_stop():  # stopped before COMMAND started: nothing to clean up
        if request_parent_death_signal() and os.getppid() != launch_pid:
            return 0  # the launch ended before the request: nothing to start for it
        try:
            os.execvp(command[0], command)  # the handlers above end with the exec
        except OSError as error:
            print(f'{PROG}: cannot run {command[0]!r}: {error.strerror}', file=sys.stderr)
            return EXIT_NOT_FOUND
    return 0  # not reached: exec replaced this process


if __name__ == '__main__':
    sys.exit(main())
