"""Benchmark of hydranet_node against the bare engine: throughput, overhead, frame age.

Runs, on a private ROS domain:

1. the bare engine on a 640x480 picture in a process of its own (frames per second of
   ``InferenceEngine.infer``, same model, backend and thread count as the node), before and
   after the node run (the mean of both is the reference);
2. ``hydranet_demo_source`` publishing that picture at 30 Hz in its own process, and
   ``hydranet_node`` in another, both with the shipped Fast DDS profile;
3. this process subscribing to ``depth/image`` and ``segmentation/labels`` as a consumer does.

It prints one JSON object: the node's output rate against the bare engine's rate, the node's
own overhead per frame (receive to publish, minus inference and minus the wait for the
previous frame; from the node's diagnostics), the age of processed frames against the
inference period (a frame older than one period means the node fell behind), and end-to-end
latency from the camera stamp to this subscriber. For reference it also times the bare engine
while the camera streams to a consumer (the node run's load without the node). Targets:
throughput >= 0.9x the bare engine, overhead p99 <= 10 ms, no stale frame; the exit code is 0
when all are met. Numbers from a shared, busy CPU are noisy.

Example::

    python -m hydranet_ros.tools.node_bench --model ../shared/reference/ckpt_nyud_random.pth
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

import cv2

from .node_processes import (DEMO_SOURCE_MODULE, Listener, NODE_MODULE, PACKAGE_DIR, REPO_ROOT,
                             node_arguments, ros_environment, start, stop, wait_for)

SAMPLE = PACKAGE_DIR / 'assets' / 'samples' / 'nyud_000464.png'
NODE_NAME = 'hydranet_bench_node'
INPUT_RATE_HZ = 30.0
THROUGHPUT_TARGET = 0.9
OVERHEAD_P99_TARGET_MS = 10.0
START_TIMEOUT_S = 300.0
WARM_UP_OUTPUTS = 3
DIAGNOSTICS_SETTLE_S = 2.0
BARE_WARM_UP_FRAMES = 2
MS_PER_S = 1000.0
NS_PER_S = 1e9
OUTPUT_TOPICS = ('depth/image', 'segmentation/labels')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default='', help='checkpoint (default: the bundled model)')
    parser.add_argument('--backend', default='onnxruntime', choices=('torch', 'onnxruntime'),
                        help='inference backend of both the bare engine and the node')
    parser.add_argument('--threads', type=int, default=0,
                        help='inference threads (0: backend default)')
    parser.add_argument('--image', default=str(SAMPLE), help='picture to publish')
    parser.add_argument('--rate', type=float, default=INPUT_RATE_HZ, help='camera rate in Hz')
    parser.add_argument('--seconds', type=float, default=30.0,
                        help='measurement time of the node after warm-up')
    parser.add_argument('--bare-frames', type=int, default=20,
                        help='timed frames of the bare engine, before and after')
    parser.add_argument('--cache-dir', default='',
                        help='HYDRANET_CACHE_DIR for exported models (default: a temp dir)')
    parser.add_argument('--bare-only', action='store_true',
                        help='only time the bare engine and print its JSON (used internally)')
    return parser.parse_args(argv)


def bare_engine_process(args: argparse.Namespace, env: Dict[str, str]) -> Dict[str, float]:
    """Time the bare engine in a fresh process, as the node runs in one; return its figures."""
    command = [sys.executable, '-m', 'hydranet_ros.tools.node_bench', '--bare-only',
               '--backend', args.backend, '--threads', str(args.threads), '--image', args.image,
               '--bare-frames', str(args.bare_frames)]
    if args.model:
        command += ['--model', os.path.abspath(args.model)]
    result = subprocess.run(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def bare_engine(args: argparse.Namespace, image_rgb: np.ndarray) -> Dict[str, float]:
    """Return frames per second and mean latency of ``InferenceEngine.infer`` on the picture."""
    from ..engine import InferenceEngine
    from ..engine.memory import keep_large_buffers
    keep_large_buffers()  # as the node does, so that only the node's own work differs
    engine = InferenceEngine(args.model or None, device='cpu', backend=args.backend,
                             threads=args.threads or None)
    for _ in range(BARE_WARM_UP_FRAMES):
        engine.infer(image_rgb, 'rgb8', with_overlay=False)
    times = []
    for _ in range(args.bare_frames):
        started = time.perf_counter()
        engine.infer(image_rgb, 'rgb8', with_overlay=False)
        times.append(time.perf_counter() - started)
    mean_s = float(np.mean(times))
    return {'fps': 1.0 / mean_s, 'mean_ms': mean_s * MS_PER_S}


class OutputTimes:
    """Arrival and stamp times of the node's outputs, and its latest diagnostics."""

    def __init__(self, listener: Listener) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        self.listener = listener
        self.arrivals: Dict[str, List[tuple]] = {topic: [] for topic in OUTPUT_TOPICS}
        self.diagnostics: Dict[str, str] = {}
        reliable = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        for topic in OUTPUT_TOPICS:
            listener.listen(Image, topic, lambda msg, topic=topic: self._on_output(topic, msg),
                            reliable)
        listener.listen(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _on_output(self, topic: str, msg) -> None:
        stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self.arrivals[topic].append((time.time_ns(), stamp_ns))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(f'{NODE_NAME}:'):
                self.diagnostics = {item.key: item.value for item in status.values}

    def outputs(self) -> List[tuple]:
        """Return (arrival ns, stamp ns) of every depth image received."""
        with self.listener.lock:
            return list(self.arrivals[OUTPUT_TOPICS[0]])

    def latest_diagnostics(self) -> Dict[str, str]:
        """Return the node's last diagnostics values."""
        with self.listener.lock:
            return dict(self.diagnostics)


def camera_arguments(args: argparse.Namespace) -> List[str]:
    """Return the demo source's arguments: the picture at the camera rate."""
    return ['--ros-args', '-p', f'rate_hz:={args.rate}',
            '-p', f'images:=[{os.path.abspath(args.image)}]']


def bare_engine_beside_camera(args: argparse.Namespace, env: Dict[str, str],
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
        figures = bare_engine_process(args, env)
        figures['camera_frames_received'] = len(received) - before
    finally:
        stop(camera)
        listener.close()
    return figures


def measure_node(args: argparse.Namespace, env: Dict[str, str], log_dir: str) -> Dict:
    """Run camera and node processes; return the consumer's and the node's figures."""
    parameters = {'backend': args.backend, 'device': 'cpu', 'threads': args.threads}
    if args.model:
        parameters['model_path'] = os.path.abspath(args.model)
    listener = Listener('hydranet_node_bench')
    outputs = OutputTimes(listener)
    node = start(NODE_MODULE, node_arguments(NODE_NAME, parameters), env,
                 os.path.join(log_dir, 'node.log'))
    camera = start(DEMO_SOURCE_MODULE, camera_arguments(args), env,
                   os.path.join(log_dir, 'camera.log'))
    try:
        wait_for(lambda: len(outputs.outputs()) >= WARM_UP_OUTPUTS, START_TIMEOUT_S,
                 'the first outputs of the node', [node, camera])
        first_ns = outputs.outputs()[-1][0]
        time.sleep(args.seconds)
        measured = [o for o in outputs.outputs() if o[0] > first_ns]
        time.sleep(DIAGNOSTICS_SETTLE_S)
        diagnostics = outputs.latest_diagnostics()
    finally:
        stop(camera)
        stop(node)
        listener.close()
    duration_s = (measured[-1][0] - first_ns) / NS_PER_S if measured else float('nan')
    latencies_ms = np.array([(arrival - stamp) / 1e6 for arrival, stamp in measured])
    return {'outputs': len(measured), 'duration_s': duration_s,
            'fps': len(measured) / duration_s if measured else 0.0,
            'end_to_end_ms_p50': float(np.percentile(latencies_ms, 50)) if measured else None,
            'end_to_end_ms_p99': float(np.percentile(latencies_ms, 99)) if measured else None,
            'diagnostics': diagnostics}


def _number(values: Dict[str, str], key: str) -> Optional[float]:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def report(image_rgb: np.ndarray, args: argparse.Namespace, bare: List[Dict[str, float]],
           node: Dict, beside_camera: Dict[str, float]) -> Dict:
    """Return the JSON report and whether each target was met."""
    diagnostics = node['diagnostics']
    bare_fps = float(np.mean([b['fps'] for b in bare]))
    overhead_p99 = _number(diagnostics, 'overhead_ms_p99')
    stale = _number(diagnostics, 'frames_stale')
    ratio = node['fps'] / bare_fps if bare_fps else None
    result = {
        'image': f'{image_rgb.shape[1]}x{image_rgb.shape[0]} rgb8',
        'camera_rate_hz': args.rate,
        'backend': diagnostics.get('backend', args.backend),
        'bare_engine_fps': bare_fps,
        'bare_engine_fps_before_after': [b['fps'] for b in bare],
        'bare_engine_ms_mean': float(np.mean([b['mean_ms'] for b in bare])),
        'bare_engine_fps_beside_camera': beside_camera['fps'],
        'node_output_fps': node['fps'],
        'throughput_ratio': ratio,
        'throughput_ratio_vs_bare_beside_camera': node['fps'] / beside_camera['fps'],
        'node_inference_ms_mean': _number(diagnostics, 'inference_ms_mean'),
        'node_overhead_ms_mean': _number(diagnostics, 'overhead_ms_mean'),
        'node_overhead_ms_p99': overhead_p99,
        'node_overhead_ms_max': _number(diagnostics, 'overhead_ms_max'),
        'node_decode_ms_p99': _number(diagnostics, 'decode_ms_p99'),
        'node_publish_ms_mean': _number(diagnostics, 'publish_ms_mean'),
        'node_publish_ms_p99': _number(diagnostics, 'publish_ms_p99'),
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
    result['targets_met'] = {
        'throughput_ge_0.9x_bare': ratio is not None and ratio >= THROUGHPUT_TARGET,
        'overhead_p99_le_10ms': overhead_p99 is not None
        and overhead_p99 <= OVERHEAD_P99_TARGET_MS,
        'no_frame_older_than_one_period': stale == 0,
    }
    return result


def main(argv: Optional[List[str]] = None) -> int:
    """Measure and print the JSON report; exit 0 when every target is met, else 1."""
    args = parse_args(argv)
    bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if bgr is None:
        print(f'cannot read {args.image}', file=sys.stderr)
        return 2
    image_rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if args.bare_only:
        print(json.dumps(bare_engine(args, image_rgb)))
        return 0
    with tempfile.TemporaryDirectory(prefix='hydranet_node_bench_') as work_dir:
        cache_dir = args.cache_dir or os.path.join(work_dir, 'cache')
        env = ros_environment(os.path.join(work_dir, 'ros_log'), cache_dir)
        print('measuring the bare engine...', file=sys.stderr)
        bare = [bare_engine_process(args, env)]
        print(f'bare engine: {bare[0]["fps"]:.2f} fps; running camera and node...',
              file=sys.stderr)
        node = measure_node(args, env, work_dir)
        bare.append(bare_engine_process(args, env))
        print('bare engine beside a camera stream...', file=sys.stderr)
        beside_camera = bare_engine_beside_camera(args, env, work_dir)
    result = report(image_rgb, args, bare, node, beside_camera)
    print(json.dumps(result, indent=2))
    return 0 if all(result['targets_met'].values()) else 1


if __name__ == '__main__':
    sys.exit(main())
