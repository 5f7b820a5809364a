"""hydranet-bag on real rosbag2 recordings (sqlite3 and MCAP) written here with rosbags."""
import json
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

from camera_encodings import encoded, expected_rgb, message_fields
from conftest import require_shared, SAMPLES_DIR
from hydranet_ros.engine import decode_raw, InferenceEngine
from hydranet_ros.engine.depth_rules import apply_depth_rules, depth_rules
from hydranet_ros.engine.metric_scale import training_camera
from hydranet_ros.tools import bag as bag_tool
from hydranet_ros.tools.bag_topics import bag_typestore

FRAME_COUNT = 4
FRAME_HEIGHT_PX = 96
FRAME_WIDTH_PX = 128
FRAME_ID = 'camera_optical_frame'
FIRST_RECORD_NS = 1_700_000_000_000_000_000
FRAME_PERIOD_NS = 100_000_000
HEADER_LAG_NS = 7_000_000  # header stamps are the capture times, a little before recording
TOOL_TIMEOUT_S = 300
THREADS = 2  # the tool and the reference engine here: results then match exactly
ENGINE_ARGS = ('--backend', 'torch', '--device', 'cpu', '--threads', str(THREADS))
OUTPUT_TOPICS = ('/hydranet/depth/image', '/hydranet/segmentation/labels',
                 '/hydranet/segmentation/color', '/hydranet/depth/camera_info')
CONFIDENCE_TOPIC = '/hydranet/segmentation/confidence'
LABEL_INFO_TOPIC = '/hydranet/segmentation/label_info'
CAMERA_FOCAL_PX = 100.0
KITTI_SKY = 0
STORE = get_typestore(Stores.ROS2_KILTED)
TYPES = STORE.types


def tool_command() -> list:
    """Return the installed console script, or the module when it is not installed."""
    script = pathlib.Path(sys.executable).with_name('hydranet-bag')
    return [str(script)] if script.exists() else [sys.executable, '-m', 'hydranet_ros.tools.bag']


def run_tool(*args: str) -> subprocess.CompletedProcess:
    """Run hydranet-bag and return the finished process (output captured)."""
    return subprocess.run(tool_command() + list(args), capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT_S)


def sample_frames() -> list:
    """Return distinct small RGB frames cut from the NYUv2 sample image."""
    bgr = cv2.imread(str(require_shared(SAMPLES_DIR / 'nyud_joint' / '000464.png')))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    frames = []
    for index in range(FRAME_COUNT):
        crop = rgb[index * 20:index * 20 + 400, index * 30:index * 30 + 520]
        frames.append(cv2.resize(crop, (FRAME_WIDTH_PX, FRAME_HEIGHT_PX),
                                 interpolation=cv2.INTER_AREA))
    return frames


def header(index: int):
    """Return the header of frame ``index`` (capture stamp, optical frame)."""
    stamp_ns = FIRST_RECORD_NS + index * FRAME_PERIOD_NS - HEADER_LAG_NS
    stamp = TYPES['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9,
                                                 nanosec=stamp_ns % 10**9)
    return TYPES['std_msgs/msg/Header'](stamp=stamp, frame_id=FRAME_ID)


def camera_info(index: int):
    """Return a pinhole camera_info matching the frames."""
    focal_px = CAMERA_FOCAL_PX
    k = np.array([focal_px, 0, FRAME_WIDTH_PX / 2, 0, focal_px, FRAME_HEIGHT_PX / 2, 0, 0, 1],
                 np.float64)
    p = np.array([focal_px, 0, FRAME_WIDTH_PX / 2, 0, 0, focal_px, FRAME_HEIGHT_PX / 2, 0,
                  0, 0, 1, 0], np.float64)
    roi = TYPES['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                    do_rectify=False)
    return TYPES['sensor_msgs/msg/CameraInfo'](
        header=header(index), height=FRAME_HEIGHT_PX, width=FRAME_WIDTH_PX,
        distortion_model='plumb_bob', d=np.zeros(5), k=k, r=np.eye(3).ravel(), p=p,
        binning_x=0, binning_y=0, roi=roi)


def image_message(index: int, rgb: np.ndarray):
    """Return frame ``index`` as a bgr8 sensor_msgs/Image."""
    bgr = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return TYPES['sensor_msgs/msg/Image'](
        header=header(index), height=rgb.shape[0], width=rgb.shape[1], encoding='bgr8',
        is_bigendian=0, step=rgb.shape[1] * 3, data=bgr.reshape(-1))


def compressed_message(index: int, rgb: np.ndarray):
    """Return frame ``index`` as a PNG sensor_msgs/CompressedImage (lossless)."""
    ok, png = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return TYPES['sensor_msgs/msg/CompressedImage'](header=header(index), format='rgb8; png',
                                                    data=png.reshape(-1))


def write_bag(path: pathlib.Path, storage: StoragePlugin, compressed: bool,
              broken_frames: tuple = ()) -> list:
    """Record frames, camera_info and an unrelated topic; return the frames.

    Compressed frames listed in ``broken_frames`` hold bytes that are not an image.
    """
    frames = sample_frames()
    image_topic = '/camera/image_raw/compressed' if compressed else '/camera/image_raw'
    image_type = ('sensor_msgs/msg/CompressedImage' if compressed
                  else 'sensor_msgs/msg/Image')
    with Writer(path, version=8, storage_plugin=storage) as writer:
        images = writer.add_connection(image_topic, image_type, typestore=STORE)
        infos = writer.add_connection('/camera/camera_info', 'sensor_msgs/msg/CameraInfo',
                                      typestore=STORE)
        chatter = writer.add_connection('/chatter', 'std_msgs/msg/String', typestore=STORE)
        for index, rgb in enumerate(frames):
            record_ns = FIRST_RECORD_NS + index * FRAME_PERIOD_NS
            message = compressed_message(index, rgb) if compressed else image_message(index, rgb)
            if index in broken_frames:
                message.data = np.frombuffer(b'not an image', np.uint8)
            writer.write(images, record_ns, STORE.serialize_cdr(message, image_type))
            writer.write(infos, record_ns + 1, STORE.serialize_cdr(
                camera_info(index), 'sensor_msgs/msg/CameraInfo'))
            writer.write(chatter, record_ns + 2, STORE.serialize_cdr(
                TYPES['std_msgs/msg/String'](data=f'frame {index}'), 'std_msgs/msg/String'))
    return frames


def read_bag(path: pathlib.Path) -> dict:
    """Return topic -> list of (record time ns, message, msgtype) of a bag.

    Messages are read with the definitions the bag itself holds (the class map type is this
    package's, unknown to the stock typestore).
    """
    messages = {}
    with Reader(path) as reader:
        store = bag_typestore(reader.connections)
        for connection, timestamp, raw in reader.messages():
            message = store.deserialize_cdr(raw, connection.msgtype)
            messages.setdefault(connection.topic, []).append(
                (timestamp, message, connection.msgtype))
    return messages


def image_array(message) -> np.ndarray:
    """Return the pixels of a little-endian 32FC1, mono8 or rgb8 sensor_msgs/Image."""
    dtype, channels = {'32FC1': ('<f4', 1), 'mono8': (np.uint8, 1), 'rgb8': (np.uint8, 3)}[
        message.encoding]
    pixels = np.asarray(message.data, np.uint8).view(dtype)
    shape = (message.height, message.width) + ((channels,) if channels > 1 else ())
    return pixels.reshape(shape)


@pytest.fixture(scope='module')
def fixed_threads():
    """Run reference inference here with the tool's thread count; restore it afterwards."""
    previous = torch.get_num_threads()
    yield THREADS
    torch.set_num_threads(previous)


@pytest.fixture(scope='module')
def engine(nyud_checkpoint, fixed_threads) -> InferenceEngine:
    """Return the engine the tool is run with (torch on the CPU, fp32, same thread count)."""
    return InferenceEngine(str(nyud_checkpoint), device='cpu', backend='torch',
                           precision='fp32', threads=fixed_threads)


def expected_prediction(engine: InferenceEngine, rgb: np.ndarray):
    """Return the engine's result under the node's depth rules.

    Depth is rescaled by the recorded focal length over the model's training focal length
    (the NYUDv2 camera; the network runs at the frame's size).
    """
    scale = CAMERA_FOCAL_PX / training_camera(engine.config).focal_length_px
    return apply_depth_rules(engine.infer(rgb), depth_rules(engine.config, scale=scale))


def check_outputs(bag: pathlib.Path, source: pathlib.Path, frames: list, processed: list,
                  engine: InferenceEngine, image_topic: str, end_ns: int = 2**63,
                  confidence: bool = False) -> None:
    """Compare the new bag with the recording (up to ``end_ns``) and with the engine here."""
    recorded = {topic: [entry for entry in messages if entry[0] < end_ns]
                for topic, messages in read_bag(source).items()}
    written = read_bag(bag)
    for topic, messages in recorded.items():
        assert [(t, m.__msgtype__) for t, m, _ in written[topic]] == \
            [(t, m.__msgtype__) for t, m, _ in messages], topic
    topics = OUTPUT_TOPICS + ((CONFIDENCE_TOPIC,) if confidence else ())
    assert set(written) == set(recorded) | set(topics) | {LABEL_INFO_TOPIC}
    check_label_info(bag, written[LABEL_INFO_TOPIC], engine,
                     sorted(t for t, _, _ in recorded[image_topic])[processed[0]])
    for topic in topics:
        assert len(written[topic]) == len(processed), topic
    inputs = {t: m for t, m, _ in recorded[image_topic]}
    record_times = sorted(inputs)
    for position, index in enumerate(processed):
        record_ns = record_times[index]
        source_header = inputs[record_ns].header
        outputs = {topic: written[topic][position] for topic in topics}
        for topic, (timestamp, message, _) in outputs.items():
            assert timestamp == record_ns, topic
            assert message.header.stamp.sec == source_header.stamp.sec, topic
            assert message.header.stamp.nanosec == source_header.stamp.nanosec, topic
            assert message.header.frame_id == FRAME_ID, topic
        depth_msg = outputs['/hydranet/depth/image'][1]
        labels_msg = outputs['/hydranet/segmentation/labels'][1]
        color_msg = outputs['/hydranet/segmentation/color'][1]
        info_msg = outputs['/hydranet/depth/camera_info'][1]
        assert (depth_msg.encoding, labels_msg.encoding, color_msg.encoding) == \
            ('32FC1', 'mono8', 'rgb8')
        for message, bytes_per_pixel in ((depth_msg, 4), (labels_msg, 1), (color_msg, 3)):
            assert (message.height, message.width) == (FRAME_HEIGHT_PX, FRAME_WIDTH_PX)
            assert message.step == FRAME_WIDTH_PX * bytes_per_pixel
            assert message.is_bigendian == 0
        assert np.array_equal(info_msg.k, camera_info(index).k)
        assert np.array_equal(info_msg.p, camera_info(index).p)
        assert (info_msg.width, info_msg.height) == (FRAME_WIDTH_PX, FRAME_HEIGHT_PX)

        expected = expected_prediction(engine, frames[index])
        depth = image_array(depth_msg)
        assert np.array_equal(np.isnan(depth), np.isnan(expected.depth))
        assert np.array_equal(depth[np.isfinite(depth)],
                              expected.depth[np.isfinite(expected.depth)])
        assert np.array_equal(image_array(labels_msg), expected.labels)
        assert np.array_equal(image_array(color_msg), expected.overlay)
        if confidence:
            confidence_msg = outputs[CONFIDENCE_TOPIC][1]
            assert confidence_msg.encoding == '32FC1'
            assert np.array_equal(image_array(confidence_msg), expected.confidence)


def check_label_info(bag: pathlib.Path, messages: list, engine: InferenceEngine,
                     first_record_ns: int) -> None:
    """One class map, at the first processed frame, offered transient local (latched)."""
    assert len(messages) == 1
    timestamp, label_info, msgtype = messages[0]
    assert msgtype == 'hydranet_ros/msg/LabelInfo' and timestamp == first_record_ns
    assert label_info.header.frame_id == FRAME_ID
    config = engine.config
    assert [c.class_id for c in label_info.class_map] == list(range(config.num_classes))
    assert [c.class_name for c in label_info.class_map] == list(config.class_names)
    assert [(c.r, c.g, c.b) for c in label_info.class_map] == \
        [tuple(int(v) for v in engine.colors[i]) for i in range(config.num_classes)]
    assert label_info.unlabeled_id == 255 and label_info.model_name.endswith('.pth')
    assert (label_info.min_depth_m, label_info.max_depth_m) == pytest.approx(
        (config.min_depth_m, config.max_depth_m))
    with Reader(bag) as reader:
        (connection,) = [c for c in reader.connections if c.topic == LABEL_INFO_TOPIC]
        (qos,) = connection.ext.offered_qos_profiles
    assert qos.durability.name == 'TRANSIENT_LOCAL' and qos.reliability.name == 'RELIABLE'


@pytest.fixture(scope='module')
def sqlite3_run(tmp_path_factory, nyud_checkpoint) -> dict:
    """Record a sqlite3 bag of raw images and run the tool on it with PNG files and a summary."""
    folder = tmp_path_factory.mktemp('sqlite3_run')
    source = folder / 'recording'
    frames = write_bag(source, StoragePlugin.SQLITE3, compressed=False)
    output = folder / 'processed'
    result = run_tool(str(source), '--output', str(output), '--model', str(nyud_checkpoint),
                      *ENGINE_ARGS, '--png-dir',
                      str(folder / 'png'), '--png-outputs', 'labels,depth_npy',
                      '--summary', str(folder / 'summary.json'))
    return {'folder': folder, 'source': source, 'output': output, 'frames': frames,
            'result': result}


def test_sqlite3_bag_gets_depth_and_labels_with_frame_headers(sqlite3_run, engine):
    result, output, frames = sqlite3_run['result'], sqlite3_run['output'], sqlite3_run['frames']
    folder = sqlite3_run['folder']
    assert result.returncode == 0, result.stderr
    assert list(output.glob('*.db3')), 'the new bag keeps the sqlite3 storage'
    check_outputs(output, sqlite3_run['source'], frames, list(range(FRAME_COUNT)), engine,
                  '/camera/image_raw')

    summary = json.loads((folder / 'summary.json').read_text())
    assert summary['image_topic'] == '/camera/image_raw'
    assert summary['camera_info_topic'] == '/camera/camera_info'
    assert summary['totals']['processed'] == FRAME_COUNT and summary['failed'] == []
    first = summary['frames'][0]
    assert first['stamp'] == {'sec': (FIRST_RECORD_NS - HEADER_LAG_NS) // 10**9,
                              'nanosec': (FIRST_RECORD_NS - HEADER_LAG_NS) % 10**9}
    assert first['frame_id'] == FRAME_ID and first['ms'] > 0
    assert len(first['classes_top5']) >= 1
    labels_png = cv2.imread(str(folder / 'png' / '000000_labels.png'), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(labels_png, engine.infer(frames[0]).labels)
    depth_npy = np.load(folder / 'png' / '000000_depth.npy')
    assert depth_npy.dtype == np.float32 and depth_npy.shape == (FRAME_HEIGHT_PX, FRAME_WIDTH_PX)


def test_outputs_deserialize_with_the_ros_client_library(sqlite3_run):
    serialization = pytest.importorskip('rclpy.serialization')
    sensor_msgs = pytest.importorskip('sensor_msgs.msg')
    assert sqlite3_run['result'].returncode == 0, sqlite3_run['result'].stderr
    checked = set()
    hydranet_msgs = pytest.importorskip('hydranet_ros.msg')
    with Reader(sqlite3_run['output']) as reader:
        store = bag_typestore(reader.connections)
        for connection, _, raw in reader.messages():
            if not connection.topic.startswith('/hydranet/'):
                continue
            ours = store.deserialize_cdr(raw, connection.msgtype)
            package = hydranet_msgs if connection.msgtype.startswith('hydranet_ros/') \
                else sensor_msgs
            theirs = serialization.deserialize_message(
                bytes(raw), getattr(package, connection.msgtype.rsplit('/', 1)[-1]))
            assert theirs.header.frame_id == ours.header.frame_id == FRAME_ID
            assert theirs.header.stamp.nanosec == ours.header.stamp.nanosec
            if connection.msgtype == 'hydranet_ros/msg/LabelInfo':
                assert [c.class_name for c in theirs.class_map] == \
                    [c.class_name for c in ours.class_map]
            elif connection.msgtype == 'sensor_msgs/msg/Image':
                assert (theirs.encoding, theirs.width, theirs.height, theirs.step) == \
                    (ours.encoding, ours.width, ours.height, ours.step)
                assert bytes(theirs.data) == ours.data.tobytes()
            else:
                assert list(theirs.k) == list(ours.k)
            checked.add(connection.topic)
    assert checked == set(OUTPUT_TOPICS) | {LABEL_INFO_TOPIC}


def test_mcap_bag_of_compressed_images_every_second_frame(tmp_path, nyud_checkpoint, engine):
    source = tmp_path / 'recording'
    frames = write_bag(source, StoragePlugin.MCAP, compressed=True)
    output = tmp_path / 'processed'
    result = run_tool(str(source), str(output), '--model', str(nyud_checkpoint),
                      *ENGINE_ARGS, '--every', '2', '--end', '0.25',
                      '--confidence', '--quiet')
    assert result.returncode == 0, result.stderr
    assert result.stdout == ''
    assert list(output.glob('*.mcap')), 'the new bag keeps the MCAP storage'
    check_outputs(output, source, frames, [0, 2], engine, '/camera/image_raw/compressed',
                  end_ns=FIRST_RECORD_NS + 250_000_000, confidence=True)


def test_sky_has_nan_depth_in_the_bag_outputs(tmp_path):
    """The KITTI sample through the bundled model: sky pixels have NaN depth (REP 118)."""
    bgr = cv2.imread(str(require_shared(SAMPLES_DIR / 'kitti_joint' / '000099.png')))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    source = tmp_path / 'kitti'
    with Writer(source, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        images = writer.add_connection('/camera/image_raw', 'sensor_msgs/msg/Image',
                                       typestore=STORE)
        writer.write(images, FIRST_RECORD_NS, STORE.serialize_cdr(
            image_message(0, rgb), 'sensor_msgs/msg/Image'))
    output = tmp_path / 'processed'
    result = run_tool(str(source), str(output), '--threads', str(THREADS), '--quiet')
    assert result.returncode == 0, result.stderr
    written = read_bag(output)
    depth = image_array(written['/hydranet/depth/image'][0][1])
    labels = image_array(written['/hydranet/segmentation/labels'][0][1])
    sky = labels == KITTI_SKY
    assert sky.mean() > 0.01, 'the sample shows no sky'
    assert np.isnan(depth[sky]).all() and np.isfinite(depth[~sky]).mean() > 0.99


def test_max_frames_and_time_window_bound_the_new_bag(tmp_path, nyud_checkpoint):
    source = tmp_path / 'recording'
    write_bag(source, StoragePlugin.SQLITE3, compressed=False)
    output = tmp_path / 'processed'
    result = run_tool(str(source), '-o', str(output), '--model', str(nyud_checkpoint),
                      *ENGINE_ARGS, '--start', '0.05',
                      '--max-frames', '2', '--storage', 'mcap', '--quiet')
    assert result.returncode == 0, result.stderr
    assert list(output.glob('*.mcap')), '--storage chooses the storage of the new bag'
    written = read_bag(output)
    frame_ns = [FIRST_RECORD_NS + FRAME_PERIOD_NS * index for index in (1, 2)]
    assert [t for t, _, _ in written['/hydranet/depth/image']] == frame_ns
    assert [t for t, _, _ in written['/camera/image_raw']] == frame_ns
    # The new bag ends with the last processed frame.
    assert [t for t, _, _ in written['/chatter']] == [frame_ns[0] + 2]


def test_list_and_errors_name_the_topics(tmp_path, nyud_checkpoint, capsys):
    source = tmp_path / 'recording'
    write_bag(source, StoragePlugin.SQLITE3, compressed=False)
    assert bag_tool.main([str(source), '--list']) == 0
    listed = capsys.readouterr().out
    assert '* /camera/image_raw' in listed
    assert '/chatter' in listed and 'std_msgs/msg/String' in listed

    assert bag_tool.main([str(source), '--topic', '/chatter', '--model',
                          str(nyud_checkpoint)]) == 2
    error = capsys.readouterr().err
    assert 'not an image' in error and '/camera/image_raw' in error

    assert bag_tool.main([str(source), '--model', str(tmp_path / 'nope.pt'), '-o',
                          str(tmp_path / 'never')]) == 2
    error = capsys.readouterr().err
    assert 'does not exist' in error and '--model' in error
    assert not (tmp_path / 'never').exists()

    assert bag_tool.main([str(tmp_path / 'no_bag')]) == 2
    assert 'does not exist' in capsys.readouterr().err


def test_undecodable_frame_is_reported_and_the_others_are_written(tmp_path, nyud_checkpoint):
    source = tmp_path / 'recording'
    write_bag(source, StoragePlugin.SQLITE3, compressed=True, broken_frames=(1,))
    output = tmp_path / 'processed'
    summary_path = tmp_path / 'summary.json'
    result = run_tool(str(source), str(output), '--model', str(nyud_checkpoint), *ENGINE_ARGS,
                      '--max-frames', '3', '--outputs-only',
                      '--summary', str(summary_path), '--quiet')
    assert result.returncode == 1
    assert 'skipped frame 1' in result.stderr and 'cannot decode' in result.stderr
    written = read_bag(output)
    assert set(written) == set(OUTPUT_TOPICS) | {LABEL_INFO_TOPIC}, \
        '--outputs-only copies no recorded topic'
    frame_ns = [FIRST_RECORD_NS + FRAME_PERIOD_NS * index for index in (0, 2)]
    assert [t for t, _, _ in written['/hydranet/depth/image']] == frame_ns
    summary = json.loads(summary_path.read_text())
    assert [f['frame'] for f in summary['frames']] == [0, 2]
    assert [f['frame'] for f in summary['failed']] == [1]


CAMERA_ENCODINGS = (('bayer_rggb8', False, 0), ('yuv422_yuy2', False, 6),
                    ('mono16', True, 2), ('32FC1', False, 0))  # (encoding, big endian, padding)


def test_camera_encodings_are_decoded_as_the_engine_decodes_them(tmp_path, nyud_checkpoint,
                                                                 engine):
    """Bayer, YUV 4:2:2 and big-endian padded mono16 frames are processed; 32FC1 is refused."""
    source = tmp_path / 'encodings'
    frames = sample_frames()
    fields = []
    with Writer(source, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        images = writer.add_connection('/camera/image_raw', 'sensor_msgs/msg/Image',
                                       typestore=STORE)
        for index, (encoding, big_endian, padding) in enumerate(CAMERA_ENCODINGS):
            pixels = (np.ones(frames[index].shape[:2], np.float32) if encoding == '32FC1'
                      else encoded(frames[index], encoding))
            data, step = message_fields(pixels, padding, big_endian)
            fields.append((data, encoding, FRAME_WIDTH_PX, FRAME_HEIGHT_PX, step, big_endian))
            message = TYPES['sensor_msgs/msg/Image'](
                header=header(index), height=FRAME_HEIGHT_PX, width=FRAME_WIDTH_PX,
                encoding=encoding, is_bigendian=int(big_endian), step=step,
                data=np.frombuffer(data, np.uint8))
            writer.write(images, FIRST_RECORD_NS + index * FRAME_PERIOD_NS,
                         STORE.serialize_cdr(message, 'sensor_msgs/msg/Image'))
    output = tmp_path / 'processed'
    result = run_tool(str(source), str(output), '--model', str(nyud_checkpoint),
                      *ENGINE_ARGS, '--quiet')
    assert result.returncode == 1
    assert "skipped frame 3: image encoding '32FC1' cannot be used as a camera image" in \
        result.stderr and 'image_proc' in result.stderr
    written = read_bag(output)['/hydranet/segmentation/labels']
    assert len(written) == 3
    for (_, labels_msg, _), (encoding, _, _), frame_fields, frame in zip(
            written, CAMERA_ENCODINGS, fields, frames):
        decoded = decode_raw(*frame_fields)
        if encoding == 'mono16':
            assert np.array_equal(decoded, expected_rgb(frame, encoding))
        assert np.array_equal(image_array(labels_msg), engine.infer(decoded).labels), encoding
