"""Fuzzing hydranet_node with malformed camera messages between good frames; prints JSON.

Two nodes run in processes of their own on a private ROS domain, one subscribed to raw images
and one to compressed images, with a small random-weight model. In rounds, this process sends
one node a burst of malformed messages (images and camera_info: unknown and mismatched
encodings, steps and data lengths that disagree with the size, zero and absurd sizes, odd
strides, big-endian flags, cut-off and garbled PNG/JPEG, zero and NaN intrinsics; see
``fuzz_cases``), then one good frame, and waits for the node's depth output carrying that
frame's stamp. At the end each node's diagnostics must account for every message: all were
received, each rejection kind counted exactly as sent, received = processed + dropped +
rejected, no failure; the nodes must still run and stop cleanly (exit code 0, no traceback).

Long form (about a minute on two busy cores)::

    python -m dev.reliability.fuzz --malformed 10000 --json-out fuzz.json

The exit code is 0 when nothing crashed, every good frame was answered and the accounting
holds.
"""
import argparse
import collections
import json
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Counter, Dict, List, Optional

import numpy as np

import cv2

from hydranet_ros.tools.node_processes import (Listener, NODE_MODULE, PACKAGE_DIR,
                                               node_arguments, ros_environment, start, stop,
                                               wait_for)

from .fuzz_cases import (COMPRESSED_MALFORMED, DECODER, RAW_MALFORMED, CaseDeck, FuzzImages,
                         good_camera_info, good_compressed, good_raw)
from .node_watch import (NodeWatch, count, source_revision, stamp_key,
                         write_random_checkpoint)

SAMPLE = PACKAGE_DIR / 'assets' / 'samples' / 'nyud_000464.png'
WIDTH, HEIGHT = 64, 48
MAX_INPUT_PIXELS = 640 * 480
QOS_DEPTH = 100
START_TIMEOUT_S = 180.0
FIRST_FRAME_TIMEOUT_S = 120.0
FRAME_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 30.0
GOOD_CAMERA_INFO_EVERY = 10
STAMP_BASE_S = 1_800_000_000
MS_PER_NS = 1e-6
REJECTED_LINE = re.compile(r'rejected a malformed (?:compressed )?image (?:on \S+ )?\((\w+);')
# Pause between the messages of a burst (0: as fast as rclpy publishes).
BURST_GAP_S = 0.0


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--malformed', type=int, default=10000,
                        help='malformed messages to send in all (both nodes together)')
    parser.add_argument('--per-good', type=int, default=25,
                        help='malformed messages in each burst before a good frame')
    parser.add_argument('--seed', type=int, default=0, help='random seed of the cases')
    parser.add_argument('--threads', type=int, default=1, help='inference threads of each node')
    parser.add_argument('--frame-timeout', type=float, default=FRAME_TIMEOUT_S,
                        help='seconds to wait for the output of a good frame')
    parser.add_argument('--log-dir', default='',
                        help='keep the node logs here (default: a temporary folder)')
    parser.add_argument('--json-out', default='', help='also write the JSON to this file')
    return parser.parse_args(argv)


@dataclass
class Target:
    """One node under fuzzing and what was sent to it."""

    kind: str
    node_name: str
    namespace: str
    deck: CaseDeck
    make_good: Callable
    process: object = None
    log_path: str = ''
    images: object = None
    infos: object = None
    sent_images: int = 0
    sent_malformed: int = 0
    good_sent: int = 0
    good_answered: int = 0
    unanswered: List[tuple] = field(default_factory=list)
    latencies_ms: List[float] = field(default_factory=list)
    expected: Counter = field(default_factory=collections.Counter)
    cases: Counter = field(default_factory=collections.Counter)

    @property
    def depth_topic(self) -> str:
        """The node's depth output."""
        return f'{self.namespace}/depth/image'

    @property
    def info_topic(self) -> str:
        """The node's camera_info output."""
        return f'{self.namespace}/depth/camera_info'


def _sample(width: int, height: int) -> np.ndarray:
    bgr = cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR)
    return cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)


class Stamps:
    """Distinct, increasing stamps for every message sent."""

    def __init__(self) -> None:
        self.index = 0

    def header(self, frame_id: str = 'fuzz_camera_optical_frame'):
        """Return a header with a stamp never used before."""
        from std_msgs.msg import Header
        self.index += 1
        header = Header(frame_id=frame_id)
        header.stamp.sec = STAMP_BASE_S + self.index // 1000
        header.stamp.nanosec = (self.index % 1000) * 1000_000
        return header


def _start_targets(targets: List[Target], model: str, threads: int, env: Dict[str, str],
                   log_dir: str) -> None:
    for target in targets:
        parameters = {'model_path': model, 'backend': 'torch', 'device': 'cpu',
                      'threads': threads, 'input_qos': 'reliable',
                      'input_qos_depth': QOS_DEPTH, 'max_input_pixels': MAX_INPUT_PIXELS,
                      'use_compressed_input': target.kind == 'compressed'}
        arguments = node_arguments(target.node_name, parameters) + [
            '-r', f'__ns:={target.namespace}']
        target.log_path = os.path.join(log_dir, f'{target.node_name}.log')
        target.process = start(NODE_MODULE, arguments, env, target.log_path)


def _log_text(target: Target) -> str:
    with open(target.log_path, errors='replace') as log:
        return log.read()


def _connect(targets: List[Target], listener: Listener) -> None:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    qos = QoSProfile(depth=QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
    processes = [t.process for t in targets]
    for target in targets:
        image_type, topic = ((CompressedImage, f'{target.namespace}/image/compressed')
                             if target.kind == 'compressed'
                             else (Image, f'{target.namespace}/image'))
        target.images = listener.node.create_publisher(image_type, topic, qos)
        target.infos = listener.node.create_publisher(
            CameraInfo, f'{target.namespace}/camera_info', qos)
    for target in targets:
        wait_for(lambda t=target: 'active:' in _log_text(t), START_TIMEOUT_S,
                 f'{target.node_name} to become active', processes)
        wait_for(lambda t=target: t.images.get_subscription_count() > 0
                 and t.infos.get_subscription_count() > 0, START_TIMEOUT_S,
                 f'{target.node_name} to subscribe', processes)
        wait_for(lambda t=target: listener.node.count_publishers(t.depth_topic) > 0,
                 START_TIMEOUT_S, f'{target.node_name} to publish depth', processes)


def _send_good(target: Target, images: FuzzImages, rng: np.random.Generator, stamps: Stamps,
               watch: NodeWatch, timeout_s: float) -> None:
    msg, _ = target.make_good(images, rng, stamps.header())
    sent_ns = time.time_ns()
    target.images.publish(msg)
    target.sent_images += 1
    target.good_sent += 1
    arrival_ns = watch.wait_for_stamp(target.depth_topic, stamp_key(msg.header), timeout_s)
    if arrival_ns is None:
        target.unanswered.append(stamp_key(msg.header))
        return
    target.good_answered += 1
    target.latencies_ms.append((arrival_ns - sent_ns) * MS_PER_NS)


def _send_burst(target: Target, images: FuzzImages, rng: np.random.Generator, stamps: Stamps,
                size: int) -> None:
    from sensor_msgs.msg import CameraInfo
    for _ in range(size):
        name, (msg, expected) = target.deck.draw(images, rng, stamps.header())
        if isinstance(msg, CameraInfo):
            target.infos.publish(msg)
        else:
            target.images.publish(msg)
            target.sent_images += 1
        target.sent_malformed += 1
        target.expected[expected] += 1
        target.cases[name] += 1
        if BURST_GAP_S:
            time.sleep(BURST_GAP_S)


def _accounted(values: Dict[str, str]) -> int:
    return sum(count(values, key) for key in (
        'frames_processed', 'frames_dropped', 'frames_rejected',
        'frames_skipped_no_subscribers', 'frames_failed'))


def _settled(target: Target, watch: NodeWatch) -> Optional[Dict[str, str]]:
    """Wait until the node counted every message it was sent; return its diagnostics."""
    def done(values: Dict[str, str]) -> bool:
        return count(values, 'frames_received') >= target.sent_images \
            and _accounted(values) >= count(values, 'frames_received')
    watch.clear_diagnostics(target.node_name)
    values = watch.wait_for_diagnostics(target.node_name, done, SETTLE_TIMEOUT_S)
    return values if values is not None else watch.latest(target.node_name)


def _checks(target: Target, values: Dict[str, str]) -> Dict[str, bool]:
    from hydranet_ros.node.input_checks import CAMERA_INFO, REJECTION_KINDS, UNDECODABLE
    received = count(values, 'frames_received')
    checks = {
        'every_message_received': received == target.sent_images,
        'received_equals_processed_dropped_rejected': _accounted(values) == received,
        'no_failed_frame': count(values, 'frames_failed') == 0,
        'camera_info_rejections_counted': count(values, 'camera_info_rejected')
        == target.expected[CAMERA_INFO],
        'every_good_frame_answered': target.good_answered == target.good_sent,
    }
    for kind in REJECTION_KINDS:
        counted = count(values, f'frames_rejected_{kind}')
        if kind == UNDECODABLE:  # plus the cut-off or garbled bodies the decoder refused
            ok = target.expected[kind] <= counted <= target.expected[kind] + target.expected[
                DECODER]
        else:
            ok = counted == target.expected[kind]
        checks[f'rejections_counted_{kind}'] = ok
    return checks


def _log_lines_by_kind(text: str) -> Dict[str, int]:
    lines = collections.Counter(REJECTED_LINE.findall(text))
    lines['camera_info'] = text.count('rejected camera_info')
    return dict(lines)


def _summary(target: Target, values: Dict[str, str], exit_code: Optional[int],
             log_text: str, alive_at_end: bool) -> Dict:
    keys = ('frames_received', 'frames_processed', 'frames_dropped', 'frames_rejected',
            'frames_failed', 'frames_skipped_no_subscribers', 'camera_info_rejected',
            'frames_lost_in_transport')
    diagnostics = {key: count(values, key) for key in keys}
    diagnostics.update({key: count(values, key) for key in values
                        if key.startswith('frames_rejected_')})
    checks = _checks(target, values)
    checks['alive_at_end'] = alive_at_end
    checks['clean_exit'] = exit_code == 0 and 'Traceback' not in log_text
    return {
        'node': target.node_name, 'input': target.kind,
        'images_sent': target.sent_images, 'malformed_sent': target.sent_malformed,
        'good_frames': target.good_sent, 'good_frames_answered': target.good_answered,
        'unanswered_stamps': target.unanswered[:20],
        'expected': dict(target.expected), 'cases': dict(target.cases),
        'diagnostics': diagnostics, 'log_lines_by_kind': _log_lines_by_kind(log_text),
        'exit_code': exit_code, 'checks': checks, 'passed': all(checks.values()),
    }


def run_fuzz(malformed: int, per_good: int = 25, seed: int = 0, threads: int = 1,
             frame_timeout_s: float = FRAME_TIMEOUT_S, log_dir: str = '') -> Dict:
    """Fuzz a raw-image node and a compressed-image node; return the JSON-ready report."""
    from hydranet_ros.node.input_checks import CAMERA_INFO
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    images = FuzzImages(_sample(WIDTH, HEIGHT), MAX_INPUT_PIXELS)
    stamps = Stamps()
    targets = [Target('raw', 'hydranet_fuzz_raw', '/fuzz_raw', CaseDeck(RAW_MALFORMED),
                      good_raw),
               Target('compressed', 'hydranet_fuzz_compressed', '/fuzz_compressed',
                      CaseDeck(COMPRESSED_MALFORMED), good_compressed)]
    invalid_infos: List[int] = [0, 0]

    def check_info(topic: str, msg, arrival_ns: int) -> None:
        if topic.endswith('camera_info'):
            invalid_infos[1] += 1
            if not (all(math.isfinite(v) for v in msg.k) and msg.k[0] > 0 and msg.k[4] > 0):
                invalid_infos[0] += 1

    with tempfile.TemporaryDirectory(prefix='hydranet_fuzz_') as work_dir:
        log_dir = log_dir or work_dir
        os.makedirs(log_dir, exist_ok=True)
        env = ros_environment(os.path.join(log_dir, 'ros_log'), os.path.join(work_dir, 'cache'))
        model = write_random_checkpoint(os.path.join(work_dir, 'random4.pth'), 4, seed)
        _start_targets(targets, model, threads, env, log_dir)
        listener = Listener('hydranet_fuzzer')
        exit_codes: List[Optional[int]] = []
        alive: List[bool] = []
        settled: List[Dict[str, str]] = []
        try:
            topics = [t for target in targets for t in (target.depth_topic, target.info_topic)]
            watch = NodeWatch(listener, topics, check_info)
            _connect(targets, listener)
            for target in targets:
                target.infos.publish(good_camera_info(images, stamps.header()))
                _send_good(target, images, rng, stamps, watch, FIRST_FRAME_TIMEOUT_S)
            rounds = math.ceil(malformed / per_good)
            for index in range(rounds):
                target = targets[index % len(targets)]
                if target.process.poll() is not None:
                    break
                burst = min(per_good, malformed - sum(t.sent_malformed for t in targets))
                _send_burst(target, images, rng, stamps, burst)
                if index % GOOD_CAMERA_INFO_EVERY == 0:
                    target.infos.publish(good_camera_info(images, stamps.header()))
                _send_good(target, images, rng, stamps, watch, frame_timeout_s)
            settled = [_settled(target, watch) for target in targets]
            alive = [target.process.poll() is None for target in targets]
        finally:
            for target in targets:
                exit_codes.append(stop(target.process))
            listener.close()
        nodes = {target.kind: _summary(target, values, code, _log_text(target), is_alive)
                 for target, values, code, is_alive
                 in zip(targets, settled or [{}] * 2, exit_codes, alive or [False] * 2)}
    latencies = [v for target in targets for v in target.latencies_ms]
    cases: Counter = collections.Counter()
    for target in targets:
        cases.update(target.cases)
    crashes = sum(1 for node in nodes.values()
                  if not node['checks']['alive_at_end'] or not node['checks']['clean_exit'])
    result = {
        'malformed_messages': sum(t.sent_malformed for t in targets),
        'malformed_camera_info': sum(t.expected[CAMERA_INFO] for t in targets),
        'good_frames': sum(t.good_sent for t in targets),
        'good_frames_answered': sum(t.good_answered for t in targets),
        'good_frames_unanswered': sum(len(t.unanswered) for t in targets),
        'crashes': crashes,
        'camera_info_outputs': invalid_infos[1],
        'camera_info_outputs_invalid': invalid_infos[0],
        'good_frame_latency_ms_p50': float(np.percentile(latencies, 50)) if latencies else None,
        'good_frame_latency_ms_p99': float(np.percentile(latencies, 99)) if latencies else None,
        'image': f'{HEIGHT}x{WIDTH}', 'per_good': per_good, 'seed': seed,
        'max_input_pixels': MAX_INPUT_PIXELS, 'cases': dict(sorted(cases.items())),
        'nodes': nodes, 'seconds': time.monotonic() - started,
        'load_average_1min': os.getloadavg()[0], 'cpu_count': os.cpu_count(),
        'source_revision': source_revision(),
    }
    result['passed'] = (crashes == 0 and result['good_frames_unanswered'] == 0
                        and result['camera_info_outputs_invalid'] == 0
                        and result['malformed_messages'] >= malformed
                        and all(node['passed'] for node in nodes.values()))
    return result


def main(argv: Optional[List[str]] = None) -> int:
    """Fuzz, print the JSON report; exit 0 when it passed."""
    args = parse_args(argv)
    result = run_fuzz(args.malformed, args.per_good, args.seed, args.threads,
                      args.frame_timeout, args.log_dir)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        with open(args.json_out, 'w') as out:
            out.write(text + '\n')
    return 0 if result['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
