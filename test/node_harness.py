"""Helpers for node tests: start hydranet_node in its own process, talk to it over real DDS.

A test module starts one node process (``NodeProcess``) on a private domain and one
``RosClient`` in the test process on the same domain; the client publishes camera messages,
collects the node's outputs and calls its parameter and lifecycle services.
"""
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

import cv2
import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue, SetParametersResult
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from hydranet_ros.node.conversions import array_to_image
from ros_test_support import REPO_ROOT, ros_env, unique_domain_id

PARAMS_FILE = REPO_ROOT / 'config' / 'hydranet.yaml'
SAMPLES_DIR = REPO_ROOT / 'hydranet_ros' / 'assets' / 'samples'
NODE_MODULE = 'hydranet_ros.node.hydranet_node'
DEMO_SOURCE_MODULE = 'hydranet_ros.node.demo_source'
FRAME_ID = 'camera_optical_frame'
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
SERVICE_TIMEOUT_S = 30.0
RELIABLE = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def sample_rgb(name: str = 'nyud_000464.png', width: int = 160, height: int = 120) -> np.ndarray:
    """Return a shipped sample image as RGB uint8, resized to width x height."""
    bgr = cv2.imread(str(SAMPLES_DIR / name), cv2.IMREAD_COLOR)
    assert bgr is not None, f'sample {name} is missing from {SAMPLES_DIR}'
    return cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)


def stamp_key(header: Header) -> tuple:
    """Return (sec, nanosec) of a header, to match outputs with inputs."""
    return (header.stamp.sec, header.stamp.nanosec)


def make_header(index: int, frame_id: str = FRAME_ID) -> Header:
    """Return a header with a distinct, recognisable stamp."""
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000 + index, 1000 * index + 7
    return header


def camera_info(width: int, height: int, header: Header, hfov_deg: float = 60.0) -> CameraInfo:
    """Return the calibration of an undistorted pinhole camera of the given size."""
    focal = 0.5 * width / np.tan(np.radians(hfov_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    info = CameraInfo(header=header, width=width, height=height, distortion_model='plumb_bob')
    info.d = [0.0] * 5
    info.k = [focal, 0.0, cx, 0.0, focal, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [focal, 0.0, cx, 0.0, 0.0, focal, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


class TestEnvironment:
    """A private domain, log and cache directories, and the transport profile for one module."""

    __test__ = False

    def __init__(self, tmp_dir: Path) -> None:
        self.domain_id = unique_domain_id()
        self.tmp_dir = tmp_dir
        self.env = ros_env(tmp_dir / 'ros_log', self.domain_id,
                           use_profile=(REPO_ROOT / 'config' / 'fastdds_large_data.xml').exists())
        self.env['HYDRANET_CACHE_DIR'] = str(tmp_dir / 'cache')
        self._saved: Dict[str, Optional[str]] = {}

    def enter(self) -> None:
        """Apply the environment to this process too (before its ROS context starts)."""
        for name in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOG_DIR',
                     'ROS_HOME', 'FASTDDS_DEFAULT_PROFILES_FILE',
                     'FASTRTPS_DEFAULT_PROFILES_FILE'):
            self._saved[name] = os.environ.get(name)
            if name in self.env:
                os.environ[name] = self.env[name]
            else:
                os.environ.pop(name, None)

    def exit(self) -> None:
        """Restore this process's environment."""
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class ManagedProcess:
    """A Python module run in its own process; its output goes to a log file."""

    def __init__(self, module: str, args: Sequence[str], env: Dict[str, str],
                 log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.process = subprocess.Popen([sys.executable, '-m', module, *args], env=env,
                                        cwd=REPO_ROOT, stdout=self._log,
                                        stderr=subprocess.STDOUT)

    def output(self) -> str:
        """Return everything the process has printed so far."""
        return self.log_path.read_text(errors='replace')

    def wait_for_output(self, text: str, timeout_s: float = START_TIMEOUT_S,
                        after: int = 0) -> bool:
        """Wait until ``text`` appears in the output after character ``after``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.output()[after:]:
                return True
            if self.process.poll() is not None:
                return text in self.output()[after:]
            time.sleep(0.1)
        return False

    def wait_exit(self, timeout_s: float = START_TIMEOUT_S) -> Optional[int]:
        """Wait for the process to end; return its exit code (None if still running)."""
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> Optional[int]:
        """Interrupt the process (as Ctrl-C does), kill it if it does not end; return its code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        self._log.close()
        return self.process.returncode


def start_node(env: TestEnvironment, name: str, overrides: Dict[str, object],
               remaps: Sequence[str] = ()) -> ManagedProcess:
    """Start hydranet_node with the shipped parameters file and ``-p`` overrides."""
    args = ['--ros-args', '-r', f'__node:={name}', '--params-file', str(PARAMS_FILE)]
    for key, value in overrides.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ['-p', f'{key}:={text}']
    for remap in remaps:
        args += ['-r', remap]
    return ManagedProcess(NODE_MODULE, args, env.env, env.tmp_dir / f'{name}.log')


class MessageLog:
    """Messages received on one topic, with a wait on a condition."""

    def __init__(self) -> None:
        self.messages: List = []
        self._condition = threading.Condition()

    def add(self, msg) -> None:
        """Record one message (subscription callback)."""
        with self._condition:
            self.messages.append(msg)
            self._condition.notify_all()

    def wait_for(self, predicate: Callable, timeout_s: float):
        """Return the first message satisfying ``predicate`` (waiting for it), or None."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:
                for msg in self.messages:
                    if predicate(msg):
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)

    def with_stamp(self, key: tuple):
        """Return the message stamped ``key`` if received."""
        with self._condition:
            for msg in self.messages:
                if stamp_key(msg.header) == key:
                    return msg
        return None

    def clear(self) -> None:
        """Forget what was received."""
        with self._condition:
            self.messages.clear()


def _parameter_value(value: object) -> ParameterValue:
    if isinstance(value, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    if isinstance(value, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    if isinstance(value, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(value))


class RosClient:
    """A node in the test process, spun on a background thread, in a context of its own."""

    def __init__(self, name: str) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._logs: Dict[str, MessageLog] = {}
        self._subscriptions: Dict[str, object] = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # the context shut down while spinning
                if self.context.ok():
                    raise
                return

    def subscribe(self, topic: str, msg_type, qos: QoSProfile = RELIABLE) -> MessageLog:
        """Collect messages of ``topic`` (one log per topic)."""
        if topic not in self._logs:
            log = MessageLog()
            self._logs[topic] = log
            self._subscriptions[topic] = self.node.create_subscription(
                msg_type, topic, log.add, qos)
        return self._logs[topic]

    def unsubscribe(self, topic: str) -> None:
        """Stop collecting ``topic``."""
        subscription = self._subscriptions.pop(topic, None)
        self._logs.pop(topic, None)
        if subscription is not None:
            self.node.destroy_subscription(subscription)

    def publisher(self, topic: str, msg_type, qos: QoSProfile = RELIABLE):
        """Return a publisher."""
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscriber(self, publisher, timeout_s: float = START_TIMEOUT_S) -> bool:
        """Wait until ``publisher`` has matched a subscription."""
        deadline = time.monotonic() + timeout_s
        while publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def wait_for_publishers(self, topic: str, count: int = 1,
                            timeout_s: float = START_TIMEOUT_S) -> bool:
        """Wait until ``topic`` has at least ``count`` publishers (0: until it has none)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.node.count_publishers(topic)
            if (count and found >= count) or (not count and found == 0):
                return True
            time.sleep(0.05)
        return False

    def _call(self, srv_type, service: str, request):
        client = self.node.create_client(srv_type, service)
        try:
            if not client.wait_for_service(timeout_sec=SERVICE_TIMEOUT_S):
                raise TimeoutError(f'service {service} is not available')
            future = client.call_async(request)
            deadline = time.monotonic() + SERVICE_TIMEOUT_S
            while not future.done():
                if time.monotonic() > deadline:
                    raise TimeoutError(f'service {service} did not answer')
                time.sleep(0.02)
            return future.result()
        finally:
            self.node.destroy_client(client)

    def set_parameters(self, node_name: str, values: Dict[str, object]) -> List:
        """Set parameters of another node one by one; return a SetParametersResult each."""
        request = SetParameters.Request(parameters=[
            ParameterMsg(name=name, value=_parameter_value(value))
            for name, value in values.items()])
        response = self._call(SetParameters, f'/{node_name}/set_parameters', request)
        return list(response.results)

    def set_parameter(self, node_name: str, name: str, value: object) -> SetParametersResult:
        """Set one parameter of another node; return its result."""
        return self.set_parameters(node_name, {name: value})[0]

    def change_state(self, node_name: str, transition_id: int) -> bool:
        """Trigger a lifecycle transition of another node; return whether it succeeded."""
        request = ChangeState.Request()
        request.transition = Transition(id=transition_id)
        return bool(self._call(ChangeState, f'/{node_name}/change_state', request).success)

    def get_state(self, node_name: str) -> str:
        """Return the lifecycle state label of another node."""
        return self._call(GetState, f'/{node_name}/get_state',
                          GetState.Request()).current_state.label

    def close(self) -> None:
        """Shut the context down and stop spinning."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(5.0)


class CameraPublisher:
    """Publishes images (and camera_info) as a camera driver would."""

    def __init__(self, client: RosClient, image_topic: str = 'image',
                 info_topic: Optional[str] = 'camera_info', qos: QoSProfile = RELIABLE,
                 msg_type=Image) -> None:
        self.client = client
        self.images = client.publisher(image_topic, msg_type, qos)
        self.infos = client.publisher(info_topic, CameraInfo, qos) if info_topic else None
        self.counter = 0

    def next_header(self) -> Header:
        """Return a header with a stamp never used before."""
        self.counter += 1
        return make_header(self.counter)

    def publish(self, msg, info: Optional[CameraInfo] = None) -> tuple:
        """Publish camera_info (if given, stamped as the image), then the image; return its key."""
        if info is not None and self.infos is not None:
            info.header = msg.header
            self.infos.publish(info)
        self.images.publish(msg)
        return stamp_key(msg.header)

    def publish_array(self, pixels: np.ndarray, encoding: str,
                      info: Optional[CameraInfo] = None) -> tuple:
        """Publish an array as an image with a fresh stamp; return its key."""
        return self.publish(array_to_image(pixels, encoding, self.next_header()), info)


def request_outputs(camera: CameraPublisher, make_msg: Callable[[Header], object],
                    logs: Dict[str, MessageLog], info: Optional[CameraInfo] = None,
                    timeout_s: float = 30.0, retry_s: float = 2.0) -> Dict[str, object]:
    """Publish a frame until every log holds an output stamped like one of the frames sent.

    Retrying covers a frame lost on the best-effort input or dropped for a newer one.
    Returns {topic: message} for the first stamp that reached all logs; {} on timeout.
    """
    deadline = time.monotonic() + timeout_s
    sent: List[tuple] = []
    while time.monotonic() < deadline:
        sent.append(camera.publish(make_msg(camera.next_header()), info))
        retry_deadline = min(deadline, time.monotonic() + retry_s)
        while time.monotonic() < retry_deadline:
            for key in sent:
                found = {topic: log.with_stamp(key) for topic, log in logs.items()}
                if all(msg is not None for msg in found.values()):
                    return found
            time.sleep(0.02)
    return {}


def diagnostic_values(status) -> Dict[str, str]:
    """Return a DiagnosticStatus's key/value pairs as a dict."""
    return {item.key: item.value for item in status.values}
