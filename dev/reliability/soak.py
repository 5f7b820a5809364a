"""Soak benchmark of hydranet_node: a 640x480 camera at 30 Hz for minutes; prints JSON.

The node runs in a process of its own on a private ROS domain (ONNX Runtime on the CPU by
default, the shipped Fast DDS profile); this process publishes the camera (a sample picture
with a fresh stamp each frame, plus camera_info), subscribes to depth, labels and camera_info
as a consumer does, samples the node's resident memory (RSS, psutil) every second and reads
its diagnostics. After a warm-up it reports per minute: end-to-end latency p50/p99 (camera
stamp to arrival here), outputs, drops, RSS; and overall: RSS growth after warm-up, the
dropped-frame ratio and the accounting of every frame (published by the camera = received
by the node + lost in transport, which the node counts from gaps in the publisher's sequence
numbers; received = processed + dropped + rejected + skipped + failed). The count of published
frames starts at the first frame that reached the node: frames sent while the transport was
still connecting leave no gap the node could see (reported apart); a few last frames sent
slowly after the stream make a loss at its very end visible. Per minute it also
reports the node's CPU share, its CPU time per output, its inference time and the machine's
load, which tell a slower node from a busier machine.

Targets: RSS growth <= 50 MB after warm-up, p99 latency of the last minute within 1.5x of the
first, every frame accounted for, no crash (exit code 0 when all are met)::

    python -m dev.reliability.soak --minutes 10 --json-out soak.json

Without ``--model`` a random-weight HydraNet (6 classes) is used: speed and memory do not
depend on the weights.
"""
import argparse
import bisect
import json
import os
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

import numpy as np

import cv2

from hydranet_ros.tools.node_processes import (Listener, NODE_MODULE, PACKAGE_DIR,
                                               node_arguments, ros_environment, start, stop,
                                               wait_for)
from hydranet_ros.tools.sizes import DeprecatedWidthHeight, input_size, size_text

from .node_watch import (NodeWatch, count, source_revision, stamp_ns,
                         write_random_checkpoint)

SAMPLE = PACKAGE_DIR / 'assets' / 'samples' / 'kitti_000099.png'
NODE_NAME = 'hydranet_soak_node'
FRAME_ID = 'soak_camera_optical_frame'
RSS_PERIOD_S = 1.0
START_TIMEOUT_S = 300.0
SETTLE_TIMEOUT_S = 30.0
CLOSING_FRAMES = 5
CLOSING_PERIOD_S = 0.1
RSS_GROWTH_LIMIT_MB = 50.0
P99_GROWTH_LIMIT = 1.5
RSS_END_WINDOW_S = 30.0
BYTES_PER_MB = 1024.0 * 1024.0
MS_PER_NS = 1e-6
NS_PER_S = 10**9
OUTPUT_TOPICS = ('depth/image', 'segmentation/labels', 'depth/camera_info')
COUNTERS = ('frames_received', 'frames_processed', 'frames_dropped', 'frames_rejected',
            'frames_skipped_no_subscribers', 'frames_failed', 'frames_stale',
            'frames_lost_in_transport')
NOT_OUTCOMES = ('frames_received', 'frames_stale', 'frames_lost_in_transport')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--minutes', type=float, default=10.0,
                        help='measured minutes after the warm-up')
    parser.add_argument('--warmup-s', type=float, default=60.0,
                        help='seconds of camera input before measuring (allocator, caches)')
    parser.add_argument('--bin-s', type=float, default=60.0,
                        help='length of each reported period (a minute by default)')
    parser.add_argument('--rate', type=float, default=30.0, help='camera rate in Hz')
    parser.add_argument('--width', type=int, default=640, help='camera image width')
    parser.add_argument('--height', type=int, default=480, help='camera image height')
    parser.add_argument('--model', default='',
                        help='checkpoint (default: a random-weight HydraNet in a temp dir)')
    parser.add_argument('--backend', default='onnxruntime', choices=('torch', 'onnxruntime'),
                        help='inference backend of the node')
    parser.add_argument('--threads', type=int, default=1,
                        help='inference threads of the node (0: backend default)')
    parser.add_argument('--input-size', type=input_size, metavar='HxW',
                        help='network input HEIGHTxWIDTH (e.g. 240x320); default: the image '
                             'size')
    parser.add_argument('--inference-size', dest='input_size', action=DeprecatedWidthHeight,
                        help='deprecated: the network input as WIDTHxHEIGHT; use --input-size')
    parser.add_argument('--log-dir', default='', help='keep the node log here')
    parser.add_argument('--json-out', default='', help='also write the JSON to this file')
    return parser.parse_args(argv)


class Camera:
    """Publishes one picture at a fixed rate with fresh stamps, from a thread of its own."""

    def __init__(self, listener: Listener, rgb: np.ndarray, rate_hz: float) -> None:
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo

        from hydranet_ros.node.messages import array_to_image
        self.image_msg = array_to_image(rgb, 'rgb8')
        self.image_msg.header.frame_id = FRAME_ID
        height, width = rgb.shape[:2]
        focal = 0.5 * width / np.tan(np.radians(35.0))
        self.info_msg = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
        self.info_msg.header.frame_id = FRAME_ID
        self.info_msg.d = [0.0] * 5
        self.info_msg.k = [focal, 0.0, width / 2.0, 0.0, focal, height / 2.0, 0.0, 0.0, 1.0]
        self.info_msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        self.info_msg.p = [focal, 0.0, width / 2.0, 0.0, 0.0, focal, height / 2.0, 0.0,
                           0.0, 0.0, 1.0, 0.0]
        from sensor_msgs.msg import Image
        self.images = listener.node.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.infos = listener.node.create_publisher(CameraInfo, 'camera_info',
                                                    qos_profile_sensor_data)
        self.period_s = 1.0 / rate_hz
        self.stamps_ns: List[int] = []  # one per frame published
        self.late_ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='camera', daemon=True)

    def start(self) -> None:
        """Start publishing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def close(self, frames: int = CLOSING_FRAMES, period_s: float = CLOSING_PERIOD_S) -> None:
        """Publish a few last frames, slowly, once the stream has stopped.

        A best-effort frame lost at the very end leaves no gap in the sequence numbers the
        node sees; frames after it make the loss visible (and countable).
        """
        self.stop()
        for _ in range(frames):
            self._publish()
            time.sleep(period_s)

    @property
    def published(self) -> int:
        """Return how many frames were published."""
        return len(self.stamps_ns)

    def published_before(self, stamp_ns: Optional[int]) -> int:
        """Return how many frames were published before the one stamped ``stamp_ns``.

        Frames sent before the first one that reached the node (while the transport was still
        connecting) leave no gap the node could see, so the accounting starts there.
        """
        if stamp_ns is None:
            return 0
        return bisect.bisect_left(self.stamps_ns, stamp_ns)

    def _publish(self) -> None:
        now_ns = time.time_ns()
        self.stamps_ns.append(now_ns)
        for msg in (self.info_msg, self.image_msg):
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, NS_PER_S)
        self.infos.publish(self.info_msg)
        self.images.publish(self.image_msg)

    def _run(self) -> None:
        next_s = time.monotonic()
        while not self._stop.is_set():
            self._publish()
            next_s += self.period_s
            delay_s = next_s - time.monotonic()
            if delay_s < -self.period_s:  # fell behind (a busy machine): do not burst
                self.late_ticks += 1
                next_s = time.monotonic()
            elif delay_s > 0:
                self._stop.wait(delay_s)


class Recorder:
    """Latencies of depth outputs, and samples of the node's RSS, CPU time and the load."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first_stamp_ns: Optional[int] = None
        self.latencies: List[tuple] = []  # (arrival ns, latency ms)
        self.rss: List[tuple] = []  # (time ns, bytes)
        self.cpu: List[tuple] = []  # (time ns, CPU seconds of the node, 1-minute load)

    def on_output(self, topic: str, msg, arrival_ns: int) -> None:
        """Record the end-to-end latency of a depth image."""
        if topic == 'depth/image':
            with self.lock:
                if self.first_stamp_ns is None:
                    self.first_stamp_ns = stamp_ns(msg.header)
                self.latencies.append((arrival_ns, (arrival_ns - stamp_ns(msg.header))
                                       * MS_PER_NS))

    def sample_rss(self, process) -> None:
        """Record the node's resident memory now."""
        import psutil
        try:
            node = psutil.Process(process.pid)
            rss = node.memory_info().rss
            times = node.cpu_times()
        except psutil.Error:
            return
        now_ns = time.time_ns()
        with self.lock:
            self.rss.append((now_ns, rss))
            self.cpu.append((now_ns, times.user + times.system, os.getloadavg()[0]))


def _sample(width: int, height: int) -> np.ndarray:
    bgr = cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR)
    return cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)


def _percentile(values: List[float], q: float) -> Optional[float]:
    return float(np.percentile(values, q)) if values else None


def _settled(values: Dict[str, str], published: int) -> bool:
    """Return whether the node has seen (or counted as lost) and accounted every frame."""
    received = count(values, 'frames_received')
    return (received + count(values, 'frames_lost_in_transport') >= published
            and _accounted(values) == received)


def _accounted(values: Dict[str, str]) -> int:
    return sum(count(values, key) for key in COUNTERS if key not in NOT_OUTCOMES)


def _value(values: Dict[str, str], key: str) -> Optional[float]:
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def _periods(recorder: Recorder, snapshots: List[tuple], start_ns: int, bin_s: float,
             bins: int) -> List[Dict]:
    periods = []
    for index in range(bins):
        low = start_ns + int(index * bin_s * NS_PER_S)
        high = start_ns + int((index + 1) * bin_s * NS_PER_S)
        latencies = [ms for t, ms in recorder.latencies if low <= t < high]
        rss = [b for t, b in recorder.rss if low <= t < high]
        cpu = [(t, seconds, load) for t, seconds, load in recorder.cpu if low <= t < high]
        before = [values for t, values in snapshots if t <= low]
        after = [values for t, values in snapshots if t <= high]
        delta: Dict[str, object] = {}
        if before and after:
            delta = {key: count(after[-1], key) - count(before[-1], key)
                     for key in ('frames_received', 'frames_processed', 'frames_dropped')}
            delta['inference_ms_mean'] = _value(after[-1], 'inference_ms_mean')
            delta['overhead_ms_p99'] = _value(after[-1], 'overhead_ms_p99')
        if len(cpu) > 1:
            cpu_s = cpu[-1][1] - cpu[0][1]
            delta['node_cpu_percent'] = 100.0 * cpu_s / ((cpu[-1][0] - cpu[0][0]) / NS_PER_S)
            delta['node_cpu_ms_per_output'] = 1000.0 * cpu_s / len(latencies) \
                if latencies else None
            delta['load_average_1min'] = cpu[-1][2]
        periods.append({
            'period': index + 1, 'outputs': len(latencies),
            'latency_ms_p50': _percentile(latencies, 50),
            'latency_ms_p99': _percentile(latencies, 99),
            'latency_ms_max': max(latencies) if latencies else None,
            'rss_mb': rss[-1] / BYTES_PER_MB if rss else None, **delta})
    return periods


def _ratio(periods: List[Dict], key: str) -> Optional[float]:
    first, last = periods[0].get(key), periods[-1].get(key)
    return last / first if first and last else None


def _memory(recorder: Recorder, start_ns: int, end_ns: int) -> Dict:
    measured = [(t, b) for t, b in recorder.rss if start_ns <= t <= end_ns]
    if not measured:
        return {}
    baseline = measured[0][1]
    window_ns = int(RSS_END_WINDOW_S * NS_PER_S)
    end = [b for t, b in measured if t >= end_ns - window_ns]
    times_min = np.array([(t - start_ns) / NS_PER_S / 60.0 for t, _ in measured])
    values_mb = np.array([b / BYTES_PER_MB for _, b in measured])
    slope = float(np.polyfit(times_min, values_mb, 1)[0]) if len(measured) > 2 else 0.0
    return {'rss_mb_after_warmup': baseline / BYTES_PER_MB,
            'rss_mb_end': float(np.median(end)) / BYTES_PER_MB,
            'rss_mb_max': float(values_mb.max()),
            'rss_growth_mb': (float(np.median(end)) - baseline) / BYTES_PER_MB,
            'rss_max_growth_mb': float(values_mb.max()) - baseline / BYTES_PER_MB,
            'rss_trend_mb_per_min': slope}


def _node_parameters(args: argparse.Namespace, model: str) -> Dict[str, object]:
    parameters: Dict[str, object] = {'model_path': model, 'backend': args.backend,
                                     'device': 'cpu', 'threads': args.threads}
    if args.input_size:
        height, width = args.input_size
        parameters.update(inference_width=width, inference_height=height)
    return parameters


def run_soak(args: argparse.Namespace) -> Dict:
    """Run the camera, the node and the consumer; return the JSON-ready report."""
    started = time.monotonic()
    recorder = Recorder()
    bins = max(1, int(round(args.minutes * 60.0 / args.bin_s)))
    measure_s = bins * args.bin_s
    with tempfile.TemporaryDirectory(prefix='hydranet_soak_') as work_dir:
        log_dir = args.log_dir or work_dir
        os.makedirs(log_dir, exist_ok=True)
        env = ros_environment(os.path.join(log_dir, 'ros_log'), os.path.join(work_dir, 'cache'))
        model = args.model and os.path.abspath(args.model) or write_random_checkpoint(
            os.path.join(work_dir, 'random6.pth'), 6)
        log_path = os.path.join(log_dir, 'soak_node.log')
        node = start(NODE_MODULE, node_arguments(NODE_NAME, _node_parameters(args, model)),
                     env, log_path)
        listener = Listener('hydranet_soak')
        watch = NodeWatch(listener, OUTPUT_TOPICS, recorder.on_output)
        camera = Camera(listener, _sample(args.width, args.height), args.rate)
        snapshots: List[tuple] = []
        alive = False
        values: Dict[str, str] = {}
        try:
            wait_for(lambda: camera.images.get_subscription_count() > 0, START_TIMEOUT_S,
                     'the node to subscribe to the camera', [node])
            camera.start()
            wait_for(lambda: len(recorder.latencies) > 0, START_TIMEOUT_S,
                     'the first output of the node', [node])
            warmup_end = time.monotonic() + args.warmup_s
            while time.monotonic() < warmup_end and node.poll() is None:
                recorder.sample_rss(node)
                time.sleep(RSS_PERIOD_S)
            start_ns = time.time_ns()
            recorder.sample_rss(node)
            snapshots.append((start_ns, watch.latest(NODE_NAME)))
            measure_end = time.monotonic() + measure_s
            while time.monotonic() < measure_end and node.poll() is None:
                time.sleep(RSS_PERIOD_S)
                recorder.sample_rss(node)
                snapshots.append((time.time_ns(), watch.latest(NODE_NAME)))
            end_ns = time.time_ns()
            camera.close()
            watch.clear_diagnostics(NODE_NAME)
            before_delivery = camera.published_before(recorder.first_stamp_ns)
            published = camera.published - before_delivery
            values = watch.wait_for_diagnostics(
                NODE_NAME, lambda v: _settled(v, published), SETTLE_TIMEOUT_S) \
                or watch.latest(NODE_NAME)
            alive = node.poll() is None
        finally:
            camera.stop()
            exit_code = stop(node)
            listener.close()
        with open(log_path, errors='replace') as log:
            traceback = 'Traceback' in log.read()
    with recorder.lock:
        periods = _periods(recorder, snapshots, start_ns, args.bin_s, bins)
        memory = _memory(recorder, start_ns, end_ns)
        latencies = [ms for t, ms in recorder.latencies if start_ns <= t < end_ns]
    received = count(values, 'frames_received')
    counters = {key: count(values, key) for key in COUNTERS}
    lost = counters['frames_lost_in_transport']
    first_p99, last_p99 = periods[0]['latency_ms_p99'], periods[-1]['latency_ms_p99']
    p99_ratio = last_p99 / first_p99 if first_p99 and last_p99 else None
    result = {
        'camera': f'{size_text(args.height, args.width)} rgb8 at {args.rate:g} Hz',
        'minutes_measured': measure_s / 60.0, 'warmup_s': args.warmup_s, 'period_s': args.bin_s,
        'backend': values.get('backend', args.backend),
        'network_input': size_text(*(args.input_size or (args.height, args.width))),
        'frames_published': published, 'camera_late_ticks': camera.late_ticks,
        'frames_published_before_delivery': before_delivery,
        **counters,
        'transport_lost': published - received,
        'sent_equals_received_plus_lost': published == received + lost,
        'accounted': _accounted(values),
        'dropped_ratio': counters['frames_dropped'] / received if received else None,
        'outputs_measured': len(latencies),
        'latency_ms_p50': _percentile(latencies, 50),
        'latency_ms_p99': _percentile(latencies, 99),
        'latency_p99_last_over_first': p99_ratio,
        'cpu_ms_per_output_last_over_first': _ratio(periods, 'node_cpu_ms_per_output'),
        'inference_ms_last_over_first': _ratio(periods, 'inference_ms_mean'),
        **memory,
        'per_period': periods,
        'exit_code': exit_code, 'traceback_in_log': traceback,
        'seconds': time.monotonic() - started, 'load_average_1min': os.getloadavg()[0],
        'cpu_count': os.cpu_count(),
        'source_revision': source_revision(),
    }
    every_drop_counted = received > 0 and published == received + lost \
        and _accounted(values) == received and counters['frames_failed'] == 0
    result['targets'] = {
        'rss_growth_le_50mb': memory.get('rss_growth_mb', float('inf')) <= RSS_GROWTH_LIMIT_MB,
        'p99_last_within_1.5x_first': p99_ratio is not None and p99_ratio <= P99_GROWTH_LIMIT,
        'every_drop_counted': every_drop_counted,
        'no_crash': alive and exit_code == 0 and not traceback,
    }
    result['passed'] = all(result['targets'].values())
    return result


def main(argv: Optional[List[str]] = None) -> int:
    """Soak, print the JSON report; exit 0 when every target is met."""
    args = parse_args(argv)
    result = run_soak(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, 'w') as out:
            out.write(text + '\n')
    return 0 if result['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
