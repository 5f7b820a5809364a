"""The node on one host, the camera and its consumer on another, in both discovery modes.

Two simulated hosts (network and mount namespaces made by the test, joined by a veth pair;
see ``simulated_hosts``) stand for a base station (host a) and a robot (host b). The camera
(640x480 rgb8, 30 Hz, sensor-data QoS) and the consumer (reliable, as RViz) run on host a.
Two hydranet_nodes take the camera's frames at the same time: ``near`` on host a (one host,
the reference) and ``far`` on host b (two hosts), so that the shared machine's load, which
drifts by tens of percent within seconds, slows both alike. Each host gets its own CPUs where
there are two or more (the nodes share the last one, everything else runs on the others), as
two computers would. Every process loads the shipped transport profile. Discovery modes:

- ``multicast``: the ROS default (simple discovery over multicast on the veth pair);
- ``discovery_server``: a Fast DDS discovery server on host a (``fast-discovery-server`` from
  the Fast DDS wheel, as ``fastdds discovery`` starts it), every process a client of it through
  ``ROS_DISCOVERY_SERVER``; a listener on the discovery multicast group of the domain on host b
  must receive nothing (in multicast mode it must, which shows that it listens).

Across hosts the far node must receive >= 90% of the camera's frames, the consumer >= 95% of
its outputs, at >= 0.8x the near node's output rate. The figures (frames, rates, bytes per
second on the wire and per topic) are printed as one JSON line. Skipped where namespaces cannot
be created.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Sequence

import pytest

from ros_test_support import REPO_ROOT, ros_env, unique_domain_id
from simulated_hosts import SimulatedHost, SimulatedHosts, namespaces_unavailable

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

UNAVAILABLE = namespaces_unavailable()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None,
                                reason=f'two simulated hosts cannot be made: {UNAVAILABLE}')

PEERS = REPO_ROOT / 'test' / 'fixtures' / 'remote_peers.py'
PARAMS_FILE = REPO_ROOT / 'config' / 'hydranet.yaml'
NODE_MODULE = 'hydranet_ros.node.hydranet_node'
NEAR, FAR = 'near', 'far'  # the node on the camera's host, the node on the other
OUTPUT_TOPICS = ('depth/image', 'segmentation/labels')
DISCOVERY_PORT = 11811
# fast-discovery-server (Fast DDS 3.x) takes the sub-command first; 42 runs a server, the
# index the `fastdds discovery` tool passes for it.
DISCOVERY_SERVER_COMMAND = '42'
CAMERA_SECONDS = 10.0
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
DRAIN_S = 2.5  # a final diagnostics message (1 Hz) after the last frame
MIN_CAMERA_DELIVERY = 0.90
MIN_OUTPUT_DELIVERY = 0.95
MIN_RATE_RATIO = 0.8


def cpu_split() -> Dict[str, Optional[FrozenSet[int]]]:
    """Return the CPUs of the nodes and of the other processes (None: no pinning).

    Two computers do not share their processors; on one machine the camera's and the
    consumer's work would otherwise take turns with the nodes'. Both nodes get the last CPU.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return {'nodes': None, 'peers': None}
    return {'nodes': frozenset(cpus[-1:]), 'peers': frozenset(cpus[:-1])}


class HostProcess:
    """A command run on a simulated host (on some CPUs); its output goes to a log file."""

    def __init__(self, host: SimulatedHost, argv: Sequence[str], env: Dict[str, str],
                 log_path: Path, cpus: Optional[FrozenSet[int]] = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, 'w')
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        self.process = subprocess.Popen(host.command(argv, cwd=REPO_ROOT), env=env,
                                        cwd=REPO_ROOT, stdout=self._log,
                                        stderr=subprocess.STDOUT, preexec_fn=pin)

    def output(self) -> str:
        """Return everything printed so far."""
        return self.log_path.read_text(errors='replace')

    def wait_for_output(self, text: str, timeout_s: float = START_TIMEOUT_S) -> bool:
        """Wait until ``text`` has been printed (False if the process ended without it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.process.poll() is not None:
                return text in self.output()
            time.sleep(0.1)
        return False

    def json_lines(self) -> List[dict]:
        """Return the JSON objects printed, one per line."""
        return [json.loads(line) for line in self.output().splitlines()
                if line.startswith('{')]

    def stop(self) -> Optional[int]:
        """Interrupt (as Ctrl-C does), kill if it does not end; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        self._log.close()
        return self.process.returncode


def discovery_server_binary() -> Optional[str]:
    """Return the Fast DDS discovery server of this environment (the wheel's), or None."""
    beside = Path(sys.prefix) / 'bin' / 'fast-discovery-server'
    return str(beside) if beside.exists() else shutil.which('fast-discovery-server')


def host_environment(log_dir: Path, domain_id: int, server: Optional[str]) -> Dict[str, str]:
    """Return the environment of every process: one domain, the profile, discovery mode."""
    env = ros_env(log_dir, domain_id, use_profile=True)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'SUBNET'
    env['HYDRANET_CACHE_DIR'] = str(log_dir / 'cache')
    env.pop('ROS_DISCOVERY_SERVER', None)
    if server is not None:
        env['ROS_DISCOVERY_SERVER'] = server
    return env


def node_command(name: str, cpus: Optional[FrozenSet[int]]) -> List[str]:
    """Return the command line of node ``name`` (topics under /name): the camera's topics.

    Pinned, a node runs one inference thread per CPU, and pipelines only with more than one.
    """
    command = [sys.executable, '-m', NODE_MODULE, '--ros-args', '-r', f'__node:={name}',
               '-r', f'__ns:=/{name}', '--params-file', str(PARAMS_FILE),
               '-r', 'image:=/camera/image_raw', '-r', 'camera_info:=/camera/camera_info']
    if cpus:
        command += ['-p', f'threads:={len(cpus)}',
                    '-p', f'pipeline:={"always" if len(cpus) > 1 else "never"}']
    return command


def run_side_by_side(hosts: SimulatedHosts, mode: str, work_dir: Path) -> Dict[str, object]:
    """Stream the camera for CAMERA_SECONDS to the near and the far node; return figures."""
    work_dir.mkdir(parents=True, exist_ok=True)
    base, robot = hosts[0], hosts[1]
    server_address = f'{base.address}:{DISCOVERY_PORT}' if mode == 'discovery_server' else None
    env = host_environment(work_dir, unique_domain_id(), server_address)
    cpus = cpu_split()
    processes: List[HostProcess] = []

    def start(host: SimulatedHost, argv: List[str], name: str,
              pinned: Optional[FrozenSet[int]]) -> HostProcess:
        process = HostProcess(host, argv, env, work_dir / f'{name}.log', pinned)
        processes.append(process)
        return process

    try:
        if server_address is not None:
            binary = discovery_server_binary()
            assert binary, 'fast-discovery-server is not installed beside Fast DDS'
            server = start(base, [binary, DISCOVERY_SERVER_COMMAND, '-i', '0', '-l',
                                  base.address, '-p', str(DISCOVERY_PORT)],
                           'discovery_server', cpus['peers'])
            assert server.wait_for_output('Server started', 30.0), server.output()
        multicast = start(robot, [sys.executable, str(PEERS), 'multicast', '--address',
                                  robot.address], 'multicast', cpus['peers'])
        nodes = {NEAR: start(base, node_command(NEAR, cpus['nodes']), NEAR, cpus['nodes']),
                 FAR: start(robot, node_command(FAR, cpus['nodes']), FAR, cpus['nodes'])}
        consumer_args = [sys.executable, str(PEERS), 'consumer']
        for name in nodes:
            consumer_args += ['--node', name]
            consumer_args += [arg for topic in OUTPUT_TOPICS
                              for arg in ('--topic', f'/{name}/{topic}')]
        consumer = start(base, consumer_args, 'consumer', cpus['peers'])
        assert multicast.wait_for_output('ready'), multicast.output()
        for node in nodes.values():
            assert node.wait_for_output('active:'), node.output()
        assert consumer.wait_for_output('ready'), consumer.output()
        wire_before = base.interface_bytes()
        camera = start(base, [sys.executable, str(PEERS), 'camera', '--seconds',
                              str(CAMERA_SECONDS), '--subscribers', str(len(nodes))],
                       'camera', cpus['peers'])
        assert camera.process.wait(START_TIMEOUT_S + CAMERA_SECONDS) == 0, camera.output()
        wire_after = base.interface_bytes()
        time.sleep(DRAIN_S)
        assert consumer.stop() == 0, consumer.output()
        assert multicast.stop() == 0, multicast.output()
        for node in nodes.values():
            assert node.stop() == 0, node.output()
            assert 'Traceback' not in node.output(), node.output()
        sent = camera.json_lines()[-1]
        received = consumer.json_lines()[-1]
        heard = multicast.json_lines()[-1]
    finally:
        for process in reversed(processes):
            process.stop()
    result: Dict[str, object] = {
        'mode': mode, 'camera_seconds': float(sent['seconds']),
        'camera_frames_sent': int(sent['sent']),
        'camera_mbit_s': round(8 * int(sent['sent']) * int(sent['image_bytes'])
                               / float(sent['seconds']) / 1e6, 1),
        'wire_mbit_s': {
            direction: round(8 * (wire_after[key] - wire_before[key])
                             / float(sent['seconds']) / 1e6, 1)
            for direction, key in (('base_to_robot', 'tx_bytes'),
                                   ('robot_to_base', 'rx_bytes'))},
        'discovery_multicast_datagrams': int(heard['datagrams']),
        'cpus': {key: sorted(value) if value else None for key, value in cpus.items()}}
    for name in nodes:
        result[name] = node_figures(name, sent, received)
    result['rate_ratio'] = round(result[FAR]['output_rate_hz']
                                 / max(1e-9, result[NEAR]['output_rate_hz']), 3)
    return result


def node_figures(name: str, sent: dict, received: dict) -> Dict[str, object]:
    """Return one node's delivery ratios, output rate and output bandwidth."""
    diagnostics = received['diagnostics'][name]
    assert diagnostics is not None, f'the consumer never received the diagnostics of {name}'
    seconds = float(sent['seconds'])
    node_received = int(diagnostics['frames_received'])
    node_processed = int(diagnostics['frames_processed'])
    outputs = {topic: received['topics'][f'/{name}/{topic}'] for topic in OUTPUT_TOPICS}
    delivered = min(int(t['distinct_stamps']) for t in outputs.values())
    return {
        'node_frames_received': node_received,
        'camera_delivery': round(node_received / max(1, int(sent['sent'])), 4),
        'node_outputs_published': node_processed, 'outputs_received': delivered,
        'output_delivery': round(delivered / max(1, node_processed), 4),
        'output_rate_hz': round(delivered / seconds, 2),
        'outputs_mbit_s': {topic: round(8 * int(t['bytes']) / seconds / 1e6, 1)
                           for topic, t in outputs.items()},
        'inference_ms_mean': float(diagnostics.get('inference_ms_mean', 'nan')),
    }


@pytest.mark.parametrize('mode', ['multicast', 'discovery_server'])
def test_node_on_another_host(mode, tmp_path):
    """Frames and outputs cross the veth pair at >= 0.8x the one-host rate."""
    if mode == 'discovery_server' and discovery_server_binary() is None:
        pytest.skip('fast-discovery-server is not installed (it comes with Fast DDS)')
    with SimulatedHosts(tmp_path / 'hosts') as hosts:
        result = run_side_by_side(hosts, mode, tmp_path / 'run')
    print(json.dumps(result))
    far = result[FAR]
    assert far['camera_delivery'] >= MIN_CAMERA_DELIVERY, result
    assert far['output_delivery'] >= MIN_OUTPUT_DELIVERY, result
    assert result['rate_ratio'] >= MIN_RATE_RATIO, result
    wire = result['wire_mbit_s']
    assert wire['base_to_robot'] > 0.9 * result['camera_mbit_s'] * MIN_CAMERA_DELIVERY, \
        'the camera frames did not cross the veth pair'
    assert wire['robot_to_base'] > 0.0
    if mode == 'discovery_server':
        assert result['discovery_multicast_datagrams'] == 0, result
    else:
        assert result['discovery_multicast_datagrams'] > 0, result
