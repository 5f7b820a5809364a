"""Benchmark: N cameras through one hydranet_node (batched) against N single-camera nodes.

For N in ``--cameras`` (default 1, 2, 4), the configurations take turns, ``--rounds`` times:

- ``one_node``: one node with ``cameras: [cam0, ..., camN-1]`` (``one_node_lanes<L>`` for each
  ``--lanes`` L other than 0: the same with ``inference_lanes: L``);
- ``separate``: N nodes, node i in namespace ``/n<i>`` reading ``/cam<i>/image``.

Each camera is a ``hydranet_demo_source`` process publishing the same picture at ``--rate`` Hz
(faster than the nodes can serve, so that the output rate is the capacity). This process
subscribes to every camera's ``depth/image`` and counts outputs for ``--seconds`` after each
camera's first output. Memory is the nodes' total resident set (RSS) and their proportional
set (PSS, shared pages split between the processes that share them), read at the end of the
window, and the CPU time each group of processes (nodes, cameras, this listener) spent in it,
in cores. Each configuration first runs once uncounted (``--warmup-seconds``: the first runs
on a machine are slower). One JSON line per run, then a summary with, for each N, the
aggregate output rate of every configuration over all its turns, and the rate and memory
ratios of each one-node configuration to ``separate``.

Example::

    python -m dev.bench.cameras --cameras 1 2 4 --rounds 2
"""
import argparse
import json
import os
import tempfile
import time
from typing import Dict, List, Optional

import psutil

from hydranet_ros.engine.memory import keep_large_buffers
from hydranet_ros.tools.node_processes import (DEMO_SOURCE_MODULE, Listener, NODE_MODULE,
                                               PACKAGE_DIR, node_arguments, ros_environment,
                                               start, stop, wait_for)

SAMPLE = PACKAGE_DIR / 'assets' / 'samples' / 'nyud_000464.png'
START_TIMEOUT_S = 300.0
MIB = 1024.0 * 1024.0


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cameras', type=int, nargs='+', default=[1, 2, 4],
                        help='numbers of cameras to measure (default: 1 2 4)')
    parser.add_argument('--rounds', type=int, default=2, help='turns of each configuration')
    parser.add_argument('--seconds', type=float, default=10.0, help='measurement window')
    parser.add_argument('--rate', type=float, default=30.0, help='rate of each camera in Hz')
    parser.add_argument('--model', default='', help='checkpoint (default: the bundled model)')
    parser.add_argument('--device', default='cpu', help='device of the nodes (cpu, cuda)')
    parser.add_argument('--threads', type=int, default=0,
                        help='inference threads of each node (0: backend default)')
    parser.add_argument('--image', default=str(SAMPLE), help='picture every camera publishes')
    parser.add_argument('--pipeline', default='auto', choices=('auto', 'always', 'never'),
                        help="the nodes' pipeline parameter")
    parser.add_argument('--lanes', type=int, nargs='+', default=[0],
                        help='inference_lanes of the one node, one configuration each '
                             '(default: 0, automatic)')
    parser.add_argument('--warmup-seconds', type=float, default=3.0,
                        help='an uncounted first run of each configuration (0: none)')
    return parser.parse_args(argv)


class Run:
    """The processes of one configuration and the outputs counted for it."""

    def __init__(self, args: argparse.Namespace, configuration: str, cameras: int,
                 env: Dict[str, str], log_dir: str, listener: Listener) -> None:
        self.configuration, self.cameras = configuration, cameras
        self.log_paths: List[str] = []

        def launch(module: str, arguments: List[str], name: str):
            self.log_paths.append(f'{log_dir}/{name}.log')
            return start(module, arguments, env, self.log_paths[-1])
        self.sources = [launch(DEMO_SOURCE_MODULE, [
            '--ros-args', '-r', f'__node:=camera{i}', '-r', f'__ns:=/cam{i}',
            '-p', f'rate_hz:={args.rate}', '-p', f'images:=[{os.path.abspath(args.image)}]',
            '-p', f'frame_id:=cam{i}_optical_frame'], f'camera{i}')
            for i in range(cameras)]
        parameters = {'device': args.device, 'threads': args.threads, 'pipeline': args.pipeline}
        if args.model:
            parameters['model_path'] = os.path.abspath(args.model)
        if configuration.startswith('one_node'):
            names = ', '.join(f'cam{i}' for i in range(cameras))
            lanes = int(configuration[len('one_node_lanes'):] or 0) \
                if configuration != 'one_node' else 0
            self.nodes = [launch(NODE_MODULE, node_arguments(
                'hydranet_cameras', {**parameters, 'cameras': f'[{names}]',
                                     'inference_lanes': lanes}), 'node')]
            self.topics = [f'/cam{i}/depth/image' for i in range(cameras)]
        else:
            self.nodes = [launch(NODE_MODULE, node_arguments(f'hydranet_{i}', parameters) + [
                '-r', f'__ns:=/n{i}', '-r', f'image:=/cam{i}/image',
                '-r', f'camera_info:=/cam{i}/camera_info'], f'node{i}')
                for i in range(cameras)]
            self.topics = [f'/n{i}/depth/image' for i in range(cameras)]
        self.listener = listener
        self.counts = {topic: 0 for topic in self.topics}
        self.counting = False
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        reliable = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.subscriptions = [listener.node.create_subscription(
            Image, topic, lambda _data, topic=topic: self._count(topic), reliable, raw=True)
            for topic in self.topics]

    def _count(self, topic: str) -> None:
        with self.listener.lock:
            self.counts[topic] += 1

    def measure(self, seconds: float) -> Dict[str, object]:
        """Wait for every camera's first output, then count outputs over ``seconds``."""
        processes = self.sources + self.nodes
        try:
            wait_for(lambda: all(self._counted(t) > 0 for t in self.topics), START_TIMEOUT_S,
                     'the first output of every camera', processes)
        except (RuntimeError, TimeoutError) as error:
            tails = '\n'.join(f'--- {path}:\n' + open(path).read()[-1500:]
                              for path in self.log_paths)
            raise RuntimeError(f'{error}\n{tails}') from error
        with self.listener.lock:
            before = dict(self.counts)
        cpu_before = self._cpu_seconds()
        started = time.monotonic()
        time.sleep(seconds)
        with self.listener.lock:
            after = dict(self.counts)
        elapsed = time.monotonic() - started
        cpu = {group: (spent - cpu_before[group]) / elapsed
               for group, spent in self._cpu_seconds().items()}
        rss = pss = 0
        for node in self.nodes:
            info = psutil.Process(node.pid).memory_full_info()
            rss += info.rss
            pss += getattr(info, 'pss', info.rss)
        per_camera = [(after[t] - before[t]) / elapsed for t in self.topics]
        return {'configuration': self.configuration, 'cameras': self.cameras,
                'nodes': len(self.nodes), 'seconds': round(elapsed, 2),
                'aggregate_fps': round(sum(per_camera), 2),
                'fps_by_camera': [round(v, 2) for v in per_camera],
                'rss_mib': round(rss / MIB, 1), 'pss_mib': round(pss / MIB, 1),
                'cpu_cores': {group: round(cores, 2) for group, cores in cpu.items()},
                'load_avg_1m': round(os.getloadavg()[0], 2)}

    def _cpu_seconds(self) -> Dict[str, float]:
        """Return the CPU time (user + system) of the nodes, the cameras and this process."""
        def spent(processes) -> float:
            return sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in processes)
        return {'nodes': spent(self.nodes), 'cameras': spent(self.sources),
                'listener': sum(psutil.Process().cpu_times()[:2])}

    def _counted(self, topic: str) -> int:
        with self.listener.lock:
            return self.counts[topic]

    def close(self) -> List[Optional[int]]:
        """Stop every process; return the nodes' exit codes."""
        for subscription in self.subscriptions:
            self.listener.node.destroy_subscription(subscription)
        codes = [stop(node) for node in self.nodes]
        for source in self.sources:
            stop(source)
        return codes


def configurations(lanes: List[int]) -> List[str]:
    """Return the configurations to run: each one-node variant, then ``separate``."""
    return [f'one_node_lanes{count}' if count else 'one_node' for count in lanes] + ['separate']


def summary(results: List[Dict[str, object]]) -> Dict[str, object]:
    """Return, per number of cameras, every configuration's totals and its ratios to separate."""
    by_cameras: Dict[str, object] = {}
    names = list(dict.fromkeys(r['configuration'] for r in results))
    for cameras in sorted({r['cameras'] for r in results}):
        totals = {}
        for configuration in names:
            runs = [r for r in results
                    if r['cameras'] == cameras and r['configuration'] == configuration]
            frames = sum(r['aggregate_fps'] * r['seconds'] for r in runs)
            seconds = sum(r['seconds'] for r in runs)
            totals[configuration] = {
                'aggregate_fps': round(frames / seconds, 2),
                'aggregate_fps_by_round': [r['aggregate_fps'] for r in runs],
                'rss_mib': max(r['rss_mib'] for r in runs),
                'pss_mib': max(r['pss_mib'] for r in runs)}
        separate = totals['separate']
        for configuration in names:
            if configuration == 'separate':
                continue
            one = totals[configuration]
            suffix = configuration[len('one_node'):]
            totals[f'rate_ratio{suffix}'] = round(
                one['aggregate_fps'] / separate['aggregate_fps'], 3)
            totals[f'rss_ratio{suffix}'] = round(one['rss_mib'] / separate['rss_mib'], 3)
            totals[f'pss_ratio{suffix}'] = round(one['pss_mib'] / separate['pss_mib'], 3)
        by_cameras[str(cameras)] = totals
    return {'summary': by_cameras}


def run_once(args: argparse.Namespace, configuration: str, cameras: int, seconds: float,
             env: Dict[str, str], log_dir: str, listener: Listener) -> Dict[str, object]:
    """Start one configuration, measure it for ``seconds`` and stop it."""
    run = Run(args, configuration, cameras, env, log_dir, listener)
    try:
        result = run.measure(seconds)
    finally:
        result_codes = run.close()
    result['exit_codes'] = result_codes
    return result


def main(argv: Optional[List[str]] = None) -> int:
    """Run every configuration in turns; print JSON lines and the summary."""
    args = parse_args(argv)
    keep_large_buffers()  # the listener reuses heap for image-sized messages, as the nodes do
    with tempfile.TemporaryDirectory(prefix='hydranet_cameras_') as work:
        env = ros_environment(os.path.join(work, 'log'), os.path.join(work, 'cache'))
        listener = Listener('hydranet_cameras_bench')
        results = []
        names = configurations(args.lanes)
        try:
            for cameras in args.cameras:
                if args.warmup_seconds > 0:  # the first runs of a machine are slower
                    for configuration in names:
                        result = run_once(args, configuration, cameras, args.warmup_seconds,
                                          env, os.path.join(work, f'warmup_{configuration}'),
                                          listener)
                        result['warmup'] = True
                        print(json.dumps(result), flush=True)
                for round_index in range(args.rounds):
                    order = names if round_index % 2 == 0 else names[::-1]
                    for configuration in order:
                        log_dir = os.path.join(work, f'{configuration}_{cameras}_{round_index}')
                        result = run_once(args, configuration, cameras, args.seconds, env,
                                          log_dir, listener)
                        results.append(result)
                        print(json.dumps(result), flush=True)
        finally:
            listener.context.try_shutdown()
        print(json.dumps(summary(results)), flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
