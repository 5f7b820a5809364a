"""Benchmark: the CPU a labelled cloud costs from building to a subscriber, by decimation.

For each ``--decimations`` d, the cloud of a ``--width`` x ``--height`` depth image (the
node's own ``build_cloud`` and ``serialize_point_cloud``, fields ``--fields``) is published
``--rate`` times a second for ``--seconds`` over real DDS with the shipped Fast DDS profile,
best effort as the node publishes it:

1. with no subscriber (what the node never does: it builds no cloud then; the floor of the
   middleware's own copies);
2. to one subscriber in another process taking the serialised message, as the node benchmark's
   consumer does (rclpy, large buffers kept in its heap).

Per cloud it reports the build and serialisation time, the wall time of ``publish``, the CPU
time of the publishing process and of the subscribing process, their sum (the machine's CPU per
cloud), and the ratio of each decimation's figures to the first one's. The publishing process
measures its own CPU over its sending window; the subscriber from its first message to its
last. On a machine whose cores the network keeps busy, this sum is what the cloud takes from
inference. Numbers from a shared, busy CPU are noisy.

Example::

    python -m dev.bench.cloud_transport --decimations 1 2 4
"""
import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

from hydranet_ros.engine.geometry import build_cloud, PinholeIntrinsics, POINTS_FIELD_CHOICES
from hydranet_ros.engine.memory import keep_large_buffers
from hydranet_ros.tools.node_processes import IMPORT_ROOT, ros_environment, wait_for

MODULE = 'dev.bench.cloud_transport'
TOPIC = 'depth/points'
FRAME_ID = 'camera_optical_frame'
QOS_DEPTH = 2
MS_PER_S = 1000.0
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
NEAR_M, FAR_M = 0.5, 10.0


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--width', type=int, default=640, help='depth image width (px)')
    parser.add_argument('--height', type=int, default=480, help='depth image height (px)')
    parser.add_argument('--fields', default=POINTS_FIELD_CHOICES[0],
                        choices=POINTS_FIELD_CHOICES, help='point field profile')
    parser.add_argument('--decimations', type=int, nargs='+', default=[1, 2],
                        help='points_decimation values, side by side in this run')
    parser.add_argument('--rate', type=float, default=7.0,
                        help='clouds a second (about the node on a 2-core CPU)')
    parser.add_argument('--seconds', type=float, default=8.0, help='publishing time per phase')
    parser.add_argument('--role', choices=('run', 'publish', 'subscribe'), default='run',
                        help='used internally: the publishing or the subscribing process')
    parser.add_argument('--decimation', type=int, default=1, help='used internally')
    parser.add_argument('--subscribers', type=int, default=0, help='used internally')
    args = parser.parse_args(argv)
    if min(args.decimations + [args.decimation]) < 1 or args.width < 1 or args.height < 1 \
            or args.rate <= 0 or args.seconds <= 0:
        parser.error('sizes, decimations, --rate and --seconds must be positive')
    return args


def cpu_ms() -> float:
    """Return this process's CPU time (user + system, every thread) in ms."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * MS_PER_S


def frame(width: int, height: int):
    """Return depth (a tilted plane), labels, confidence and colour of one frame."""
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    depth = NEAR_M + (FAR_M - NEAR_M) * (rows + columns) / float(height + width)
    labels = ((rows // 8 + columns // 8) % 40).astype(np.uint8)
    confidence = np.full((height, width), 0.75, np.float32)
    rgb = np.dstack([labels * 6, labels * 3, 255 - labels * 6]).astype(np.uint8)
    return depth, labels, confidence, rgb


def best_effort():
    """Return the cloud's QoS: best effort, as the node publishes it."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=QOS_DEPTH, reliability=ReliabilityPolicy.BEST_EFFORT)


def publish(args: argparse.Namespace) -> Dict[str, float]:
    """Build and publish clouds for ``--seconds``; return per-cloud times and CPU."""
    import rclpy
    from sensor_msgs.msg import PointCloud2
    from std_msgs.msg import Header

    from hydranet_ros.node.messages import serialize_point_cloud

    rclpy.init()
    node = rclpy.create_node('hydranet_cloud_transport_publisher')
    publisher = node.create_publisher(PointCloud2, TOPIC, best_effort())
    depth, labels, confidence, rgb = frame(args.width, args.height)
    intrinsics = PinholeIntrinsics(0.8 * args.width, 0.8 * args.width, 0.52 * args.width,
                                   0.47 * args.height)
    header = Header(frame_id=FRAME_ID)
    wait_for(lambda: publisher.get_subscription_count() >= args.subscribers, START_TIMEOUT_S,
             'the subscriber', [])
    time.sleep(1.0)  # discovery settles both ways
    build_ms, serialize_ms, publish_ms = [], [], []
    count = max(2, int(round(args.seconds * args.rate)))
    started_cpu = cpu_ms()
    for _ in range(count):
        began = time.perf_counter()
        cloud = build_cloud(depth, intrinsics, labels, confidence, rgb, args.fields,
                            args.decimation)
        built = time.perf_counter()
        data = serialize_point_cloud(cloud, header)
        serialized = time.perf_counter()
        publisher.publish(data)
        ended = time.perf_counter()
        build_ms.append((built - began) * MS_PER_S)
        serialize_ms.append((serialized - built) * MS_PER_S)
        publish_ms.append((ended - serialized) * MS_PER_S)
        time.sleep(max(0.0, 1.0 / args.rate - (ended - began)))
    cpu_per_cloud = (cpu_ms() - started_cpu) / count
    node.destroy_node()
    rclpy.shutdown()
    return {'clouds_sent': count, 'cloud_bytes': len(data),
            'build_ms_median': float(np.median(build_ms)),
            'serialize_ms_median': float(np.median(serialize_ms)),
            'publish_ms_median': float(np.median(publish_ms)),
            'publish_ms_p90': float(np.percentile(publish_ms, 90)),
            'publisher_cpu_ms_per_cloud': cpu_per_cloud}


def subscribe() -> Dict[str, float]:
    """Take serialised clouds until interrupted; return the CPU per cloud received."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import PointCloud2

    arrivals: List[float] = []
    rclpy.init()
    node = rclpy.create_node('hydranet_cloud_transport_subscriber')
    node.create_subscription(PointCloud2, TOPIC, lambda data: arrivals.append(cpu_ms()),
                             best_effort(), raw=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    received = len(arrivals)
    per_cloud = (arrivals[-1] - arrivals[0]) / (received - 1) if received > 1 else None
    return {'clouds_received': received, 'subscriber_cpu_ms_per_cloud': per_cloud}


def _role(args: argparse.Namespace, env: Dict[str, str], role: str, decimation: int,
          subscribers: int = 0) -> subprocess.Popen:
    command = [sys.executable, '-m', MODULE, '--role', role, '--width', str(args.width),
               '--height', str(args.height), '--fields', args.fields, '--rate', str(args.rate),
               '--seconds', str(args.seconds), '--decimation', str(decimation),
               '--subscribers', str(subscribers)]
    return subprocess.Popen(command, env=env, cwd=IMPORT_ROOT, stdout=subprocess.PIPE,
                            text=True)


def _result(process: subprocess.Popen, what: str) -> Dict[str, float]:
    output, _ = process.communicate(timeout=START_TIMEOUT_S)
    if process.returncode != 0 or not output.strip():
        raise RuntimeError(f'the {what} process failed (exit code {process.returncode})')
    return json.loads(output.strip().splitlines()[-1])


def measure(args: argparse.Namespace, env: Dict[str, str], decimation: int) -> Dict:
    """Return the figures of one decimation: alone, then to one subscriber."""
    print(f'decimation {decimation}: no subscriber...', file=sys.stderr)
    alone = _result(_role(args, env, 'publish', decimation), 'publishing')
    print(f'decimation {decimation}: one subscriber...', file=sys.stderr)
    subscriber = _role(args, env, 'subscribe', decimation)
    try:
        sent = _result(_role(args, env, 'publish', decimation, subscribers=1), 'publishing')
    finally:
        time.sleep(0.5)  # the last cloud arrives
        subscriber.send_signal(signal.SIGINT)
    received = _result(subscriber, 'subscribing')
    machine = None
    if received['subscriber_cpu_ms_per_cloud'] is not None:
        machine = (sent['publisher_cpu_ms_per_cloud']
                   + received['subscriber_cpu_ms_per_cloud'])
    return {
        'decimation': decimation,
        'points': ((args.height + decimation - 1) // decimation)
        * ((args.width + decimation - 1) // decimation),
        'cloud_bytes': sent['cloud_bytes'],
        'build_ms_median': sent['build_ms_median'],
        'serialize_ms_median': sent['serialize_ms_median'],
        'publish_ms_median_no_subscriber': alone['publish_ms_median'],
        'publish_ms_median': sent['publish_ms_median'],
        'publish_ms_p90': sent['publish_ms_p90'],
        'publisher_cpu_ms_per_cloud_no_subscriber': alone['publisher_cpu_ms_per_cloud'],
        'publisher_cpu_ms_per_cloud': sent['publisher_cpu_ms_per_cloud'],
        'subscriber_cpu_ms_per_cloud': received['subscriber_cpu_ms_per_cloud'],
        'machine_cpu_ms_per_cloud': machine,
        'clouds_sent': sent['clouds_sent'],
        'clouds_received': received['clouds_received'],
    }


def with_ratios(runs: List[Dict]) -> List[Dict]:
    """Add each run's CPU and bytes as ratios to the first run's."""
    first = runs[0]
    for run in runs:
        for key in ('cloud_bytes', 'publisher_cpu_ms_per_cloud', 'machine_cpu_ms_per_cloud'):
            run[f'{key}_ratio_to_first'] = run[key] / first[key] \
                if run[key] is not None and first[key] else None
    return runs


def main(argv: Optional[List[str]] = None) -> int:
    """Run the phases (or one role) and print the JSON report."""
    args = parse_args(argv)
    keep_large_buffers()  # as the node and the node benchmark's consumer do
    if args.role == 'publish':
        print(json.dumps(publish(args)), flush=True)
        return 0
    if args.role == 'subscribe':
        print(json.dumps(subscribe()), flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix='hydranet_cloud_transport_') as work_dir:
        env = ros_environment(os.path.join(work_dir, 'ros_log'))
        runs = with_ratios([measure(args, env, decimation) for decimation in args.decimations])
    print(json.dumps({'image': f'{args.height}x{args.width}', 'fields': args.fields,
                      'rate_hz': args.rate, 'seconds': args.seconds,
                      'load_average_1min': os.getloadavg()[0], 'cpu_count': os.cpu_count(),
                      'runs': runs}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
