"""Benchmark of hydranet_node against the bare engine: throughput, overhead, frame age.

Runs, on a private ROS domain:

1. the bare engine on a 640x480 picture in this process (frames per second of
   ``InferenceEngine.infer``, same model, backend and thread count as the node);
2. ``hydranet_demo_source`` publishing that picture at 30 Hz in its own process, and
   ``hydranet_node`` in another, both with the shipped Fast DDS profile;
3. this process subscribing to ``depth/image`` and ``segmentation/labels`` as a consumer does.

It prints one JSON object: the node's output rate against the bare engine's rate, the node's
own overhead per frame (receive to publish, minus inference and minus the wait for the
previous frame, from the node's diagnostics), the age of processed frames against the
inference period (a frame older than one period means the node fell behind), and end-to-end
latency from the camera stamp to this subscriber. Targets: throughput >= 0.9x the bare engine,
overhead p99 <= 10 ms, no stale frame. Numbers from a shared, busy CPU are noisy.

Example::

    python -m hydranet_ros.tools.node_bench --model ../shared/reference/ckpt_nyud_random.pth
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

import cv2

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_DIR.parent
SAMPLE = PACKAGE_DIR / 'assets' / 'samples' / 'nyud_000464.png'
PARAMS_FILE = REPO_ROOT / 'config' / 'hydranet.yaml'
FASTDDS_PROFILE = REPO_ROOT / 'config' / 'fastdds_large_data.xml'
PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
NODE_NAME = 'hydranet_bench_node'
INPUT_RATE_HZ = 30.0
THROUGHPUT_TARGET = 0.9
OVERHEAD_P99_TARGET_MS = 10.0
START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 15.0
MAX_DOMAIN_ID = 101
WARM_UP_OUTPUTS = 3
MS_PER_S = 1000.0
OUTPUT_TOPICS = ('depth/image', 'segmentation/labels')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default='', help='checkpoint (default: the bundled model)')
    parser.add_argument('--backend', default='onnxruntime',
                        choices=('torch', 'onnxruntime'), help='inference backend')
    parser.add_argument('--threads', type=int, default=0,
                        help='inference threads (0: backend default)')
    parser.add_argument('--image', default=str(SAMPLE), help='picture to publish (640x480)')
    parser.add_argument('--rate', type=float, default=INPUT_RATE_HZ, help='camera rate in Hz')
    parser.add_argument('--seconds', type=float, default=30.0,
                        help='measurement time of the node after warm-up')
    parser.add_argument('--bare-frames', type=int, default=20,
                        help='timed frames of the bare engine')
    parser.add_argument('--cache-dir', default='',
                        help='HYDRANET_CACHE_DIR for exported models (default: a temp dir)')
    return parser.parse_args(argv)


def bare_engine_fps(args: argparse.Namespace, image_rgb: np.ndarray) -> Dict[str, float]:
    """Return the bare engine's frames per second on the picture (after two warm-up frames)."""
    from ..engine import InferenceEngine
    from ..node.memory import keep_large_buffers
    keep_large_buffers()  # as the node does, so that only the node's own work differs
    engine = InferenceEngine(args.model or None, device='cpu', backend=args.backend,
                             threads=args.threads or None)
    for _ in range(2):
        engine.infer(image_rgb, 'rgb8', with_overlay=False)
    times = []
    for _ in range(args.bare_frames):
        started = time.perf_counter()
        engine.infer(image_rgb, 'rgb8', with_overlay=False)
        times.append(time.perf_counter() - started)
    mean_s = float(np.mean(times))
    return {'fps': 1.0 / mean_s, 'mean_ms': mean_s * MS_PER_S,
            'p99_ms': float(np.percentile(times, 99)) * MS_PER_S}


def ros_environment(log_dir: str, cache_dir: str) -> Dict[str, str]:
    """Return the environment of the node processes: private domain, logs, profile, cache."""
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, MAX_DOMAIN_ID))
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_LOG_DIR'] = env['ROS_HOME'] = log_dir
    env['HYDRANET_CACHE_DIR'] = cache_dir
    env['PYTHONUNBUFFERED'] = '1'
    if FASTDDS_PROFILE.exists():
        for name in PROFILE_VARIABLES:
            env[name] = str(FASTDDS_PROFILE)
    return env


def start(module: str, args: List[str], env: Dict[str, str], log_path: str) -> subprocess.Popen:
    """Start ``python -m module args`` with output to a log file."""
    with open(log_path, 'w') as log:
        return subprocess.Popen([sys.executable, '-m', module, *args], env=env, cwd=REPO_ROOT,
                                stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    """Interrupt a process, kill it if it does not end."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


class Consumer:
    """Subscribes to the node's outputs and diagnostics in this process."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('hydranet_node_bench', context=self.context)
        reliable = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.arrivals: Dict[str, List[tuple]] = {topic: [] for topic in OUTPUT_TOPICS}
        self.diagnostics: Optional[Dict[str, str]] = None
        self.lock = threading.Lock()
        for topic in OUTPUT_TOPICS:
            self.node.create_subscription(
                Image, topic, lambda msg, topic=topic: self._on_output(topic, msg), reliable)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # the context was shut down while spinning
                return

    def _on_output(self, topic: str, msg) -> None:
        stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        with self.lock:
            self.arrivals[topic].append((time.time_ns(), stamp_ns))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(f'{NODE_NAME}:'):
                with self.lock:
                    self.diagnostics = {item.key: item.value for item in status.values}

    def outputs(self, topic: str = OUTPUT_TOPICS[0]) -> List[tuple]:
        """Return (arrival ns, stamp ns) of every output received on ``topic``."""
        with self.lock:
            return list(self.arrivals[topic])

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        import rclpy
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def wait_for(condition, timeout_s: float, what: str, processes: List[subprocess.Popen]) -> None:
    """Wait for ``condition()``; raise if it times out or a process ended."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out waiting for {what}')
        if any(p.poll() is not None for p in processes):
            raise RuntimeError(f'a process ended while waiting for {what}')
        time.sleep(0.1)


def measure_node(args: argparse.Namespace, env: Dict[str, str], log_dir: str) -> Dict:
    """Run camera and node processes; return the consumer's and the node's figures."""
    node_args = ['--ros-args', '-r', f'__node:={NODE_NAME}', '--params-file', str(PARAMS_FILE),
                 '-p', f'backend:={args.backend}', '-p', 'device:=cpu',
                 '-p', f'threads:={args.threads}']
    if args.model:
        node_args += ['-p', f'model_path:={os.path.abspath(args.model)}']
    camera_args = ['--ros-args', '-p', f'rate_hz:={args.rate}',
                   '-p', f'images:=[{os.path.abspath(args.image)}]']
    consumer = Consumer()
    node = start('hydranet_ros.node.hydranet_node', node_args, env,
                 os.path.join(log_dir, 'node.log'))
    camera = start('hydranet_ros.node.demo_source', camera_args, env,
                   os.path.join(log_dir, 'camera.log'))
    processes = [node, camera]
    try:
        wait_for(lambda: len(consumer.outputs()) >= WARM_UP_OUTPUTS, START_TIMEOUT_S,
                 'the first outputs', processes)
        first = consumer.outputs()[-1][0]
        time.sleep(args.seconds)
        outputs = [o for o in consumer.outputs() if o[0] > first]
        time.sleep(2.0)  # one more diagnostics period
        with consumer.lock:
            diagnostics = dict(consumer.diagnostics or {})
    finally:
        stop(camera)
        stop(node)
        consumer.close()
    duration_s = (outputs[-1][0] - first) / 1e9 if outputs else float('nan')
    latencies_ms = np.array([(arrival - stamp) / 1e6 for arrival, stamp in outputs])
    return {'outputs': len(outputs), 'duration_s': duration_s,
            'fps': len(outputs) / duration_s if outputs else 0.0,
            'end_to_end_ms_p50': float(np.percentile(latencies_ms, 50)) if outputs else None,
            'end_to_end_ms_p99': float(np.percentile(latencies_ms, 99)) if outputs else None,
            'diagnostics': diagnostics}


def _number(values: Dict[str, str], key: str) -> Optional[float]:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def main(argv: Optional[List[str]] = None) -> int:
    """Measure and print the JSON report; exit 0 when every target is met, else 1."""
    args = parse_args(argv)
    bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if bgr is None:
        print(f'cannot read {args.image}', file=sys.stderr)
        return 2
    image_rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    with tempfile.TemporaryDirectory(prefix='hydranet_node_bench_') as work_dir:
        cache_dir = args.cache_dir or os.path.join(work_dir, 'cache')
        os.environ['HYDRANET_CACHE_DIR'] = cache_dir  # the node reuses the bare engine's export
        env = ros_environment(os.path.join(work_dir, 'ros_log'), cache_dir)
        for name in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', *PROFILE_VARIABLES):
            if name in env:
                os.environ[name] = env[name]
        print('measuring the bare engine...', file=sys.stderr)
        bare = bare_engine_fps(args, image_rgb)
        print(f'bare engine: {bare["fps"]:.2f} fps; starting camera and node...',
              file=sys.stderr)
        node = measure_node(args, env, work_dir)
        bare_after = bare_engine_fps(args, image_rgb)
    diagnostics = node.pop('diagnostics')
    bare_fps = 0.5 * (bare['fps'] + bare_after['fps'])
    overhead_p99 = _number(diagnostics, 'overhead_ms_p99')
    stale = _number(diagnostics, 'frames_stale')
    report = {
        'image': f'{image_rgb.shape[1]}x{image_rgb.shape[0]} rgb8',
        'camera_rate_hz': args.rate,
        'backend': diagnostics.get('backend', args.backend),
        'bare_engine_fps': bare_fps,
        'bare_engine_fps_before_after': [bare['fps'], bare_after['fps']],
        'bare_engine_ms_mean': 0.5 * (bare['mean_ms'] + bare_after['mean_ms']),
        'node_output_fps': node['fps'],
        'throughput_ratio': node['fps'] / bare_fps if bare_fps else None,
        'node_inference_ms_mean': _number(diagnostics, 'inference_ms_mean'),
        'node_overhead_ms_mean': _number(diagnostics, 'overhead_ms_mean'),
        'node_overhead_ms_p99': overhead_p99,
        'node_overhead_ms_max': _number(diagnostics, 'overhead_ms_max'),
        'frame_age_ms_max': _number(diagnostics, 'frame_age_ms_max'),
        'inference_period_ms_mean': _number(diagnostics, 'period_ms_mean'),
        'frames_stale': stale,
        'frames_received': _number(diagnostics, 'frames_received'),
        'frames_processed': _number(diagnostics, 'frames_processed'),
        'frames_dropped': _number(diagnostics, 'frames_dropped'),
        'end_to_end_ms_p50': node['end_to_end_ms_p50'],
        'end_to_end_ms_p99': node['end_to_end_ms_p99'],
        'outputs_measured': node['outputs'],
        'seconds_measured': node['duration_s'],
        'load_average_1min': os.getloadavg()[0],
        'cpu_count': os.cpu_count(),
    }
    report['targets_met'] = {
        'throughput_ge_0.9x_bare': (report['throughput_ratio'] or 0.0) >= THROUGHPUT_TARGET,
        'overhead_p99_le_10ms': overhead_p99 is not None
        and overhead_p99 <= OVERHEAD_P99_TARGET_MS,
        'no_frame_older_than_one_period': stale == 0,
    }
    print(json.dumps(report, indent=2))
    return 0 if all(report['targets_met'].values()) else 1


if __name__ == '__main__':
    sys.exit(main())
