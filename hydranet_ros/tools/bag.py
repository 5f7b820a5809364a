"""hydranet-bag: run HydraNet over a recorded rosbag2 and write a new bag with depth and labels.

The new bag holds the recorded topics plus, per processed frame and with the frame's header
(stamp and frame id) and record time, ``<ns>/depth/image`` (32FC1 metres, NaN invalid),
``<ns>/segmentation/labels`` (mono8 class ids), ``<ns>/segmentation/color`` (rgb8 overlay),
``<ns>/depth/camera_info`` when the bag has the camera's camera_info and, on request,
``<ns>/segmentation/confidence`` (32FC1, 0..1): the node's topics; plus the class map
``<ns>/segmentation/label_info`` (hydranet_ros/LabelInfo, offered transient local so that
playback latches it), written with the first frame. Needs no ROS install.
"""
import argparse
import bisect
import json
import logging
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys.store import Typestore
from tqdm import tqdm

from ..engine import ImageFormatError, InferenceEngine
from ..engine.class_map import model_name
from ..engine.picture_header import CompressedHeaderError, picture_header
from .bag_label_info import LABEL_INFO_TYPE, LATCHED_QOS, label_info_message, \
    register_label_info
from .bag_messages import CAMERA_INFO_TYPE, COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, image_message, \
    message_to_rgb, \
    restamped_camera_info
from .bag_topics import BagTopicError, bag_typestore, camera_info_topic, choose_image_topic, \
    format_topic_list, summarize_topics, TopicSummary
from .bag_reading import BagDamaged, CorruptMessage, deserialize, messages, open_bag
from .engine_options import add_engine_arguments, engine_from_args, engine_line, EXIT_OK, \
    EXIT_SOME_FAILED, positive_int, ToolError
from .errors import add_debug_argument, file_problem, tool_main
from .image_io import add_pixel_limit_arguments, megapixels
from .depth_options import add_depth_arguments, Focal, ToolDepthRules
from .infer import model_description, output_kinds
from .prediction_files import DEFAULT_OUTPUTS, write_prediction
from .prediction_summary import summarize_prediction

PROG = 'hydranet-bag'
DEFAULT_NAMESPACE = '/hydranet'
OUTPUT_TOPICS = {
    'depth': 'depth/image',
    'labels': 'segmentation/labels',
    'color': 'segmentation/color',
    'camera_info': 'depth/camera_info',
    'confidence': 'segmentation/confidence',
    'label_info': 'segmentation/label_info',
}
OUTPUT_TYPES = {'camera_info': CAMERA_INFO_TYPE, 'label_info': LABEL_INFO_TYPE}
STORAGES = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}
BAG_FORMAT_VERSION = 8
NS_PER_S = 1_000_000_000
CORRUPT_MESSAGE = 'corrupt_message'  # a recorded message whose bytes do not fit its type
TOO_LARGE = 'too_large'              # more pixels than --max-input-pixels
EXIT_INTERRUPTED = 0  # Ctrl-C or SIGTERM: a requested end; the frames done so far are kept
LOGGER = logging.getLogger(PROG)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (every option has help)."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Run HydraNet on the camera images of a rosbag2 (sqlite3 or MCAP) and write '
                    'a new bag with the recorded topics plus depth and segmentation topics.',
        epilog='output topics (under --namespace): '
               + ', '.join(OUTPUT_TOPICS.values())
               + ' (confidence with --confidence)'
               + '\nexit status: 0 done, 1 some frames failed (reported, others written), '
                 '2 usage, bag or model error')
    parser.add_argument('bag', help='input rosbag2: its folder, or a single .db3/.mcap file')
    parser.add_argument('output_bag', nargs='?', metavar='OUTPUT',
                        help='new bag folder (must not exist; default: <bag>_hydranet beside '
                             'the input)')
    parser.add_argument('-o', '--output', metavar='DIR', help='the same as OUTPUT')
    parser.add_argument('--list', action='store_true',
                        help='list the topics of the bag and exit')
    parser.add_argument('--topic', metavar='TOPIC',
                        help='image topic (sensor_msgs/Image or CompressedImage); default: the '
                             'only one in the bag')
    parser.add_argument('--camera-info-topic', metavar='TOPIC',
                        help='camera_info to restamp onto depth/camera_info; default: the '
                             'camera_info beside the image topic, or the only one in the bag')
    parser.add_argument('--namespace', default=DEFAULT_NAMESPACE, metavar='NS',
                        help='prefix of the output topics (default: %(default)s)')
    parser.add_argument('--storage', choices=sorted(STORAGES),
                        help='storage of the new bag (default: the same as the input)')
    parser.add_argument('--outputs-only', action='store_true',
                        help='write only the output topics, not the recorded ones')
    parser.add_argument('--confidence', action='store_true',
                        help='also write segmentation/confidence (32FC1, max softmax '
                             'probability 0..1)')
    window = parser.add_argument_group('which frames')
    window.add_argument('--every', type=positive_int, default=1, metavar='N',
                        help='process every N-th image (default: %(default)s, all)')
    window.add_argument('--max-frames', type=positive_int, metavar='N',
                        help='stop after N processed frames (the new bag ends there)')
    window.add_argument('--start', type=float, default=0.0, metavar='SECONDS',
                        help='skip the first SECONDS of the bag (default: %(default)s)')
    window.add_argument('--end', type=float, metavar='SECONDS',
                        help='stop SECONDS after the start of the bag (default: its end)')
    extra = parser.add_argument_group('other outputs')
    extra.add_argument('--png-dir', metavar='DIR',
                       help='also write per-frame files as hydranet-infer does, named by frame '
                            'number (<DIR>/000000_depth.png, ...)')
    extra.add_argument('--png-outputs', type=output_kinds, default=DEFAULT_OUTPUTS,
                       metavar='LIST',
                       help='files written per frame to --png-dir (hydranet-infer --outputs '
                            f'names; default: {",".join(DEFAULT_OUTPUTS)})')
    extra.add_argument('--summary', metavar='PATH',
                       help='write a summary JSON (per frame: stamp, time, classes, depths)')
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='print only errors (no progress bar)')
    add_engine_arguments(parser)
    add_depth_arguments(parser)
    add_pixel_limit_arguments(parser, shrinks=False)
    add_debug_argument(parser)
    return parser


def open_reader(path: str) -> Reader:
    """Open a rosbag2 for reading or raise ``ToolError`` saying why it cannot be."""
    return open_bag(path)


def storage_of(path: str) -> str:
    """Return 'mcap' or 'sqlite3': the storage of a bag folder or file."""
    if os.path.isdir(path):
        return 'mcap' if any(name.endswith('.mcap') for name in os.listdir(path)) else 'sqlite3'
    return 'mcap' if path.endswith('.mcap') else 'sqlite3'


def default_output_path(path: str) -> str:
    """Return ``<bag>_hydranet`` beside the input bag."""
    base = os.path.normpath(path)
    if not os.path.isdir(base):
        base = os.path.splitext(base)[0]
    return base + '_hydranet'


def time_window(reader: Reader, start_s: float, end_s: Optional[float]) -> Tuple[int, int]:
    """Return [start, stop) in bag time (ns) for offsets in seconds from the bag's start."""
    if start_s < 0 or (end_s is not None and end_s <= start_s):
        raise ToolError(f'--start must be >= 0 and below --end; got {start_s} and {end_s}')
    start_ns = reader.start_time + int(round(start_s * NS_PER_S))
    stop_ns = reader.end_time if end_s is None else reader.start_time + int(
        round(end_s * NS_PER_S))
    return start_ns, stop_ns


def stamp_ns(header: Any) -> int:
    """Return a std_msgs/Header stamp in nanoseconds."""
    return int(header.stamp.sec) * NS_PER_S + int(header.stamp.nanosec)


class CameraInfoIndex:
    """The recorded camera_info messages, looked up by header stamp."""

    def __init__(self, reader: Reader, connections: Sequence[Connection],
                 store: Typestore, path: str = '') -> None:
        self.store = store
        by_stamp: Dict[int, bytes] = {}
        self.corrupt = 0
        self.damage: Optional[str] = None
        # rosbags reads every topic for an empty connection list: a bag without camera_info
        # must read none.
        try:
            for _, _, raw in messages(reader, path, connections) if connections else ():
                try:
                    info = deserialize(store, raw, CAMERA_INFO_TYPE)
                except CorruptMessage:
                    self.corrupt += 1
                    continue
                by_stamp[stamp_ns(info.header)] = bytes(raw)
        except BagDamaged as error:
            self.damage = str(error)
        self.stamps = sorted(by_stamp)
        self.raw = [by_stamp[s] for s in self.stamps]

    def __len__(self) -> int:
        return len(self.stamps)

    def lookup(self, stamp: int) -> Optional[Any]:
        """Return the camera_info with this stamp, else the latest before it, else the first."""
        if not self.stamps:
            return None
        index = bisect.bisect_right(self.stamps, stamp) - 1
        return self.store.deserialize_cdr(self.raw[max(index, 0)], CAMERA_INFO_TYPE)


def output_topics(namespace: str, with_camera_info: bool, with_confidence: bool,
                  with_label_info: bool = True) -> Dict[str, str]:
    """Return output key -> full topic name under ``namespace``."""
    prefix = '/' + namespace.strip('/') if namespace.strip('/') else ''
    wanted = {'camera_info': with_camera_info, 'confidence': with_confidence,
              'label_info': with_label_info}
    return {key: f'{prefix}/{name}' for key, name in OUTPUT_TOPICS.items()
            if wanted.get(key, True)}


class BagOutput:
    """The new bag: copies of the recorded connections plus the output topics."""

    def __init__(self, writer: Writer, store: Typestore, topics: Dict[str, str]) -> None:
        self.writer = writer
        self.store = store
        self.copies: Dict[int, Connection] = {}
        self.skipped_topics: List[str] = []
        self.topics = topics
        self.outputs = {key: writer.add_connection(
            topic, OUTPUT_TYPES.get(key, IMAGE_TYPE), typestore=store,
            offered_qos_profiles=[LATCHED_QOS] if key == 'label_info' else ())
            for key, topic in self.topics.items()}

    def add_copy(self, connection: Connection) -> None:
        """Add a recorded connection with its definition, hash and QoS profiles."""
        msgtype = connection.msgtype
        msgdef = connection.msgdef.data
        digest = connection.digest
        if msgtype not in self.store.fielddefs and not msgdef:
            LOGGER.warning('topic %s (%s) is not copied: the bag has no definition of its type',
                           connection.topic, msgtype)
            self.skipped_topics.append(connection.topic)
            return
        if not msgdef or not digest:
            msgdef = self.store.generate_msgdef(msgtype, ros_version=2)[0]
            digest = self.store.hash_rihs01(msgtype)
        self.copies[connection.id] = self.writer.add_connection(
            connection.topic, msgtype, msgdef=msgdef, rihs01=digest,
            offered_qos_profiles=connection.ext.offered_qos_profiles)

    def copy(self, connection: Connection, timestamp: int, raw: bytes) -> None:
        """Write a recorded message unchanged."""
        target = self.copies.get(connection.id)
        if target is not None:
            self.writer.write(target, timestamp, raw)

    def write(self, key: str, timestamp: int, message: Any, msgtype: str = IMAGE_TYPE) -> None:
        """Serialise and write one output message at the input's record time."""
        self.writer.write(self.outputs[key], timestamp,
                          self.store.serialize_cdr(message, msgtype))


class BagProcessor:
    """Runs the engine on each selected frame and writes the outputs with the frame's header."""

    def __init__(self, engine: InferenceEngine, output: BagOutput,
                 camera_infos: CameraInfoIndex, png_dir: Optional[str],
                 png_outputs: Sequence[str], model_path: Optional[str] = None,
                 rules: Optional[ToolDepthRules] = None, max_pixels: int = 0) -> None:
        self.engine = engine
        self.max_pixels = max_pixels
        self.rules = rules
        self.model_name = model_name(model_path or '')
        self.output = output
        self.camera_infos = camera_infos
        self.png_dir = png_dir
        self.png_outputs = png_outputs
        self.frames: List[Dict] = []
        self.failures: List[Dict] = []
        self.label_info_frame: Optional[str] = None

    def process(self, index: int, timestamp: int, raw: bytes, msgtype: str) -> None:
        """Infer one frame and write its output messages (and files); record failures."""
        try:
            msg = deserialize(self.output.store, raw, msgtype)
            header = msg.header
            self.check_size(msg, msgtype)
            image = message_to_rgb(msg, msgtype)
            started = time.perf_counter()
            prediction = self.engine.infer(image)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
        except (ImageFormatError, CorruptMessage, MemoryError) as error:
            kind = CORRUPT_MESSAGE if isinstance(error, CorruptMessage) else getattr(
                error, 'kind', 'out_of_memory')
            reason = str(error) or 'ran out of memory; lower --max-input-pixels'
            self.failures.append({'frame': index, 'bag_time_ns': timestamp, 'reason': kind,
                                  'error': reason})
            tqdm.write(f'{PROG}: skipped frame {index}: {reason}', file=sys.stderr)
            return
        focal = recorded_focal(self.camera_infos.lookup(stamp_ns(header)), image.shape[:2])
        if self.rules is not None:
            self.rules.apply(prediction, focal)
        types = self.output.store.types
        labels_encoding = 'mono8' if prediction.labels.itemsize == 1 else '16UC1'
        self.output.write('depth', timestamp,
                          image_message(types, header, prediction.depth, '32FC1'))
        self.output.write('labels', timestamp,
                          image_message(types, header, prediction.labels, labels_encoding))
        self.output.write('color', timestamp,
                          image_message(types, header, prediction.overlay, 'rgb8'))
        if 'confidence' in self.output.outputs:
            self.output.write('confidence', timestamp,
                              image_message(types, header, prediction.confidence, '32FC1'))
        if 'label_info' in self.output.outputs and header.frame_id != self.label_info_frame:
            self.label_info_frame = header.frame_id  # once, and again for another camera
            self.output.write('label_info', timestamp, label_info_message(
                self.output.store, self.engine.config, self.engine.colors, header,
                prediction.labels.dtype, self.model_name), LABEL_INFO_TYPE)
        if 'camera_info' in self.output.outputs:
            info = self.camera_infos.lookup(stamp_ns(header))
            self.output.write('camera_info', timestamp,
                              restamped_camera_info(types, info, header), CAMERA_INFO_TYPE)
        entry = {'frame': index, 'stamp': {'sec': int(header.stamp.sec),
                                           'nanosec': int(header.stamp.nanosec)},
                 'frame_id': str(header.frame_id), 'bag_time_ns': timestamp,
                 'ms': round(elapsed_ms, 3)}
        entry.update(summarize_prediction(prediction, self.engine.config.class_names))
        if self.png_dir:
            intrinsics = self.rules.intrinsics(image.shape[:2], focal) if self.rules else None
            files = write_prediction(self.png_dir, f'{index:06d}', image, prediction,
                                     self.engine, self.png_outputs, intrinsics)
            entry['files'] = {kind: os.path.relpath(path, self.png_dir)
                              for kind, path in files.items()}
        self.frames.append(entry)

    def check_size(self, msg: Any, msgtype: str) -> None:
        """Raise ``ImageFormatError`` (kind too_large) for a frame over --max-input-pixels.

        The size is read from the message (or the picture's header) before anything of that
        size is allocated, as the node does.
        """
        if not self.max_pixels:
            return
        if msgtype == COMPRESSED_IMAGE_TYPE:
            try:
                found = picture_header(msg.data)
            except CompressedHeaderError:
                return  # decoding reports what is wrong with it
            height, width = found.height, found.width
        else:
            height, width = int(msg.height), int(msg.width)
        if height * width > self.max_pixels:
            raise ImageFormatError(
                f'frame is {height}x{width} px ({megapixels(height, width)}), more than '
                f'--max-input-pixels {self.max_pixels}; raise --max-input-pixels to process such '
                f'frames', TOO_LARGE)


def recorded_focal(info: Optional[Any], image_size: Tuple[int, int]) -> Optional[Focal]:
    """Return (fx, fy) of a recorded camera_info at the image's size, or None."""
    if info is None or info.k[0] <= 0.0 or info.k[4] <= 0.0:
        return None
    height, width = image_size
    scale_x = width / info.width if info.width else 1.0
    scale_y = height / info.height if info.height else 1.0
    return (float(info.k[0]) * scale_x, float(info.k[4]) * scale_y)


def estimated_frames(topic: TopicSummary, args: argparse.Namespace) -> Optional[int]:
    """Return how many frames will be processed when known in advance (for the progress bar)."""
    if args.start or args.end is not None:
        return args.max_frames
    total = -(-topic.count // args.every)
    return min(total, args.max_frames) if args.max_frames else total


def convert(reader: Reader, args: argparse.Namespace, topics: Sequence[TopicSummary],
            image_topic: TopicSummary, info_topic: Optional[str]) -> int:
    """Write the new bag; return the exit status."""
    connections = reader.connections
    unusable: Dict[str, str] = {}
    store = bag_typestore(connections, unusable)
    for msgtype, reason in sorted(unusable.items()):
        LOGGER.warning('note: the definition of %s in the bag cannot be read (%s); its topics '
                       'are copied as recorded', msgtype, reason)
    image_connections = {c.id for c in connections if c.topic == image_topic.name}
    info_connections = [c for c in connections
                        if c.topic == info_topic and c.msgtype == CAMERA_INFO_TYPE]
    camera_infos = CameraInfoIndex(reader, info_connections, store, args.bag)
    if camera_infos.damage:
        LOGGER.warning('note: camera_info was read up to the damage only: %s',
                       camera_infos.damage)
    if not len(camera_infos):
        LOGGER.info('note: %s', camera_info_note(image_topic.name, info_topic, camera_infos))
    start_ns, stop_ns = time_window(reader, args.start, args.end)
    output_path = args.output_bag or args.output or default_output_path(args.bag)
    if os.path.exists(output_path):
        raise ToolError(file_problem(output_path, 'exists already',
                                     'remove it or pass another --output'))
    with_label_info = register_label_info(store)
    if not with_label_info:
        LOGGER.warning('the hydranet_ros message definitions were not found: the new bag gets '
                       'no segmentation/label_info topic')
    new_topics = output_topics(args.namespace, len(camera_infos) > 0, args.confidence,
                               with_label_info)
    clashes = sorted(set(new_topics.values()) & {t.name for t in topics})
    if clashes and not args.outputs_only:
        raise ToolError(f'the bag already has the output topic(s) {", ".join(clashes)}; '
                        f'choose another --namespace')
    engine = engine_from_args(args)
    if not args.quiet:
        print(f'model {args.model or "bundled default"}: {engine_line(engine)}')
    storage = STORAGES[args.storage or storage_of(args.bag)]
    started = time.perf_counter()
    interrupted = False
    with Writer(output_path, version=BAG_FORMAT_VERSION, storage_plugin=storage) as writer:
        output = BagOutput(writer, store, new_topics)
        if not args.outputs_only:
            for connection in connections:
                output.add_copy(connection)
        processor = BagProcessor(engine, output, camera_infos, args.png_dir, args.png_outputs,
                                 args.model, ToolDepthRules(args, engine), args.max_input_pixels)
        progress = tqdm(total=estimated_frames(image_topic, args), desc=PROG, unit='frame',
                        disable=args.quiet, file=sys.stderr)
        image_index = 0
        last_time: Optional[int] = None
        damage: Optional[BagDamaged] = None
        try:
            for connection, timestamp, raw in messages(reader, args.bag, start=start_ns,
                                                       stop=stop_ns):
                if last_time is not None and timestamp > last_time:
                    break
                output.copy(connection, timestamp, raw)
                if connection.id not in image_connections or last_time is not None:
                    continue
                index, image_index = image_index, image_index + 1
                if index % args.every:
                    continue
                processor.process(index, timestamp, raw, connection.msgtype)
                progress.update(1)
                if args.max_frames and len(processor.frames) + len(
                        processor.failures) >= args.max_frames:
                    last_time = timestamp
        except KeyboardInterrupt:
            interrupted = True
        except BagDamaged as error:
            damage = error
        progress.close()
    elapsed_s = time.perf_counter() - started
    report = run_report(args, output_path, image_topic, info_topic, engine, processor, output,
                        elapsed_s)
    report['notes'] = [camera_info_note(image_topic.name, info_topic, camera_infos)] \
        if not len(camera_infos) else []
    report['camera_info_corrupt'] = camera_infos.corrupt
    report['damaged'] = None if damage is None else {
        'error': str(damage), 'messages_read': damage.messages_read,
        'last_bag_time_ns': damage.last_time_ns}
    if args.summary:
        os.makedirs(os.path.dirname(os.path.abspath(args.summary)), exist_ok=True)
        with open(args.summary, 'w', encoding='utf-8') as stream:
            json.dump(report, stream, indent=2)
    if not args.quiet:
        totals = report['totals']
        print(f'{totals["processed"]} frame(s) of {image_topic.name} processed in '
              f'{elapsed_s:.1f} s (mean {totals["mean_ms"] or 0:.0f} ms/frame); new bag: '
              f'{output_path}; topics: {", ".join(output.topics.values())}')
    if interrupted:
        print(f'{PROG}: interrupted; the new bag holds the frames done so far', file=sys.stderr)
        return EXIT_INTERRUPTED
    if damage is not None:
        print(f'{PROG}: error: {damage}; the new bag holds the {len(processor.frames)} '
              f'frame(s) before it', file=sys.stderr)
        return EXIT_SOME_FAILED
    if processor.failures:
        counts = report['totals']['skipped_by_reason']
        print(f'{PROG}: {len(processor.failures)} frame(s) failed and were skipped ('
              + ', '.join(f'{kind} {count}' for kind, count in sorted(counts.items()))
              + '); each is listed above' + (' and in the summary' if args.summary else ''),
              file=sys.stderr)
        return EXIT_SOME_FAILED
    if not processor.frames:
        print(f'{PROG}: no frames of {image_topic.name} in the chosen time window',
              file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def run_report(args: argparse.Namespace, output_path: str, image_topic: TopicSummary,
               info_topic: Optional[str], engine: InferenceEngine, processor: BagProcessor,
               output: BagOutput, elapsed_s: float) -> Dict:
    """Return the summary JSON content."""
    report = model_description(engine, args.model)
    frames = processor.frames
    report.update({
        'input_bag': args.bag,
        'output_bag': output_path,
        'image_topic': image_topic.name,
        'image_type': image_topic.msgtype,
        'camera_info_topic': info_topic if 'camera_info' in output.topics else None,
        'output_topics': output.topics,
        'topics_not_copied': output.skipped_topics,
        'frames': frames,
        'failed': processor.failures,
        'totals': {'processed': len(frames), 'failed': len(processor.failures),
                   'skipped_by_reason': skipped_by_reason(processor.failures),
                   'seconds': round(elapsed_s, 3),
                   'mean_ms': round(sum(f['ms'] for f in frames) / len(frames), 3)
                   if frames else None},
    })
    return report


def skipped_by_reason(failures: Sequence[Dict]) -> Dict[str, int]:
    """Return how many frames were skipped for each reason (kind)."""
    counts: Dict[str, int] = {}
    for failure in failures:
        counts[failure.get('reason', 'other')] = counts.get(failure.get('reason', 'other'), 0) + 1
    return counts


def camera_info_note(image_topic: str, info_topic: Optional[str],
                     camera_infos: CameraInfoIndex) -> str:
    """Return the note of a bag whose camera has no (usable) camera_info."""
    if info_topic and camera_infos.corrupt:
        found = f'its camera_info on {info_topic} is damaged ({camera_infos.corrupt} message(s))'
    elif info_topic:
        found = f'{info_topic} holds no message'
    else:
        found = 'the bag has no camera_info for it'
    return (f'{image_topic}: {found}, so depth/camera_info is left out (depth, labels and '
            f'overlay are written); pass --camera-info-topic if the calibration is on another '
            f'topic')


def run(args: argparse.Namespace) -> int:
    """List topics or convert the bag; return the exit status."""
    if args.output_bag and args.output and args.output_bag != args.output:
        raise ToolError(f'two output bags given: {args.output_bag} and --output {args.output}')
    reader = open_reader(args.bag)
    try:
        topics = summarize_topics(reader.connections)
        if args.list:
            print(format_topic_list(topics))
            return EXIT_OK
        try:
            image_topic = choose_image_topic(topics, args.topic, args.namespace)
            info_topic = camera_info_topic(topics, image_topic.name, args.camera_info_topic)
        except BagTopicError as error:
            raise ToolError(str(error)) from error
        if not args.quiet:
            print(f'image topic: {image_topic.name} ({image_topic.count} messages); '
                  f'camera_info: {info_topic or "none"}')
        return convert(reader, args, topics, image_topic, info_topic)
    finally:
        try:
            reader.close()
        except Exception as error:  # noqa: B902 - closing a damaged bag must not hide the rest
            LOGGER.debug('closing %s: %s', args.bag, error)


@tool_main(PROG)
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``hydranet-bag``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format=f'{PROG}: %(message)s')
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
