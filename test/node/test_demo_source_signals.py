"""hydranet_demo_source ends with exit code 0 and no traceback on SIGINT and SIGTERM.

It is started as `ros2 run` and launch start it (the hydranet_demo_source entry point), in a
process of its own on a private domain. A terminal's Ctrl-C reaches it twice under launch: once
from the terminal, once passed on by launch, the second while the first is being handled.
"""
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

from ros_test_support import REPO_ROOT, ros_env, unique_domain_id

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
ENTRY_POINT = ('import sys\nfrom hydranet_ros.node.launcher import demo_source\n'
               'sys.exit(demo_source())\n')


def start_demo_source(tmp_path: Path) -> tuple:
    """Start the demo camera at 30 Hz; return the process and the file its output goes to."""
    log_path = tmp_path / 'demo_source.log'
    with open(log_path, 'w') as log:
        process = subprocess.Popen(
            [sys.executable, '-c', ENTRY_POINT, '--ros-args', '-p', 'rate_hz:=30.0'],
            env=ros_env(tmp_path, unique_domain_id()), cwd=REPO_ROOT, stdout=log,
            stderr=subprocess.STDOUT, text=True)
    return process, log_path


def wait_until_publishing(process: subprocess.Popen, log_path: Path) -> None:
    """Wait for the start-up line that says it publishes."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while 'publishing' not in log_path.read_text():
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)


@pytest.mark.parametrize('first, second, gap_s', [
    (signal.SIGINT, None, 0.0),
    (signal.SIGTERM, None, 0.0),
    (signal.SIGINT, signal.SIGINT, 0.0),
    (signal.SIGINT, signal.SIGINT, 0.02),
    (signal.SIGTERM, signal.SIGTERM, 0.02),
    (signal.SIGINT, signal.SIGTERM, 0.02),
])
def test_stop_signals_exit_0_without_traceback(tmp_path, first, second, gap_s):
    """Exit 0 on the first signal, also when a second one arrives during the shutdown."""
    process, log_path = start_demo_source(tmp_path)
    try:
        wait_until_publishing(process, log_path)
        process.send_signal(first)
        if second is not None:
            time.sleep(gap_s)
            process.send_signal(second)
        code = process.wait(timeout=STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output[-3000:]
