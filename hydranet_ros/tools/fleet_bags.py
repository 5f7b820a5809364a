"""hydranet-fleet without Ray: finding bags, cutting them into time shards, joining, markers.

A fleet's output folder ``DIR`` holds one bag per input bag, ``DIR/<input bag name>``, and a
work folder ``DIR/.hydranet-fleet``: the shards being written (``work/<name>/``) and one
completion marker per finished bag (``done/<name>.json``). A bag counts as done only when
its marker exists, names the same input (path, size, modification time) and options, and
its output folder exists. The output is first written in the work folder and moved into
place in one rename; the marker is written after that, atomically (a temporary file renamed),
so a run stopped at any point leaves no half-written bag that counts as done: the next run
writes it again.

A bag is cut into shards of about ``shard_frames`` frames, each a window of record time that
starts at an image's record time (so that every message before an image's record time belongs
to the shards before it): each shard is converted on its own (``fleet_shard``) and the parts
are joined in order, the class map kept only where hydranet-bag writes it (the first frame,
and again when the frame id changes).
"""
import argparse
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from rosbags.rosbag2 import Reader, Writer

from .bag import BAG_FORMAT_VERSION, output_topics, STORAGES, storage_of, time_window
from .bag_label_info import LABEL_INFO_TYPE
from .bag_reading import messages, open_bag
from .bag_topics import BagTopicError, camera_info_topic, choose_image_topic, summarize_topics
from .errors import file_problem, ToolError

WORK_FOLDER = '.hydranet-fleet'
BAG_FILE_SUFFIXES = ('.db3', '.mcap')
METADATA_FILE = 'metadata.yaml'
DEFAULT_SHARD_FRAMES = 200
MARKER_VERSION = 1
# Options that change what a bag's output holds (a marker written with others is not taken).
CONVERSION_OPTIONS = (
    'topic', 'camera_info_topic', 'namespace', 'storage', 'outputs_only', 'confidence', 'every',
    'max_frames', 'start', 'end', 'model', 'preset', 'device', 'backend', 'precision',
    'input_size', 'alpha', 'invalid_depth_classes', 'min_confidence', 'depth_scale',
    'max_input_pixels')


@dataclass(frozen=True)
class InputBag:
    """A bag found in the inputs, and the name of its output."""

    path: str
    name: str


@dataclass(frozen=True)
class Shard:
    """A window of one bag's record time, converted on its own into ``part_path``.

    Images are counted from the start of the bag's time window; ``first_image`` is the count of
    the first image in this window, and images after ``last_image`` are not processed (the end
    set by ``--max-frames``).
    """

    bag: str
    name: str
    index: int
    start_ns: int
    stop_ns: int
    first_image: int
    last_image: Optional[int]
    frames: int
    part_path: str


@dataclass
class BagPlan:
    """How one bag is converted: its topics, its shards and where its output goes."""

    bag: InputBag
    image_topic: str
    info_topic: Optional[str]
    frames: int
    shards: List[Shard] = field(default_factory=list)


def is_bag_folder(path: str) -> bool:
    """Whether a folder is a rosbag2 (metadata.yaml, or a storage file directly inside)."""
    if not os.path.isdir(path):
        return False
    names = os.listdir(path)
    return METADATA_FILE in names or (
        any(n.endswith(BAG_FILE_SUFFIXES) for n in names)
        and not any(os.path.isdir(os.path.join(path, n)) for n in names))


def bag_name(path: str) -> str:
    """Return the output name of a bag: its folder's name, or its file's name without suffix."""
    base = os.path.basename(os.path.normpath(path))
    return base if os.path.isdir(path) else os.path.splitext(base)[0]


def find_bags(inputs: Iterable[str], exclude: Optional[str] = None) -> List[InputBag]:
    """Return every bag in the inputs (bag folders, .db3/.mcap files, folders searched down).

    ``exclude`` (the output folder) is not searched. Raise ``ToolError`` for an input that
    does not exist or holds no bag, and for two bags that would get the same output name.
    """
    found: List[str] = []
    skip = os.path.realpath(exclude) if exclude else None
    for given in inputs:
        if not os.path.exists(given):
            raise ToolError(file_problem(given, 'does not exist', 'pass bag folders, .db3 or '
                                         '.mcap files, or folders holding them'))
        before = len(found)
        if os.path.isfile(given) or is_bag_folder(given):
            found.append(given)
        else:
            for root, dirs, files in os.walk(given):
                dirs.sort()
                if skip and os.path.realpath(root).startswith(skip):
                    dirs[:] = []
                    continue
                if is_bag_folder(root) and root != given:
                    found.append(root)
                    dirs[:] = []
                    continue
                dirs[:] = [d for d in dirs if not d.startswith('.')]
                found.extend(os.path.join(root, f) for f in sorted(files)
                             if f.endswith(BAG_FILE_SUFFIXES))
        if len(found) == before:
            raise ToolError(file_problem(given, 'holds no rosbag2 (no metadata.yaml, .db3 or '
                                         '.mcap file)', 'pass bag folders or files'))
    bags: Dict[str, InputBag] = {}
    for path in found:
        name = bag_name(path)
        if name in bags and os.path.realpath(bags[name].path) != os.path.realpath(path):
            raise ToolError(f'two input bags are both named {name!r} ({bags[name].path} and '
                            f'{path}): their outputs would be the same folder; process them '
                            f'in separate runs with different --out-dir')
        bags[name] = InputBag(path, name)
    return list(bags.values())


def work_dir(out_dir: str, name: str) -> str:
    """Return the folder where a bag's shards and joined output are written."""
    return os.path.join(out_dir, WORK_FOLDER, 'work', name)


def marker_path(out_dir: str, name: str) -> str:
    """Return the completion marker of a bag's output."""
    return os.path.join(out_dir, WORK_FOLDER, 'done', name + '.json')


def input_identity(path: str) -> Dict[str, object]:
    """Return what identifies an input bag's content: its path, total size and newest mtime."""
    files = [path] if os.path.isfile(path) else [
        os.path.join(root, name) for root, _, names in os.walk(path) for name in names]
    stats = [os.stat(f) for f in files]
    return {'path': os.path.realpath(path), 'bytes': sum(s.st_size for s in stats),
            'mtime_ns': max((s.st_mtime_ns for s in stats), default=0)}


def options_fingerprint(args: argparse.Namespace) -> str:
    """Return a digest of the options that decide a bag's output."""
    values = {name: getattr(args, name, None) for name in CONVERSION_OPTIONS}
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def completed(out_dir: str, bag: InputBag, fingerprint: str) -> Optional[Dict]:
    """Return the marker of a bag whose output is complete for these options, else None."""
    try:
        with open(marker_path(out_dir, bag.name), encoding='utf-8') as stream:
            marker = json.load(stream)
    except (OSError, ValueError):
        return None
    if (marker.get('version') != MARKER_VERSION or marker.get('options') != fingerprint
            or marker.get('input') != input_identity(bag.path)
            or not os.path.isdir(os.path.join(out_dir, bag.name))):
        return None
    return marker


def write_marker(out_dir: str, name: str, content: Dict) -> None:
    """Write a completion marker atomically (a temporary file renamed over it)."""
    path = marker_path(out_dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f'{path}.{os.getpid()}.tmp'
    with open(temporary, 'w', encoding='utf-8') as stream:
        json.dump({'version': MARKER_VERSION, **content}, stream, indent=2)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def forget(out_dir: str, name: str) -> None:
    """Remove a bag's marker, output and work folder (before it is written again)."""
    for path in (marker_path(out_dir, name),):
        if os.path.exists(path):
            os.remove(path)
    for folder in (os.path.join(out_dir, name), work_dir(out_dir, name)):
        if os.path.isdir(folder):
            shutil.rmtree(folder)


def image_times(reader: Reader, path: str, image_topic: str, start_ns: int,
                stop_ns: int) -> List[int]:
    """Return the record times of the image topic's messages in [start_ns, stop_ns)."""
    connections = [c for c in reader.connections if c.topic == image_topic]
    return [timestamp for _, timestamp, _ in messages(reader, path, connections,
                                                      start=start_ns, stop=stop_ns)]


def plan_bag(bag: InputBag, args: argparse.Namespace, out_dir: str,
             shard_frames: int = DEFAULT_SHARD_FRAMES) -> BagPlan:
    """Choose a bag's topics and cut it into shards; raise ``ToolError`` or ``BagDamaged``.

    The checks are hydranet-bag's (topics, output topics already in the bag, time window).
    """
    reader = open_bag(bag.path)
    try:
        topics = summarize_topics(reader.connections)
        try:
            image_topic = choose_image_topic(topics, args.topic, args.namespace)
            info_topic = camera_info_topic(topics, image_topic.name, args.camera_info_topic)
        except BagTopicError as error:
            raise ToolError(file_problem(bag.path, str(error))) from error
        clashes = sorted(set(output_topics(args.namespace, True, True).values())
                         & {t.name for t in topics})
        if clashes and not args.outputs_only:
            raise ToolError(file_problem(bag.path, f'already has the output topic(s) '
                                         f'{", ".join(clashes)}', 'choose another --namespace'))
        start_ns, stop_ns = time_window(reader, args.start, args.end)
        times = image_times(reader, bag.path, image_topic.name, start_ns, stop_ns)
    finally:
        reader.close()
    selected = [i for i in range(len(times)) if i % args.every == 0]
    if args.max_frames:
        selected = selected[:args.max_frames]
    if not selected:
        raise ToolError(file_problem(bag.path, f'no frames of {image_topic.name} in the chosen '
                                     f'time window'))
    last_image = None
    if args.max_frames and len(selected) == args.max_frames:
        last_image = selected[-1]
        stop_ns = min(stop_ns, times[last_image] + 1)  # as hydranet-bag: up to that time
    plan = BagPlan(bag, image_topic.name, info_topic, len(selected))
    bounds = shard_bounds(times, selected, shard_frames, start_ns, stop_ns)
    parts = os.path.join(work_dir(out_dir, bag.name), 'parts')
    for index, ((first_image, start), stop, frames) in enumerate(bounds):
        part = final_path(out_dir, bag.name) if len(bounds) == 1 else os.path.join(
            parts, f'{bag.name}-part-{index:05d}')  # one shard: written where the bag goes
        plan.shards.append(Shard(bag.path, bag.name, index, start, stop, first_image,
                                 last_image, frames, part))
    return plan


def shard_bounds(times: Sequence[int], selected: Sequence[int], shard_frames: int,
                 start_ns: int, stop_ns: int) -> List[Tuple[Tuple[int, int], int, int]]:
    """Return ((first image, window start), window stop, frames) of each shard.

    A shard starts at the record time of a selected image that is later than the image before
    it (images recorded at one time stay together); the first starts at the window's start.
    """
    starts = [(0, start_ns)]
    frames = [0]
    for image in selected:
        if frames[-1] >= shard_frames and image > 0 and times[image] > times[image - 1]:
            starts.append((image, times[image]))
            frames.append(0)
        frames[-1] += 1
    stops = [start for _, start in starts[1:]] + [stop_ns]
    return [(first, stop, count) for first, stop, count in zip(starts, stops, frames)]


def final_path(out_dir: str, name: str) -> str:
    """Return where a bag's complete output is written before it is moved into place."""
    return os.path.join(work_dir(out_dir, name), 'final', name)


def output_storage(args: argparse.Namespace, bag: InputBag) -> str:
    """Return the storage of a bag's output: --storage, else the input's."""
    return args.storage or storage_of(bag.path)


def join_parts(plan: BagPlan, out_dir: str, storage: str) -> int:
    """Join the parts of a bag in shard order into its final path; return messages written.

    Every part has the same connections in the same order (each was written as hydranet-bag
    writes a bag); the class map is kept only where its frame id differs from the last kept.
    """
    if len(plan.shards) == 1:
        return -1  # the only shard was written at the final path
    target = final_path(out_dir, plan.bag.name)
    written = 0
    with Writer(target, version=BAG_FORMAT_VERSION, storage_plugin=STORAGES[storage]) as writer:
        targets: Dict[Tuple, object] = {}
        last_frame_id: Optional[str] = None
        for shard in plan.shards:
            with Reader(shard.part_path) as reader:
                for connection in sorted(reader.connections, key=lambda c: c.id):
                    key = (connection.topic, connection.msgtype)
                    if key not in targets:
                        targets[key] = writer.add_connection(
                            connection.topic, connection.msgtype,
                            msgdef=connection.msgdef.data, rihs01=connection.digest,
                            offered_qos_profiles=connection.ext.offered_qos_profiles)
                for connection, timestamp, raw in reader.messages():
                    if connection.msgtype == LABEL_INFO_TYPE:
                        frame_id = frame_id_of(raw)
                        if frame_id == last_frame_id:
                            continue
                        last_frame_id = frame_id
                    writer.write(targets[(connection.topic, connection.msgtype)], timestamp,
                                 raw)
                    written += 1
    return written


def frame_id_of(raw: bytes) -> str:
    """Return the header frame id of a CDR message whose first field is a std_msgs/Header."""
    length = int.from_bytes(raw[12:16], 'little' if raw[1] & 1 else 'big')
    return bytes(raw[16:16 + max(0, length - 1)]).decode('utf-8', 'replace')


def publish(out_dir: str, plan: BagPlan, content: Dict) -> str:
    """Move a bag's joined output into place, then mark it complete; return its path."""
    source = final_path(out_dir, plan.bag.name)
    target = os.path.join(out_dir, plan.bag.name)
    if os.path.isdir(target):
        shutil.rmtree(target)  # an earlier output without a marker: not complete
    os.rename(source, target)
    write_marker(out_dir, plan.bag.name, {**content, 'output': os.path.realpath(target),
                                          'completed_unix_s': round(time.time(), 3)})
    shutil.rmtree(work_dir(out_dir, plan.bag.name), ignore_errors=True)
    return target
