"""hydranet-fleet: hydranet-bag over every bag of a fleet's recordings, on a Ray cluster.

    hydranet-fleet recordings/ --out-dir processed/ --workers 8
    hydranet-fleet /data/fleet --out-dir /data/processed --address auto --device cuda

Every rosbag2 (sqlite3 or MCAP) found in the inputs goes through hydranet-bag's conversion
(the same options) into ``DIR/<input bag name>``. The work runs on Ray: a local cluster of
``--workers`` processes by default, an existing one with ``--address``. Each worker is a Ray
actor that loads the model once and converts time shards of the bags (about
``--shard-frames`` frames each), so that one long bag is spread over every worker; the shards
of a bag are joined in order. On a cluster of several machines the inputs and ``--out-dir``
must be on storage every machine sees at the same path (NFS, a shared volume), and this
package must be installed on each. A bag whose output is complete is skipped on the next run
(``fleet_bags``: the output is moved into place in one rename, then marked complete); a bag
that cannot be read is reported by name with the reason while the others are written; the
exit code is then 1. One progress bar counts the frames of all bags; the last line printed is
a JSON summary (bags, frames, seconds, frames/s, failures), also written by ``--summary``.
"""
import argparse
import json
import logging
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from tqdm import tqdm

from .bag import DEFAULT_NAMESPACE, STORAGES
from .bag_reading import BagDamaged
from .depth_options import add_depth_arguments
from .engine_options import add_engine_arguments, engine_from_args, engine_line, EXIT_OK, \
    EXIT_SOME_FAILED, positive_int, resolve_model_path, ToolError
from .errors import add_debug_argument, one_line, tool_main
from .fleet_bags import BagPlan, completed, DEFAULT_SHARD_FRAMES, find_bags, forget, \
    input_identity, InputBag, join_parts, options_fingerprint, output_storage, plan_bag, \
    publish
from .image_io import add_pixel_limit_arguments

PROG = 'hydranet-fleet'
RAY_VERSION = '2.60.0'
INSTALL_HINT = (f'hydranet-fleet runs on Ray, which is not installed: pip install '
                f'"hydranet_ros[fleet]" (or pip install ray=={RAY_VERSION}) in this '
                f'environment and on every machine of the cluster')
POLL_S = 0.2
LOGGER = logging.getLogger(PROG)


def positive_float(text: str) -> float:
    """Parse a number > 0 for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number > 0, got {text!r}') from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'expected a number > 0, got {value}')
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser: hydranet-bag's conversion options plus the fleet's."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Run hydranet-bag on every rosbag2 (sqlite3 or MCAP) in the inputs, on a '
                    'Ray cluster, writing DIR/<input bag name> for each.',
        epilog='exit status: 0 done, 1 some bags or frames failed (each listed, the others '
               'written), 2 usage error or no usable input')
    parser.add_argument('inputs', nargs='+', metavar='INPUT',
                        help='bag folders, .db3/.mcap files, or folders searched for them')
    parser.add_argument('--out-dir', required=True, metavar='DIR',
                        help='folder of the new bags, one per input bag, named as it')
    fleet = parser.add_argument_group('the cluster')
    fleet.add_argument('--workers', type=positive_int, metavar='N',
                       help='worker processes, each loading the model once (default: one per '
                            '--cpus-per-worker CPUs of the cluster, local or not; with --device '
                            'cuda one per --gpus-per-worker GPUs)')
    fleet.add_argument('--address', metavar='ADDRESS',
                       help="an existing Ray cluster ('auto', or HOST:PORT of its head); "
                            'default: start a local one for this run')
    fleet.add_argument('--cpus-per-worker', type=positive_float, metavar='C',
                       help='CPUs each worker asks Ray for, and its inference threads unless '
                            '--threads is given (default: the local CPUs shared among the '
                            'workers; 1 on a cluster)')
    fleet.add_argument('--gpus-per-worker', type=positive_float, default=1.0, metavar='G',
                       help='GPUs each worker asks Ray for with --device cuda (below 1 puts '
                            'several workers on one GPU; default: %(default)s)')
    fleet.add_argument('--shard-frames', type=positive_int, default=DEFAULT_SHARD_FRAMES,
                       metavar='N', help='frames per time shard of a long bag '
                                         '(default: %(default)s)')
    fleet.add_argument('--summary', metavar='PATH', help='also write the JSON summary here')
    bag = parser.add_argument_group("hydranet-bag's conversion")
    bag.add_argument('--topic', metavar='TOPIC',
                     help='image topic of every bag (default: the only one in each bag)')
    bag.add_argument('--camera-info-topic', metavar='TOPIC',
                     help='camera_info topic (default: the one beside the image topic)')
    bag.add_argument('--namespace', default=DEFAULT_NAMESPACE, metavar='NS',
                     help='prefix of the output topics (default: %(default)s)')
    bag.add_argument('--storage', choices=sorted(STORAGES),
                     help='storage of the new bags (default: the same as each input)')
    bag.add_argument('--outputs-only', action='store_true',
                     help='write only the output topics, not the recorded ones')
    bag.add_argument('--confidence', action='store_true',
                     help='also write segmentation/confidence')
    bag.add_argument('--every', type=positive_int, default=1, metavar='N',
                     help='process every N-th image of each bag (default: %(default)s)')
    bag.add_argument('--max-frames', type=positive_int, metavar='N',
                     help='stop each bag after N processed frames')
    bag.add_argument('--start', type=float, default=0.0, metavar='SECONDS',
                     help='skip the first SECONDS of each bag (default: %(default)s)')
    bag.add_argument('--end', type=float, metavar='SECONDS',
                     help="stop SECONDS after each bag's start (default: its end)")
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='print only errors and the summary (no progress bar)')
    add_engine_arguments(parser)
    add_depth_arguments(parser, with_focal=False)
    add_pixel_limit_arguments(parser, shrinks=False)
    add_debug_argument(parser)
    return parser


def import_ray() -> Any:
    """Return the ray module, or raise ``ToolError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ToolError(INSTALL_HINT) from None
    return ray


class FleetRun:
    """One run: the Ray actors, the bags' plans and shards, the progress and the results."""

    def __init__(self, ray: Any, args: argparse.Namespace, bags: Sequence[InputBag]) -> None:
        self.ray = ray
        self.args = args
        self.bags = list(bags)
        self.results: Dict[str, Dict] = {}
        self.plans: Dict[str, BagPlan] = {}
        self.shard_results: Dict[str, List[Dict]] = {}

    def start(self) -> int:
        """Start or join the cluster and the workers; return the number of workers.

        Workers that the cluster cannot hold are refused here: Ray would wait for them forever.
        """
        ray, args = self.ray, self.args
        if args.address:
            try:
                ray.init(address=args.address, logging_level=logging.ERROR,
                         log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise ToolError(f'cannot join the Ray cluster at {args.address}: '
                                f'{one_line(str(error))}; start one with `ray start --head` '
                                f'(and `ray start --address=HEAD:6379` on the other machines), '
                                f'or leave --address out for a local one') from None
        else:
            ray.init(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get('CPU', 1)), float(resources.get('GPU', 0))
        on_gpu = str(args.device).startswith('cuda')
        if on_gpu and gpus < args.gpus_per_worker:
            raise ToolError(f'--device {args.device} asks each worker for '
                            f'{args.gpus_per_worker:g} GPU(s), but the Ray cluster has '
                            f'{gpus:g}; use --device cpu, or a cluster with GPUs')
        per_worker = args.cpus_per_worker or 1.0
        if on_gpu:
            workers = args.workers or max(1, int(gpus // args.gpus_per_worker))
        else:
            workers = args.workers or max(1, int(cpus // per_worker))
        if not args.address and not args.cpus_per_worker:
            per_worker = max(1.0, float(int(cpus) // workers))  # the local CPUs shared out
        options: Dict[str, Any] = {'num_cpus': per_worker if args.address
                                   else min(per_worker, cpus / workers)}
        if on_gpu:
            options['num_gpus'] = args.gpus_per_worker
        wanted = {'CPU': workers * options['num_cpus'],
                  'GPU': workers * options.get('num_gpus', 0.0)}
        short = [f'{wanted[k]:g} {k} (the cluster has {have:g})'
                 for k, have in (('CPU', cpus), ('GPU', gpus)) if wanted[k] > have + 1e-9]
        if short:
            raise ToolError(f'{workers} worker(s) need {" and ".join(short)}; ask for fewer '
                            f'--workers or less --cpus-per-worker / --gpus-per-worker')
        worker_args = argparse.Namespace(**vars(args))
        if worker_args.threads is None:
            worker_args.threads = max(1, int(per_worker))
        worker_class = ray.remote(FleetWorker).options(**options)
        self.progress = ray.remote(FrameCounter).options(num_cpus=0).remote()
        self.workers = [worker_class.remote(worker_args, self.progress)
                        for _ in range(workers)]
        try:
            self.describe = ray.get(self.workers[0].describe.remote())
        except ray.exceptions.RayError as error:
            raise ToolError(f'the workers could not load the model: {one_line(str(error))}') \
                from None
        return workers

    def run(self, bar: tqdm) -> None:
        """Plan, convert and join every bag; fill ``results``.

        The workers plan the bags (reading their image times) and convert the shards, one job
        at a time each, through Ray's actor pool; this process joins a bag's parts as soon as
        its last shard is done, so that finished bags are complete even if the run stops.
        """
        from ray.util import ActorPool
        ray, args = self.ray, self.args
        pool = ActorPool(self.workers)
        out_dir = os.path.abspath(args.out_dir)
        for bag in self.bags:
            pool.submit(lambda worker, job: worker.plan.remote(*job),
                        (bag, out_dir, args.shard_frames))
        remaining: Dict[str, int] = {}
        shown = -1
        while pool.has_next():
            try:
                result = pool.get_next_unordered(timeout=POLL_S)
            except TimeoutError:
                result = None
            if isinstance(result, BagPlan):
                self.start_bag(pool, result, remaining, bar)
            elif result is not None and 'shard' not in result:
                self.results[result['bag']] = result  # planning failed
            elif result is not None:
                name = result['bag']
                self.shard_results[name].append(result)
                remaining[name] -= 1
                if not remaining[name]:
                    self.results[name] = finish_bag(
                        self.plans[name], self.shard_results[name], out_dir,
                        output_storage(args, self.plans[name].bag), options_fingerprint(args))
            count = ray.get(self.progress.value.remote())
            if count != shown:
                bar.n = shown = count
                bar.refresh()

    def start_bag(self, pool: Any, plan: BagPlan, remaining: Dict[str, int],
                  bar: tqdm) -> None:
        """Queue the shards of a planned bag and add its frames to the progress bar."""
        name = plan.bag.name
        self.plans[name] = plan
        remaining[name] = len(plan.shards)
        self.shard_results[name] = []
        bar.total = (bar.total or 0) + plan.frames
        bar.refresh()
        storage = output_storage(self.args, plan.bag)
        for shard in plan.shards:
            pool.submit(lambda worker, job: worker.convert.remote(*job),
                        (shard, plan.image_topic, plan.info_topic, storage))

    def stop(self) -> None:
        """Disconnect from the cluster (a local one ends)."""
        self.ray.shutdown()


class FrameCounter:
    """A Ray actor the workers tell of each frame done, for the one progress bar."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, frames: int = 1) -> None:
        """Count finished frames."""
        self.count += frames

    def value(self) -> int:
        """Return the frames finished so far."""
        return self.count


class FleetWorker:
    """A Ray actor: the model loaded once, then one shard after another."""

    def __init__(self, args: argparse.Namespace, progress: Any) -> None:
        logging.basicConfig(level=logging.WARNING, format=f'{PROG}: %(message)s')
        self.args = args
        self.progress = progress
        self.engine = engine_from_args(args)

    def describe(self) -> str:
        """Return how the model runs in this worker."""
        return engine_line(self.engine)

    def plan(self, bag: InputBag, out_dir: str, shard_frames: int):
        """Plan one bag: its ``BagPlan``, or a failed result (dict), never raised."""
        try:
            forget(out_dir, bag.name)
            return plan_bag(bag, self.args, out_dir, shard_frames)
        except (ToolError, BagDamaged) as error:
            return failed(bag, str(error))
        except Exception as error:  # noqa: B902 - an unreadable bag must not end the run
            return failed(bag, f'{type(error).__name__}: {one_line(str(error))}')

    def convert(self, shard, image_topic: str, info_topic: Optional[str],
                storage: str) -> Dict:
        """Convert one shard; errors come back as the result (``error``), never raised."""
        from .fleet_shard import convert_shard

        def frame_done() -> None:
            self.progress.add.remote(1)
        try:
            return convert_shard(shard, image_topic, info_topic, storage, self.args,
                                 self.engine, frame_done)
        except Exception as error:  # noqa: B902 - a bag's failure must not end the worker
            return {'bag': shard.name, 'shard': shard.index, 'frames': 0, 'failed': [],
                    'error': f'{type(error).__name__}: {one_line(str(error))}'}


def finish_bag(plan: BagPlan, shards: List[Dict], out_dir: str, storage: str,
               fingerprint: str) -> Dict:
    """Join a bag's parts, move it into place and mark it complete; return its result."""
    shards = sorted(shards, key=lambda r: r['shard'])
    errors = [r.get('error') or r.get('damaged') for r in shards
              if r.get('error') or r.get('damaged')]
    if errors:
        forget(out_dir, plan.bag.name)
        return failed(plan.bag, errors[0])
    try:
        join_parts(plan, out_dir, storage)
        frame_failures = [f for r in shards for f in r['failed']]
        content = {'input': input_identity(plan.bag.path), 'options': fingerprint,
                   'frames': sum(r['frames'] for r in shards),
                   'failed_frames': len(frame_failures), 'shards': len(shards)}
        output = publish(out_dir, plan, content)
    except Exception as error:  # noqa: B902 - a failed join fails this bag only
        forget(out_dir, plan.bag.name)
        return failed(plan.bag, f'joining the shards failed: {type(error).__name__}: '
                                f'{one_line(str(error))}')
    notes = sorted({note for r in shards for note in r.get('notes', [])})
    return {'bag': plan.bag.name, 'input': plan.bag.path, 'output': output,
            'status': 'written', 'image_topic': plan.image_topic,
            'frames': content['frames'], 'failed_frames': frame_failures,
            'shards': len(shards), 'worker_seconds': round(sum(r['seconds'] for r in shards), 3),
            'notes': notes}


def failed(bag: InputBag, reason: str) -> Dict:
    """Return the result of a bag that could not be converted."""
    return {'bag': bag.name, 'input': bag.path, 'status': 'failed', 'error': reason,
            'frames': 0, 'failed_frames': []}


def summary(results: Sequence[Dict], seconds: float, startup_s: float, workers: int,
            address: Optional[str]) -> Dict:
    """Return the run's JSON summary.

    ``seconds`` is the whole run, ``startup_seconds`` the part before the first job (cluster,
    workers, models); ``converting_frames_per_s`` counts the time after it.
    """
    frames = sum(r['frames'] for r in results if r['status'] == 'written')
    failures = [{'bag': r['bag'], 'input': r['input'], 'error': r['error']}
                for r in results if r['status'] == 'failed']
    failures += [{'bag': r['bag'], 'input': r['input'], 'frame': f['frame'],
                  'error': f['error']} for r in results for f in r.get('failed_frames', [])]
    return {'bags': len(results),
            'written': sum(r['status'] == 'written' for r in results),
            'skipped_complete': sum(r['status'] == 'complete' for r in results),
            'failed': sum(r['status'] == 'failed' for r in results),
            'frames': frames, 'seconds': round(seconds, 3),
            'frames_per_s': round(frames / seconds, 3) if seconds > 0 else None,
            'startup_seconds': round(startup_s, 3),
            'converting_frames_per_s': round(frames / (seconds - startup_s), 3)
            if seconds > startup_s else None,
            'workers': workers, 'cluster': address or 'local', 'failures': failures,
            'per_bag': list(results)}


def run(args: argparse.Namespace) -> int:
    """Convert every bag not yet complete; print and return the outcome."""
    if args.end is not None and args.end <= args.start:
        raise ToolError(f'--start must be below --end; got {args.start} and {args.end}')
    ray = import_ray()
    resolve_model_path(args.model)  # a missing model is reported before any worker starts
    out_dir = os.path.abspath(args.out_dir)
    bags = find_bags(args.inputs, exclude=out_dir)
    fingerprint = options_fingerprint(args)
    results: Dict[str, Dict] = {}
    todo = []
    for bag in bags:
        marker = completed(out_dir, bag, fingerprint)
        if marker is None:
            todo.append(bag)
        else:
            results[bag.name] = {'bag': bag.name, 'input': bag.path, 'status': 'complete',
                                 'output': marker['output'], 'frames': 0,
                                 'failed_frames': []}
    if not args.quiet:
        print(f'{len(bags)} bag(s) found, {len(bags) - len(todo)} already complete in '
              f'{out_dir}', file=sys.stderr)
    started = time.perf_counter()
    startup_s = 0.0
    workers = 0
    if todo:
        os.makedirs(out_dir, exist_ok=True)
        fleet = FleetRun(ray, args, todo)
        try:
            workers = fleet.start()
            startup_s = time.perf_counter() - started
            if not args.quiet:
                where = f'the Ray cluster at {args.address}' if args.address else \
                    'a local Ray cluster'
                print(f'{workers} worker(s) on {where}; model {args.model or "bundled default"}:'
                      f' {fleet.describe}', file=sys.stderr)
            with tqdm(total=0, desc=PROG, unit='frame', disable=args.quiet,
                      file=sys.stderr) as bar:
                fleet.run(bar)
        finally:
            fleet.stop()
        results.update(fleet.results)
    ordered = [results[bag.name] for bag in bags]
    report = summary(ordered, time.perf_counter() - started, startup_s, workers, args.address)
    for result in ordered:
        if result['status'] == 'failed':
            print(f'{PROG}: {result["bag"]}: failed: {result["error"]}', file=sys.stderr)
        elif result['failed_frames']:
            print(f'{PROG}: {result["bag"]}: {len(result["failed_frames"])} frame(s) failed '
                  f'and were skipped (listed in the summary)', file=sys.stderr)
    if args.summary:
        os.makedirs(os.path.dirname(os.path.abspath(args.summary)), exist_ok=True)
        with open(args.summary, 'w', encoding='utf-8') as stream:
            json.dump(report, stream, indent=2)
    print(json.dumps({key: value for key, value in report.items() if key != 'per_bag'}))
    return EXIT_SOME_FAILED if report['failures'] else EXIT_OK


@tool_main(PROG)
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``hydranet-fleet``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format=f'{PROG}: %(message)s')
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
