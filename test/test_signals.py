"""hydranet_ros.signals and hydranet_ros.stop_with_launch, in processes of their own.

Each program gets real signals: the first ends it its usual way, a second one during its clean-up
changes nothing, the exit status is 0 and nothing prints a traceback.
"""
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

from hydranet_ros import signals
from ros_test_support import REPO_ROOT

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0

TOOL = """
import sys, time
from hydranet_ros.signals import stops_quietly

@stops_quietly
def main() -> int:
    try:
        print('ready', flush=True)
        time.sleep(60)
        return 3
    except KeyboardInterrupt as stop:
        print(f'cleaning up after {stop}', flush=True)
        time.sleep(1.0)  # the second signal arrives here
        print('cleaned up', flush=True)
        raise

sys.exit(main())
"""

RECORDER = """
import os, signal, sys, time
from hydranet_ros.signals import record_stop_signals
stopped = record_stop_signals()
for number in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
    os.kill(os.getpid(), number)
    time.sleep(0.05)
print('recorded' if stopped.is_set() else 'missed', flush=True)
"""

IMPORTER = """
import time
from hydranet_ros.signals import exit_at_once_on_stop
with exit_at_once_on_stop():
    print('loading', flush=True)
    time.sleep(60)
print('not reached', flush=True)
"""

# The launch's stand-in: starts CHILD through stop_with_launch, prints its pid, then waits.
LAUNCHER = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, '-m', 'hydranet_ros.stop_with_launch', str(os.getpid()),
                          sys.executable, '-c', sys.argv[1], sys.argv[2]])
print(child.pid, flush=True)
time.sleep(60)
"""

CHILD = """
import os, pathlib, signal, sys, time
marker = pathlib.Path(sys.argv[1])

def stop(number, frame):
    marker.write_text(signal.Signals(number).name)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
pathlib.Path(f'{marker}.pid').write_text(str(os.getpid()))
time.sleep(60)
"""


def start(code: str, *args: str) -> subprocess.Popen:
    """Start python -c code from the repository root, output captured."""
    return subprocess.Popen([sys.executable, '-c', code, *args], cwd=REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_file(path: Path, timeout_s: float) -> str:
    """Return the text of path once it exists, or fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f'{path} did not appear'
        time.sleep(0.05)
    return path.read_text()


@pytest.mark.parametrize('first, second', [(signal.SIGTERM, signal.SIGINT),
                                           (signal.SIGINT, signal.SIGINT),
                                           (signal.SIGTERM, signal.SIGTERM)])
def test_tool_cleans_up_and_exits_0(first, second):
    """Run a tool's clean-up to its end despite a second signal, then exit 0 quietly."""
    tool = start(TOOL)
    assert tool.stdout.readline().strip() == 'ready'
    tool.send_signal(first)
    assert tool.stdout.readline().startswith(f'cleaning up after {first.name}')
    tool.send_signal(second)
    output, errors = tool.communicate(timeout=STOP_TIMEOUT_S)
    assert tool.returncode == 0, errors
    assert output.strip() == 'cleaned up'
    assert 'Traceback' not in errors, errors


def test_tool_returns_its_status_and_handlers_come_back():
    """Return main's own status when no signal came, with the previous handlers reinstalled."""
    before = {number: signal.getsignal(number) for number in signals.STOP_SIGNALS}

    @signals.stops_quietly
    def main(status: int) -> int:
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        return status

    assert main(5) == 5
    assert {number: signal.getsignal(number) for number in signals.STOP_SIGNALS} == before


def test_recorded_signals_neither_raise_nor_exit():
    """Only record SIGINT and SIGTERM, however often they come."""
    recorder = start(RECORDER)
    output, errors = recorder.communicate(timeout=STOP_TIMEOUT_S)
    assert (recorder.returncode, output.strip()) == (0, 'recorded'), errors


@pytest.mark.parametrize('number', [signal.SIGINT, signal.SIGTERM])
def test_signal_while_loading_exits_0_at_once(number):
    """End the process at once with 0 inside exit_at_once_on_stop."""
    importer = start(IMPORTER)
    assert importer.stdout.readline().strip() == 'loading'
    importer.send_signal(number)
    output, errors = importer.communicate(timeout=STOP_TIMEOUT_S)
    assert importer.returncode == 0, errors
    assert not output and not errors


def test_exit_at_once_puts_the_handlers_back():
    """Reinstall the previous handlers when the block ends."""
    before = {number: signal.getsignal(number) for number in signals.STOP_SIGNALS}
    with signals.exit_at_once_on_stop():
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
    assert {number: signal.getsignal(number) for number in signals.STOP_SIGNALS} == before


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG is Linux')
def test_command_gets_sigterm_when_the_launch_is_killed(tmp_path):
    """Send SIGTERM to the command, which kept the prefix's pid, when its launch is killed."""
    marker = tmp_path / 'stopped'
    launcher = start(LAUNCHER, CHILD, str(marker))
    try:
        child_pid = int(launcher.stdout.readline())
        assert int(wait_for_file(Path(f'{marker}.pid'), START_TIMEOUT_S)) == child_pid
        launcher.kill()  # SIGKILL: the launch gets no chance to stop anything itself
        launcher.wait(timeout=STOP_TIMEOUT_S)
        assert wait_for_file(marker, STOP_TIMEOUT_S) == 'SIGTERM'
    finally:
        if launcher.poll() is None:
            launcher.kill()
        launcher.communicate()


def test_command_does_not_start_for_a_launch_that_ended():
    """Start nothing when the parent is not the launch named (it ended before the request)."""
    result = subprocess.run([sys.executable, '-m', 'hydranet_ros.stop_with_launch', '1', 'echo',
                             'started'], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=START_TIMEOUT_S)
    expected = '' if sys.platform.startswith('linux') else 'started'
    assert (result.returncode, result.stdout.strip()) == (0, expected), result.stderr


def test_stop_with_launch_names_its_usage_and_a_missing_command():
    """Exit 2 with the usage for bad arguments and 127 naming a command that does not exist."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, '-m', 'hydranet_ros.stop_with_launch', *args],
                              cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=START_TIMEOUT_S)

    usage = run('not-a-pid', 'echo')
    assert usage.returncode == 2 and 'usage' in usage.stderr
    missing = run(str(os.getpid()), 'no-such-program-here')
    assert missing.returncode == 127 and 'no-such-program-here' in missing.stderr
