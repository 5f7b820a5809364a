"""hydranet-fleet on generated rosbag2 recordings (sqlite3 and MCAP), one corrupt, on Ray.

Three good bags (one long enough to be cut into several shards, one MCAP, one in a sub-folder)
and a corrupt one go through ``hydranet-fleet`` with 2 workers on a local Ray cluster; each good
output must equal what ``hydranet-bag`` writes for that bag (every topic, record times and
headers the same, depth within 1e-4, everything else byte for byte), the corrupt bag must be
named with its reason and the exit code be 1. A rerun after deleting one output rewrites only
that one; ``--address`` joins a cluster this process starts.
"""
import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

from hydranet_ros.tools.fleet_bags import find_bags, frame_id_of, shard_bounds

pytest.importorskip('ray', reason='Ray is not installed: pip install -r requirements-dev.txt')

SAMPLE = (pathlib.Path(__file__).resolve().parents[2] / 'hydranet_ros' / 'assets' / 'samples'
          / 'kitti_000099.png')
HEIGHT, WIDTH = 64, 160
FIRST_RECORD_NS = 1_700_000_000_000_000_000
FRAME_PERIOD_NS = 100_000_000
HEADER_LAG_NS = 5_000_000
TOOL_TIMEOUT_S = 600
DEPTH_TOLERANCE_M = 1e-4
ENGINE_ARGS = ('--backend', 'torch', '--device', 'cpu', '--threads', '1')
SHARD_FRAMES = 3
BAGS = {'long_drive': (StoragePlugin.SQLITE3, 8), 'mcap_drive': (StoragePlugin.MCAP, 4),
        'nested/short_drive': (StoragePlugin.SQLITE3, 2)}
DEPTH_TOPIC = '/hydranet/depth/image'
STORE = get_typestore(Stores.ROS2_KILTED)
TYPES = STORE.types


def command(name: str, module: str) -> list:
    """Return an installed console script, or its module when it is not installed."""
    script = pathlib.Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, '-m', module]


def run_tool(name: str, module: str, *args: str) -> subprocess.CompletedProcess:
    """Run a tool and return the finished process (output captured)."""
    return subprocess.run(command(name, module) + list(args), capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT_S)


def header(index: int):
    """Return the header of frame ``index``."""
    stamp_ns = FIRST_RECORD_NS + index * FRAME_PERIOD_NS - HEADER_LAG_NS
    return TYPES['std_msgs/msg/Header'](
        stamp=TYPES['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9,
                                                   nanosec=stamp_ns % 10**9),
        frame_id='camera_optical_frame')


def write_bag(path: pathlib.Path, storage: StoragePlugin, count: int) -> None:
    """Record ``count`` frames cut from the KITTI sample, their camera_info and a chatter."""
    bgr = cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR)
    path.parent.mkdir(parents=True, exist_ok=True)
    focal_px = 120.0
    k = np.array([focal_px, 0, WIDTH / 2, 0, focal_px, HEIGHT / 2, 0, 0, 1], np.float64)
    p = np.array([focal_px, 0, WIDTH / 2, 0, 0, focal_px, HEIGHT / 2, 0, 0, 0, 1, 0],
                 np.float64)
    with Writer(path, version=8, storage_plugin=storage) as writer:
        images = writer.add_connection('/camera/image_raw', 'sensor_msgs/msg/Image',
                                       typestore=STORE)
        infos = writer.add_connection('/camera/camera_info', 'sensor_msgs/msg/CameraInfo',
                                      typestore=STORE)
        chatter = writer.add_connection('/chatter', 'std_msgs/msg/String', typestore=STORE)
        for index in range(count):
            record_ns = FIRST_RECORD_NS + index * FRAME_PERIOD_NS
            crop = cv2.resize(bgr[:, index * 40:index * 40 + 900], (WIDTH, HEIGHT),
                              interpolation=cv2.INTER_AREA)
            image = TYPES['sensor_msgs/msg/Image'](
                header=header(index), height=HEIGHT, width=WIDTH, encoding='bgr8',
                is_bigendian=0, step=WIDTH * 3, data=np.ascontiguousarray(crop).reshape(-1))
            info = TYPES['sensor_msgs/msg/CameraInfo'](
                header=header(index), height=HEIGHT, width=WIDTH, distortion_model='plumb_bob',
                d=np.zeros(5), k=k, r=np.eye(3).ravel(), p=p, binning_x=0, binning_y=0,
                roi=TYPES['sensor_msgs/msg/RegionOfInterest'](
                    x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            writer.write(chatter, record_ns - 1, STORE.serialize_cdr(
                TYPES['std_msgs/msg/String'](data=f'before frame {index}'),
                'std_msgs/msg/String'))
            writer.write(images, record_ns, STORE.serialize_cdr(image, 'sensor_msgs/msg/Image'))
            writer.write(infos, record_ns + 1, STORE.serialize_cdr(
                info, 'sensor_msgs/msg/CameraInfo'))


def read_bag(path: pathlib.Path) -> dict:
    """Return topic -> (msgtype, [(record time, raw bytes)]) of a bag."""
    topics: dict = {}
    with Reader(path) as reader:
        for connection, timestamp, raw in reader.messages():
            entry = topics.setdefault(connection.topic, (connection.msgtype, []))
            entry[1].append((timestamp, bytes(raw)))
    return topics


def depth_image(raw: bytes):
    """Return (stamp, frame id, depth array) of a serialised 32FC1 Image."""
    msg = STORE.deserialize_cdr(raw, 'sensor_msgs/msg/Image')
    depth = np.frombuffer(msg.data.tobytes(), np.float32).reshape(msg.height, msg.width)
    return (msg.header.stamp.sec, msg.header.stamp.nanosec), msg.header.frame_id, depth


def assert_same_bag(fleet: pathlib.Path, reference: pathlib.Path) -> None:
    """Check that the fleet's bag holds what hydranet-bag wrote: topics, times, data."""
    ours, theirs = read_bag(fleet), read_bag(reference)
    assert sorted(ours) == sorted(theirs)
    for topic, (msgtype, expected) in theirs.items():
        found = ours[topic]
        assert found[0] == msgtype, topic
        assert [t for t, _ in found[1]] == [t for t, _ in expected], topic
        for (_, raw), (_, expected_raw) in zip(found[1], expected):
            if topic == DEPTH_TOPIC:
                stamp, frame_id, depth = depth_image(raw)
                expected_stamp, expected_frame, expected_depth = depth_image(expected_raw)
                assert (stamp, frame_id) == (expected_stamp, expected_frame)
                np.testing.assert_array_equal(np.isnan(depth), np.isnan(expected_depth))
                valid = ~np.isnan(depth)
                assert np.abs(depth[valid] - expected_depth[valid]).max() <= DEPTH_TOLERANCE_M
            else:
                assert raw == expected_raw, topic


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    """Write the bags, convert each with hydranet-bag, then all with hydranet-fleet."""
    root = tmp_path_factory.mktemp('fleet')
    inputs = root / 'recordings'
    for name, (storage, count) in BAGS.items():
        write_bag(inputs / name, storage, count)
    broken = inputs / 'broken_drive'
    broken.mkdir()
    (broken / 'broken_drive_0.db3').write_bytes(b'this is not an sqlite database' * 50)
    (broken / 'metadata.yaml').write_text('rosbag2_bagfile_information:\n  version: 8\n'
                                          '  storage_identifier: sqlite3\n')
    references = {}
    for name in BAGS:
        target = root / 'reference' / pathlib.Path(name).name
        result = run_tool('hydranet-bag', 'hydranet_ros.tools.bag', str(inputs / name),
                          str(target), '-q', *ENGINE_ARGS)
        assert result.returncode == 0, result.stderr
        references[pathlib.Path(name).name] = target
    out_dir = root / 'processed'
    summary_path = root / 'summary.json'
    result = run_tool('hydranet-fleet', 'hydranet_ros.tools.fleet', str(inputs), '--out-dir',
                      str(out_dir), '--workers', '2', '--shard-frames', str(SHARD_FRAMES),
                      '--summary', str(summary_path), *ENGINE_ARGS)
    return {'inputs': inputs, 'out_dir': out_dir, 'result': result, 'references': references,
            'summary': json.loads(summary_path.read_text()), 'root': root}


def test_each_good_bag_equals_hydranet_bag(fleet):
    """Shards joined in order give exactly the one-pass bag (depth within 1e-4)."""
    for name, reference in fleet['references'].items():
        assert_same_bag(fleet['out_dir'] / name, reference)
    per_bag = {entry['bag']: entry for entry in fleet['summary']['per_bag']}
    assert per_bag['long_drive']['shards'] > 1, 'the long bag was not cut into shards'


def test_the_corrupt_bag_is_named_and_the_exit_code_says_so(fleet):
    """The broken bag is reported with its reason, the others are written, exit code 1."""
    result, summary = fleet['result'], fleet['summary']
    assert result.returncode == 1, result.stderr
    assert 'broken_drive: failed:' in result.stderr
    assert 'not a readable rosbag2' in result.stderr
    assert not (fleet['out_dir'] / 'broken_drive').exists()
    assert [f['bag'] for f in summary['failures']] == ['broken_drive']
    assert summary['written'] == len(BAGS) and summary['failed'] == 1
    assert summary['frames'] == sum(count for _, count in BAGS.values())
    assert summary['frames_per_s'] > 0 and summary['workers'] == 2
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed['frames'] == summary['frames']


def test_a_rerun_rewrites_only_the_missing_output(fleet):
    """Delete one output: the next run writes that bag again and skips the complete ones."""
    out_dir = fleet['out_dir']
    kept = {name: os.stat(out_dir / name / 'metadata.yaml').st_mtime_ns
            for name in ('long_drive', 'short_drive')}
    subprocess.run(['rm', '-r', str(out_dir / 'mcap_drive')], check=True)
    summary_path = fleet['root'] / 'rerun.json'
    result = run_tool('hydranet-fleet', 'hydranet_ros.tools.fleet', str(fleet['inputs']),
                      '--out-dir', str(out_dir), '--workers', '2', '--summary',
                      str(summary_path), '-q', *ENGINE_ARGS)
    summary = json.loads(summary_path.read_text())
    assert result.returncode == 1, result.stderr  # the broken bag is still broken
    assert summary['written'] == 1 and summary['skipped_complete'] == 2, summary
    assert summary['frames'] == BAGS['mcap_drive'][1]
    assert_same_bag(out_dir / 'mcap_drive', fleet['references']['mcap_drive'])
    for name, mtime in kept.items():
        assert os.stat(out_dir / name / 'metadata.yaml').st_mtime_ns == mtime, name


def test_without_ray_it_says_how_to_install_it(tmp_path):
    """An environment without Ray gets the install line, exit code 2."""
    code = ('import sys; sys.modules["ray"] = None; from hydranet_ros.tools.fleet import main; '
            f'sys.exit(main([{str(tmp_path)!r}, "--out-dir", {str(tmp_path / "out")!r}]))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=TOOL_TIMEOUT_S)
    assert result.returncode == 2
    assert 'pip install "hydranet_ros[fleet]"' in result.stderr


def test_shards_start_at_an_image_and_keep_equal_times_together():
    """Shard windows start at image record times; images recorded at one time stay together."""
    times = [10, 20, 30, 30, 40, 50]
    assert shard_bounds(times, list(range(6)), 2, 0, 100) == [
        ((0, 0), 30, 2), ((2, 30), 40, 2), ((4, 40), 100, 2)]
    assert shard_bounds(times, list(range(6)), 3, 0, 100) == [  # 30 twice: not cut between
        ((0, 0), 40, 4), ((4, 40), 100, 2)]
    assert shard_bounds(times, [0, 2, 4], 1, 5, 60) == [
        ((0, 5), 30, 1), ((2, 30), 40, 1), ((4, 40), 60, 1)]


def test_bags_are_found_in_folders_and_files(tmp_path):
    """Bag folders, storage files and folders of bags; the output folder is not searched."""
    write_bag(tmp_path / 'in' / 'a', StoragePlugin.SQLITE3, 1)
    write_bag(tmp_path / 'in' / 'deep' / 'b', StoragePlugin.MCAP, 1)
    write_bag(tmp_path / 'in' / 'out' / 'c', StoragePlugin.SQLITE3, 1)
    found = find_bags([str(tmp_path / 'in')], exclude=str(tmp_path / 'in' / 'out'))
    assert sorted(bag.name for bag in found) == ['a', 'b']
    single = next((tmp_path / 'in' / 'deep' / 'b').glob('*.mcap'))
    assert [bag.name for bag in find_bags([str(single)])] == [single.stem]


def test_frame_id_is_read_from_the_serialised_header():
    """The class map's frame id (for keeping it once per camera) comes from the CDR bytes."""
    image = STORE.serialize_cdr(TYPES['sensor_msgs/msg/Image'](
        header=header(0), height=0, width=0, encoding='mono8', is_bigendian=0, step=0,
        data=np.zeros(0, np.uint8)), 'sensor_msgs/msg/Image')
    assert frame_id_of(image) == 'camera_optical_frame'


def test_an_existing_cluster_is_joined_with_address(fleet, tmp_path):
    """--address runs the same conversion on a cluster this process started (without GPUs)."""
    import ray
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level='ERROR')
    try:
        address = ray.get_runtime_context().gcs_address
        out_dir = tmp_path / 'processed'
        result = run_tool('hydranet-fleet', 'hydranet_ros.tools.fleet',
                          str(fleet['inputs'] / 'nested' / 'short_drive'), '--out-dir',
                          str(out_dir), '--address', address, '--workers', '2', '-q',
                          *ENGINE_ARGS)
        gpu = run_tool('hydranet-fleet', 'hydranet_ros.tools.fleet',
                       str(fleet['inputs'] / 'nested' / 'short_drive'), '--out-dir',
                       str(tmp_path / 'gpu'), '--address', address, '--device', 'cuda', '-q')
    finally:
        ray.shutdown()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])['cluster'] == address
    assert_same_bag(out_dir / 'short_drive', fleet['references']['short_drive'])
    assert gpu.returncode == 2, gpu.stderr  # refused before any worker waits for a GPU
    assert 'use --device cpu, or a cluster with GPUs' in gpu.stderr
