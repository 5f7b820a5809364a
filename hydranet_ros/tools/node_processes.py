"""Running hydranet_node and the demo camera as processes on a private ROS domain, for tools.

``ros_environment`` gives child processes (and this one) a domain of their own, logs in a
chosen folder and the shipped Fast DDS profile (both shipped files come from the package's
share directory, so this works from any folder); ``start``/``stop`` run a module as a process
with its output in a log file; ``Listener`` is a node in this process, spun in the background,
that calls back for each message of the topics it is given.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..launch_support import PROFILE_VARIABLES, profile_environment, profile_variables
from ..share import share_path, ShareFileError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
IMPORT_ROOT = PACKAGE_DIR.parent
"""The folder ``hydranet_ros`` imports from (a checkout or site-packages): children start there."""
PARAMS_FILE = ('config', 'hydranet.yaml')
FASTDDS_PROFILE = ('config', 'fastdds_large_data.xml')
NODE_MODULE = 'hydranet_ros.node.hydranet_node'
DEMO_SOURCE_MODULE = 'hydranet_ros.node.demo_source'
MAX_DOMAIN_ID = 101
STOP_TIMEOUT_S = 15.0
SPIN_PERIOD_S = 0.05
POLL_PERIOD_S = 0.1


def ros_environment(log_dir: str, cache_dir: Optional[str] = None) -> Dict[str, str]:
    """Return an environment with a random private domain, logs in log_dir and the profile.

    The variables that matter to this process's own ROS context are applied here too.
    """
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, MAX_DOMAIN_ID))
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_LOG_DIR'] = env['ROS_HOME'] = log_dir
    env['PYTHONUNBUFFERED'] = '1'
    if cache_dir:
        env['HYDRANET_CACHE_DIR'] = cache_dir
    try:
        profile = share_path(*FASTDDS_PROFILE)
    except ShareFileError:
        profile = None  # middleware defaults: large best-effort images may be lost
    if profile is not None:
        prefixes = [sys.prefix] + env.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
        env.update(profile_environment(env, str(profile),
                                       profile_variables(p for p in prefixes if p)))
    for name in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOG_DIR', 'ROS_HOME',
                 'HYDRANET_CACHE_DIR', *PROFILE_VARIABLES):
        if name in env:
            os.environ[name] = env[name]
    return env


def node_arguments(name: str, parameters: Dict[str, object]) -> List[str]:
    """Return ``--ros-args`` for hydranet_node: the shipped parameters file plus overrides."""
    args = ['--ros-args', '-r', f'__node:={name}', '--params-file',
            str(share_path(*PARAMS_FILE))]
    for key, value in parameters.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ['-p', f'{key}:={text}']
    return args


def start(module: str, args: List[str], env: Dict[str, str], log_path: str) -> subprocess.Popen:
    """Start ``python -m module args``; stdout and stderr go to log_path."""
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    with open(log_path, 'w') as log:
        return subprocess.Popen([sys.executable, '-m', module, *args], env=env, cwd=IMPORT_ROOT,
                                stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> Optional[int]:
    """Interrupt a process as Ctrl-C does, kill it if it does not end; return its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
    return process.returncode


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str,
             processes: List[subprocess.Popen]) -> None:
    """Wait for ``condition()``; raise TimeoutError, or RuntimeError if a process ended."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout_s:.0f} s waiting for {what}')
        if any(p.poll() is not None for p in processes):
            raise RuntimeError(f'a process ended while waiting for {what}')
        time.sleep(POLL_PERIOD_S)


class Listener:
    """A node in this process, in a context of its own, spun on a background thread."""

    def __init__(self, name: str) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=SPIN_PERIOD_S)
            except Exception:  # the context was shut down while spinning
                return

    def listen(self, msg_type, topic: str, callback: Callable, qos, raw: bool = False) -> None:
        """Call ``callback(msg)`` (holding ``lock``) for each message of ``topic``.

        With ``raw`` the callback receives the serialised message (bytes), undecoded.
        """
        def locked(msg) -> None:
            with self.lock:
                callback(msg)
        self.node.create_subscription(msg_type, topic, locked, qos, raw=raw)

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        import rclpy
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(STOP_TIMEOUT_S)
