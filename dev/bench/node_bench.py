"""Benchmark of hydranet_node against the bare engine: throughput, overhead, frame age.

Runs, on a private ROS domain:

1. the bare engine in a process of its own (``InferenceEngine.infer`` on a 640x480 picture,
   same model, backend and thread count as the node), timing frames on request;
2. ``hydranet_node`` in another process, and ``hydranet_demo_source`` publishing the picture
   at 30 Hz in a third, both with the shipped Fast DDS profile;
3. this process subscribing to ``depth/image`` and ``segmentation/labels`` as a consumer does
   (it reads only the stamp of each serialised message and keeps large buffers in its heap,
   to load the CPU as little as it can: a 7 MB cloud costs it about 5 ms instead of 19 ms).

The bare engine and the node take turns, ``--rounds`` times (the camera streams only during
the node's turns), so that both see the same machine even when its speed drifts; the
throughput ratio is the node's output rate over all its turns against the bare engine's rate
over all its turns. It prints one JSON object: that ratio and the ratio of each round, the
node's own overhead per frame (receive to publish, minus inference and minus the wait for the
previous frame; from the node's diagnostics), the age of processed frames against the
inference period (a frame older than one period means the node fell behind), and end-to-end
latency from the camera stamp to this subscriber. For reference it also times the bare engine
while the camera streams to a consumer (the node run's load without the node). Targets:
throughput >= 0.9x the bare engine, overhead p99 <= 10 ms, no stale frame; the exit code is 0
when all are met. Numbers from a shared, busy CPU are noisy.

``--points on`` runs the node with ``depth/points`` published and subscribed; ``--points
compare`` runs two nodes side by side (namespaces ``without_points`` and ``with_points``), each
taking its turn in every round beside the bare engine, and reports the throughput of the one
with the cloud against the one without (target >= 0.95x).

Example::

    python -m dev.bench.node_bench --model ../shared/reference/ckpt_nyud_random.pth
    python -m dev.bench.node_bench --model ../shared/reference/ckpt_nyud_random.pth \
        --points compare
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

import cv2

from hydranet_ros.engine.memory import keep_large_buffers
from hydranet_ros.tools.node_processes import (DEMO_SOURCE_MODULE, Listener, NODE_MODULE,
                                               PACKAGE_DIR, node_arguments, ros_environment,
                                               start, stop, wait_for)

CHECKOUT_DIR = Path(__file__).resolve().parents[2]
SAMPLE = PACKAGE_DIR / 'assets' / 'samples' / 'nyud_000464.png'
NODE_NAME = 'hydranet_bench_node'
INPUT_RATE_HZ = 30.0
THROUGHPUT_TARGET = 0.9
POINTS_THROUGHPUT_TARGET = 0.95
POINTS_CHOICES = ('off', 'on', 'compare')
POINTS_TOPIC = 'depth/points'
OVERHEAD_P99_TARGET_MS = 10.0
START_TIMEOUT_S = 300.0
WARM_UP_OUTPUTS = 3
DIAGNOSTICS_SETTLE_S = 2.0
IDLE_SETTLE_S = 1.0
BARE_WARM_UP_FRAMES = 2
MS_PER_S = 1000.0
NS_PER_S = 1e9
OUTPUT_TOPICS = ('depth/image', 'segmentation/labels')
READY = 'ready'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default='', help='checkpoint (default: the bundled model)')
    parser.add_argument('--backend', default='onnxruntime', choices=('torch', 'onnxruntime'),
                        help='inference backend of both the bare engine and the node')
    parser.add_argument('--threads', type=int, default=0,
                        help='inference threads (0: backend default)')
    parser.add_argument('--pipeline', default='auto', choices=('auto', 'always', 'never'),
                        help="the node's pipeline parameter")
    parser.add_argument('--image', default=str(SAMPLE), help='picture to publish')
    parser.add_argument('--rate', type=float, default=INPUT_RATE_HZ, help='camera rate in Hz')
    parser.add_argument('--rounds', type=int, default=6,
                        help='turns of the bare engine and the node, one after the other')
    parser.add_argument('--seconds', type=float, default=6.0,
                        help='measurement time of the node in each round')
    parser.add_argument('--bare-frames', type=int, default=10,
                        help='timed frames of the bare engine in each round')
    parser.add_argument('--points', default='off', choices=POINTS_CHOICES,
                        help='depth/points: off, on (published and subscribed), or compare '
                             '(a node with it beside one without, taking turns)')
    parser.add_argument('--points-decimation', type=int, default=1,
                        help="the node's points_decimation with depth/points (1: every pixel)")
    parser.add_argument('--cache-dir', default='',
                        help='HYDRANET_CACHE_DIR for exported models (default: a temp dir)')
    parser.add_argument('--bare-worker', action='store_true',
                        help='serve bare-engine timings on stdin/stdout (used internally)')
    return parser.parse_args(argv)


def stamp_ns(serialized: bytes) -> int:
    """Return the header stamp (ns) of a serialised message that starts with a std_msgs/Header.

    CDR: a 4-byte encapsulation header (odd second byte: little endian), then the stamp's
    int32 seconds and uint32 nanoseconds.
    """
    order = '<' if serialized[1] & 1 else '>'
    sec, nanosec = struct.unpack_from(order + 'iI', serialized, 4)
    return sec * 10**9 + nanosec


class BareEngine:
    """The bare engine in a process of its own, timing frames when asked."""

    def __init__(self, args: argparse.Namespace, env: Dict[str, str]) -> None:
        command = [sys.executable, '-m', 'dev.bench.node_bench', '--bare-worker',
                   '--backend', args.backend, '--threads', str(args.threads),
                   '--image', args.image]
        if args.model:
            command += ['--model', os.path.abspath(args.model)]
        self.process = subprocess.Popen(command, env=env, cwd=CHECKOUT_DIR, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        if self._read_line() != READY:
            raise RuntimeError('the bare engine process did not start')

    def _read_line(self) -> str:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f'the bare engine process ended (exit {self.process.wait()})')
        return line.strip()

    def time_frames(self, frames: int) -> Dict[str, float]:
        """Return {'frames', 'seconds'} of ``frames`` back-to-back ``infer`` calls."""
        self.process.stdin.write(f'{frames}\n')
        self.process.stdin.flush()
        return json.loads(self._read_line())

    def close(self) -> None:
        """End the process."""
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(30)


def bare_worker(args: argparse.Namespace, image_rgb: np.ndarray) -> None:
    """Load the engine, then for each number N read on stdin print the time of N frames."""
    from hydranet_ros.engine import InferenceEngine
    keep_large_buffers()  # as the node does, so that only the node's own work differs
    engine = InferenceEngine(args.model or None, device='cpu', backend=args.backend,
                             threads=args.threads or None)
    for _ in range(BARE_WARM_UP_FRAMES):
        engine.infer(image_rgb, 'rgb8', with_overlay=False)
    print(READY, flush=True)
    for line in sys.stdin:
        frames = int(line)
        started = time.perf_counter()
        for _ in range(frames):
            engine.infer(image_rgb, 'rgb8', with_overlay=False)
        seconds = time.perf_counter() - started
        print(json.dumps({'frames': frames, 'seconds': seconds}), flush=True)


class OutputTimes:
    """Arrival and stamp times of the node's outputs, and its latest diagnostics."""

    def __init__(self, listener: Listener, node_name: str = NODE_NAME, namespace: str = '',
                 points: bool = False) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, PointCloud2

        self.listener = listener
        self.node_name = node_name
        prefix = f'/{namespace}/' if namespace else ''
        self.arrivals: Dict[str, List[tuple]] = {topic: [] for topic in OUTPUT_TOPICS}
        self.points_received = 0
        self.diagnostics: Dict[str, str] = {}
        reliable = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        for topic in OUTPUT_TOPICS:
            listener.listen(Image, prefix + topic,
                            lambda data, topic=topic: self._on_output(topic, data),
                            reliable, raw=True)
        if points:
            best_effort = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)
            listener.listen(PointCloud2, prefix + POINTS_TOPIC, self._on_points, best_effort,
                            raw=True)
        listener.listen(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _on_points(self, serialized: bytes) -> None:
        self.points_received += 1

    def _on_output(self, topic: str, serialized: bytes) -> None:
        self.arrivals[topic].append((time.time_ns(), stamp_ns(serialized)))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(f'{self.node_name}:'):
                self.diagnostics = {item.key: item.value for item in status.values}

    def outputs(self) -> List[tuple]:
        """Return (arrival ns, stamp ns) of every depth image received."""
        with self.listener.lock:
            return list(self.arrivals[OUTPUT_TOPICS[0]])

    def latest_diagnostics(self) -> Dict[str, str]:
        """Return the node's last diagnostics values."""
        with self.listener.lock:
            return dict(self.diagnostics)


def camera_arguments(args: argparse.Namespace, namespace: str = '') -> List[str]:
    """Return the demo source's arguments: the picture at the camera rate (into namespace)."""
    remaps = ['-r', f'__ns:=/{namespace}'] if namespace else []
    return ['--ros-args', '-p', f'rate_hz:={args.rate}',
            '-p', f'images:=[{os.path.abspath(args.image)}]'] + remaps


def bare_engine_beside_camera(args: argparse.Namespace, env: Dict[str, str], bare: BareEngine,
                              log_dir: str) -> Dict[str, float]:
    """Time the bare engine while the camera streams to a subscriber in this process.

    The same machine load as the node run, less the node's own work: a camera process
    publishing at the camera rate and a consumer receiving every frame. Only informative;
    the target compares the node with the bare engine on an otherwise idle machine.
    """
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    listener = Listener('hydranet_node_bench_camera_consumer')
    received = []
    listener.listen(Image, 'image', lambda msg: received.append(time.perf_counter()),
                    qos_profile_sensor_data)
    camera = start(DEMO_SOURCE_MODULE, camera_arguments(args), env,
                   os.path.join(log_dir, 'camera_beside_bare.log'))
    try:
        wait_for(lambda: len(received) >= WARM_UP_OUTPUTS, START_TIMEOUT_S,
                 'the camera stream', [camera])
        before = len(received)
        figures = bare.time_frames(args.bare_frames * 2)
        figures['camera_frames_received'] = len(received) - before
    finally:
        stop(camera)
        listener.close()
    return figures


class NodeRun:
    """The node process, its consumer, and a camera started for each of the node's turns."""

    def __init__(self, args: argparse.Namespace, env: Dict[str, str], log_dir: str,
                 points: bool = False, namespace: str = '') -> None:
        parameters = {'backend': args.backend, 'device': 'cpu', 'threads': args.threads,
                      'pipeline': args.pipeline, 'publish_points': points}
        if points:
            parameters['points_decimation'] = args.points_decimation
        if args.model:
            parameters['model_path'] = os.path.abspath(args.model)
        self.args, self.env, self.log_dir = args, env, log_dir
        self.namespace = namespace
        name = f'{NODE_NAME}_{namespace}' if namespace else NODE_NAME
        self.listener = Listener(f'hydranet_node_bench_{namespace or "consumer"}')
        self.outputs = OutputTimes(self.listener, name, namespace, points)
        arguments = node_arguments(name, parameters)
        if namespace:
            arguments += ['-r', f'__ns:=/{namespace}']
        self.node = start(NODE_MODULE, arguments, env,
                          os.path.join(log_dir, f'{name}.log'))
        self.turns = 0

    def turn(self, seconds: float) -> Dict[str, object]:
        """Stream the camera for one turn; return the node's outputs in it after its first."""
        self.turns += 1
        already = len(self.outputs.outputs())
        camera = start(DEMO_SOURCE_MODULE, camera_arguments(self.args, self.namespace),
                       self.env, os.path.join(self.log_dir,
                                              f'camera_{self.namespace}{self.turns}.log'))
        try:
            wait_for(lambda: len(self.outputs.outputs()) > already, START_TIMEOUT_S,
                     'the first output of the node', [self.node, camera])
            first_ns = self.outputs.outputs()[-1][0]
            points_before = self.outputs.points_received
            time.sleep(seconds)
            measured = [o for o in self.outputs.outputs() if o[0] > first_ns]
            points = self.outputs.points_received - points_before
        finally:
            stop(camera)
        time.sleep(IDLE_SETTLE_S)  # the node finishes its last frame
        duration_s = (measured[-1][0] - first_ns) / NS_PER_S if measured else 0.0
        return {'outputs': len(measured), 'seconds': duration_s, 'points_received': points,
                'latencies_ms': [(arrival - stamp) / 1e6 for arrival, stamp in measured]}

    def diagnostics(self) -> Dict[str, str]:
        """Return the node's latest diagnostics, published after the last turn."""
        time.sleep(DIAGNOSTICS_SETTLE_S)
        return self.outputs.latest_diagnostics()

    def close(self) -> None:
        """Stop the node and the consumer."""
        stop(self.node)
        self.listener.close()


def measure(args: argparse.Namespace, env: Dict[str, str], log_dir: str) -> Dict:
    """Run the turns and the reference; return the raw figures."""
    bare = BareEngine(args, env)
    try:
        if args.points == 'compare':
            nodes = [NodeRun(args, env, log_dir, False, 'without_points'),
                     NodeRun(args, env, log_dir, True, 'with_points')]
        else:
            nodes = [NodeRun(args, env, log_dir, args.points == 'on')]
        try:
            print('warming the node up...', file=sys.stderr)
            for node in nodes:
                node.turn(2.0)
            bare_turns: List[Dict] = []
            node_turns: List[List[Dict]] = [[] for _ in nodes]
            for round_index in range(args.rounds):
                # Alternate the order against drift: bare engine first or last, and the two
                # nodes of a comparison in turn.
                order = list(range(len(nodes)))
                if round_index % 2 == 1:
                    order.reverse()
                    bare_turns.append(bare.time_frames(args.bare_frames))
                for index in order:
                    node_turns[index].append(nodes[index].turn(args.seconds))
                if round_index % 2 == 0:
                    bare_turns.append(bare.time_frames(args.bare_frames))
                rates = ', '.join(f'{node.namespace or "node"} '
                                  f'{_rate(turns[-1], "outputs"):.2f} fps'
                                  for node, turns in zip(nodes, node_turns))
                ratio = _rate(node_turns[0][-1], 'outputs') / _rate(bare_turns[-1], 'frames')
                print(f'round {round_index + 1}/{args.rounds}: {rates}, bare engine '
                      f'{_rate(bare_turns[-1], "frames"):.2f} fps, ratio {ratio:.3f}',
                      file=sys.stderr)
            diagnostics = [node.diagnostics() for node in nodes]
        finally:
            for node in nodes:
                node.close()
        print('bare engine beside a camera stream...', file=sys.stderr)
        beside_camera = bare_engine_beside_camera(args, env, bare, log_dir)
    finally:
        bare.close()
    figures = {'bare': bare_turns, 'node': node_turns[0], 'diagnostics': diagnostics[0],
               'beside_camera': beside_camera}
    if len(nodes) > 1:
        figures['points_node'], figures['points_diagnostics'] = node_turns[1], diagnostics[1]
    return figures


def _rate(turn: Dict, count_key: str) -> float:
    return turn[count_key] / turn['seconds'] if turn['seconds'] else 0.0


def _total_rate(turns: List[Dict], count_key: str) -> float:
    seconds = sum(turn['seconds'] for turn in turns)
    return sum(turn[count_key] for turn in turns) / seconds if seconds else 0.0


def _number(values: Dict[str, str], key: str) -> Optional[float]:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def report(image_rgb: np.ndarray, args: argparse.Namespace, figures: Dict) -> Dict:
    """Return the JSON report and whether each target was met."""
    diagnostics = figures['diagnostics']
    bare_fps = _total_rate(figures['bare'], 'frames')
    node_fps = _total_rate(figures['node'], 'outputs')
    beside_fps = _rate(figures['beside_camera'], 'frames')
    round_ratios = [_rate(n, 'outputs') / _rate(b, 'frames')
                    for n, b in zip(figures['node'], figures['bare'])]
    latencies_ms = np.array([v for turn in figures['node'] for v in turn['latencies_ms']])
    overhead_p99 = _number(diagnostics, 'overhead_ms_p99')
    stale = _number(diagnostics, 'frames_stale')
    ratio = node_fps / bare_fps if bare_fps else None
    result = {
        'image': f'{image_rgb.shape[0]}x{image_rgb.shape[1]} rgb8',
        'camera_rate_hz': args.rate,
        'pipeline': args.pipeline,
        'backend': diagnostics.get('backend', args.backend),
        'rounds': args.rounds,
        'bare_engine_fps': bare_fps,
        'bare_engine_fps_by_round': [_rate(b, 'frames') for b in figures['bare']],
        'bare_engine_ms_mean': MS_PER_S / bare_fps if bare_fps else None,
        'bare_engine_fps_beside_camera': beside_fps,
        'node_output_fps': node_fps,
        'node_output_fps_by_round': [_rate(n, 'outputs') for n in figures['node']],
        'throughput_ratio': ratio,
        'throughput_ratio_by_round': round_ratios,
        'throughput_ratio_vs_bare_beside_camera': node_fps / beside_fps if beside_fps else None,
        'node_inference_ms_mean': _number(diagnostics, 'inference_ms_mean'),
        'node_overhead_ms_mean': _number(diagnostics, 'overhead_ms_mean'),
        'node_overhead_ms_p99': overhead_p99,
        'node_overhead_ms_max': _number(diagnostics, 'overhead_ms_max'),
        'node_take_ms_mean': _number(diagnostics, 'take_ms_mean'),
        'node_take_ms_p99': _number(diagnostics, 'take_ms_p99'),
        'node_decode_ms_p99': _number(diagnostics, 'decode_ms_p99'),
        'node_publish_ms_mean': _number(diagnostics, 'publish_ms_mean'),
        'node_publish_ms_p99': _number(diagnostics, 'publish_ms_p99'),
        'frame_age_ms_p99': _number(diagnostics, 'frame_age_ms_p99'),
        'frame_age_ms_max': _number(diagnostics, 'frame_age_ms_max'),
        'inference_period_ms_mean': _number(diagnostics, 'period_ms_mean'),
        'frames_stale': stale,
        'frames_received': _number(diagnostics, 'frames_received'),
        'frames_processed': _number(diagnostics, 'frames_processed'),
        'frames_dropped': _number(diagnostics, 'frames_dropped'),
        'frames_lost_in_transport': _number(diagnostics, 'frames_lost_in_transport'),
        'end_to_end_ms_p50': float(np.percentile(latencies_ms, 50)) if latencies_ms.size
        else None,
        'end_to_end_ms_p99': float(np.percentile(latencies_ms, 99)) if latencies_ms.size
        else None,
        'outputs_measured': sum(n['outputs'] for n in figures['node']),
        'seconds_measured': sum(n['seconds'] for n in figures['node']),
        'load_average_1min': os.getloadavg()[0],
        'cpu_count': os.cpu_count(),
    }
    result['targets_met'] = {
        'throughput_ge_0.9x_bare': ratio is not None and ratio >= THROUGHPUT_TARGET,
        'overhead_p99_le_10ms': overhead_p99 is not None
        and overhead_p99 <= OVERHEAD_P99_TARGET_MS,
        'no_frame_older_than_one_period': stale == 0,
    }
    result['points'] = args.points
    result['points_decimation'] = args.points_decimation
    if args.points == 'on':
        result['points_received'] = sum(n['points_received'] for n in figures['node'])
    if 'points_node' in figures:
        result.update(points_report(figures))
        result['targets_met']['points_throughput_ge_0.95x'] = \
            result['points_throughput_ratio'] is not None and \
            result['points_throughput_ratio'] >= POINTS_THROUGHPUT_TARGET
    return result


def points_report(figures: Dict) -> Dict:
    """Return the node with depth/points against the node without, side by side."""
    with_points, without = figures['points_node'], figures['node']
    diagnostics = figures['points_diagnostics']
    with_fps, without_fps = _total_rate(with_points, 'outputs'), _total_rate(without, 'outputs')
    # The cloud's cost per frame inside the node (built, serialised, handed to DDS): publishing
    # time with it minus without, against the inference time; steadier than the frame rates
    # when other work shares the CPU.
    publish_with = _number(diagnostics, 'publish_ms_mean')
    publish_without = _number(figures['diagnostics'], 'publish_ms_mean')
    inference = _number(figures['diagnostics'], 'inference_ms_mean')
    cost = publish_with - publish_without if None not in (publish_with, publish_without) \
        else None
    return {
        'points_publish_cost_ms': cost,
        'points_cost_share_of_inference': cost / inference if cost is not None and inference
        else None,
        'node_output_fps_without_points': without_fps,
        'node_output_fps_with_points': with_fps,
        'node_output_fps_with_points_by_round': [_rate(n, 'outputs') for n in with_points],
        'points_throughput_ratio': with_fps / without_fps if without_fps else None,
        'points_throughput_ratio_by_round': [
            _rate(w, 'outputs') / _rate(n, 'outputs') if _rate(n, 'outputs') else None
            for w, n in zip(with_points, without)],
        'points_received': sum(n['points_received'] for n in with_points),
        'points_received_per_output': (sum(n['points_received'] for n in with_points)
                                       / max(1, sum(n['outputs'] for n in with_points))),
        'node_with_points_publish_ms_mean': _number(diagnostics, 'publish_ms_mean'),
        'node_with_points_publish_ms_p99': _number(diagnostics, 'publish_ms_p99'),
        'node_with_points_overhead_ms_p99': _number(diagnostics, 'overhead_ms_p99'),
        'node_with_points_inference_ms_mean': _number(diagnostics, 'inference_ms_mean'),
    }


def main(argv: Optional[List[str]] = None) -> int:
    """Measure and print the JSON report; exit 0 when every target is met, else 1."""
    args = parse_args(argv)
    bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if bgr is None:
        print(f'cannot read {args.image}', file=sys.stderr)
        return 2
    image_rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if args.bare_worker:
        bare_worker(args, image_rgb)
        return 0
    if args.rounds < 1 or args.seconds <= 0 or args.bare_frames < 1 or \
            args.points_decimation < 1:
        print('--rounds, --seconds, --bare-frames and --points-decimation must be positive',
              file=sys.stderr)
        return 2
    keep_large_buffers()  # the listener's megabyte messages would page-fault on every frame
    with tempfile.TemporaryDirectory(prefix='hydranet_node_bench_') as work_dir:
        cache_dir = args.cache_dir or os.path.join(work_dir, 'cache')
        env = ros_environment(os.path.join(work_dir, 'ros_log'), cache_dir)
        print('starting the bare engine and the node...', file=sys.stderr)
        figures = measure(args, env, work_dir)
    result = report(image_rgb, args, figures)
    print(json.dumps(result, indent=2))
    return 0 if all(result['targets_met'].values()) else 1


if __name__ == '__main__':
    sys.exit(main())
