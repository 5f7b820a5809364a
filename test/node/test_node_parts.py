"""The node's parts, tested without a running node.

camera_info scaling, parameters, workers, handoff, pipelining, engine swapping, diagnostics,
output images, QoS and the class map.
"""
import math
import os
from pathlib import Path
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip('rclpy', reason='rclpy is not installed: the node parts use ROS messages')

import yaml  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from hydranet_ros.engine import InferenceEngine  # noqa: E402
from hydranet_ros.model import CheckpointError, get_preset  # noqa: E402
from hydranet_ros.engine.class_map import model_name, unlabeled_id  # noqa: E402
from hydranet_ros.engine.prediction import Prediction  # noqa: E402
from hydranet_ros.node import diagnostics, parameters as qos  # noqa: E402
from hydranet_ros.node.demo_source import camera_info_message, pinhole_matrix  # noqa: E402
from hydranet_ros.node.engine_holder import EngineHolder, pipelined  # noqa: E402
from hydranet_ros.node.hydranet_node import PARAMETERS  # noqa: E402
from hydranet_ros.node.outputs import (OutputFrame, Outputs, class_map_message,  # noqa: E402
                                       effective_depth_range, limit_outputs, scale_camera_info)
from hydranet_ros.node.parameters import NodeSettings, descriptor, normalised  # noqa: E402
from hydranet_ros.node.processing import Handoff, Worker  # noqa: E402

PARAMETER_SPECS = PARAMETERS.specs
check_value = PARAMETERS.check_value
check_settings = PARAMETERS.check_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 120.0


def _calibration(width=640, height=480) -> CameraInfo:
    info = camera_info_message(pinhole_matrix(width, height, 70.0), width, height, 'cam')
    info.k[2] += 7.25  # an off-centre principal point
    info.p[2] = info.k[2]
    info.p[3] = -0.12 * info.k[0]  # a right stereo camera: Tx = -fx * baseline
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 40, 20, 320, 240
    return info


def _project(k, point):
    x, y, z = point
    return k[0] * x / z + k[1] * y / z + k[2], k[4] * y / z + k[5]


# ---------------------------------------------------------------- camera_info
def test_scaled_camera_info_projects_points_where_the_resized_image_shows_them():
    """A 3D point lands at the resized pixel of its full-resolution projection."""
    info = _calibration()
    scaled = scale_camera_info(info, 320, 240)
    point = (0.7, -0.4, 3.0)
    u, v = _project(info.k, point)
    u_half, v_half = _project(scaled.k, point)
    assert u_half == pytest.approx((u + 0.5) * 0.5 - 0.5)
    assert v_half == pytest.approx((v + 0.5) * 0.5 - 0.5)
    assert (scaled.width, scaled.height) == (320, 240)
    assert scaled.p[0] == pytest.approx(info.p[0] / 2) and scaled.p[3] == pytest.approx(
        info.p[3] / 2)
    assert scaled.p[3] / scaled.p[0] == pytest.approx(info.p[3] / info.p[0])  # same baseline
    assert (scaled.roi.x_offset, scaled.roi.width) == (20, 160)
    assert list(scaled.d) == list(info.d) and list(scaled.r) == list(info.r)
    assert info.width == 640, 'the input must not change'


def test_same_size_camera_info_is_copied_with_the_image_header():
    """At the camera's own size only the header changes."""
    info = _calibration()
    header = Header(frame_id='camera_optical_frame')
    header.stamp.sec = 99
    result = Outputs(node=None).camera_info_for(info, header, 640, 480)
    assert result is not info and result.header == header
    assert list(result.k) == list(info.k) and list(result.p) == list(info.p)


def test_camera_info_without_size_takes_the_output_size():
    """A camera_info that leaves width/height 0 is given the image's size unscaled."""
    info = CameraInfo()
    info.k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    result = scale_camera_info(info, 640, 480)
    assert (result.width, result.height) == (640, 480) and list(result.k) == list(info.k)


def test_demo_camera_has_the_requested_field_of_view():
    """The demo pinhole K gives a 60 degree horizontal field of view."""
    k = pinhole_matrix(640, 480, 60.0)
    assert 2 * math.degrees(math.atan(320 / k[0, 0])) == pytest.approx(60.0)
    info = camera_info_message(k, 640, 480, 'camera_optical_frame')
    assert list(info.p[:3]) == list(info.k[:3]) and info.header.frame_id == 'camera_optical_frame'


# ---------------------------------------------------------------- parameters
def test_every_parameter_is_described_and_the_yaml_lists_every_default():
    """config/hydranet.yaml holds each parameter once, with its declared default."""
    loaded = yaml.safe_load((REPO_ROOT / 'config' / 'hydranet.yaml').read_text())
    values = loaded['/**']['ros__parameters']
    assert {name: normalised(value) for name, value in values.items()} == \
        {spec.name: spec.default for spec in PARAMETER_SPECS}
    for spec in PARAMETER_SPECS:
        result = descriptor(spec)
        assert len(result.description) > 20, spec.name
        if spec.value_range is not None:
            assert result.floating_point_range or result.integer_range, spec.name


def test_the_node_documentation_lists_every_parameter():
    """docs/node.md has a table row for each declared parameter."""
    text = (REPO_ROOT / 'docs' / 'node.md').read_text()
    missing = [spec.name for spec in PARAMETER_SPECS if f'| `{spec.name}` |' not in text]
    assert not missing, missing


def test_descriptors_carry_ranges_and_read_only_flags():
    """Ranges become Integer/FloatingPointRange; transport settings are read-only."""
    specs = {spec.name: spec for spec in PARAMETER_SPECS}
    alpha = descriptor(specs['overlay_alpha'])
    assert (alpha.floating_point_range[0].from_value,
            alpha.floating_point_range[0].to_value) == (0.0, 1.0)
    assert descriptor(specs['threads']).integer_range[0].to_value == 256
    assert descriptor(specs['input_qos']).read_only
    assert not descriptor(specs['model_path']).read_only
    assert 'onnxruntime' in descriptor(specs['backend']).additional_constraints


@pytest.mark.parametrize('name, value, reason', [
    ('overlay_alpha', 1.5, 'outside [0.0, 1.0]'),
    ('overlay_alpha', 1, 'must be a double, got integer'),
    ('backend', 'tensorrt', "backend 'tensorrt' is not one of auto, torch, onnxruntime"),
    ('precision', 'int4', 'not one of'),
    ('device', 'cuda:x', "unknown device 'cuda:x'; use auto, cpu, cuda or cuda:N"),
    ('inference_width', 16, 'must be 0 (automatic) or >= 32 px'),
    ('model_path', '/no/such/file.pth', 'is not an existing file'),
    ('preset', 'coco', "preset 'coco' is not one of '', nyud40"),
    ('no_such_parameter', 1, 'unknown parameter'),
    ('cameras', 'front', 'must be a string array'),
    ('cameras', ['front', '2nd'], 'a camera name is a relative topic prefix'),
    ('cameras', ['front', 'front'], 'names a camera twice'),
])
def test_invalid_values_are_explained(name, value, reason):
    """check_value names the parameter, the value and the rule."""
    assert reason in check_value(name, value)


@pytest.mark.parametrize('name, value', [
    ('device', 'cuda:1'), ('device', 'cpu'), ('inference_width', 0), ('inference_width', 320),
    ('model_path', ''), ('preset', 'kitti6'), ('overlay_alpha', 0.0), ('threads', 4),
    ('cameras', ['front', 'arm/left']), ('cameras', [])])
def test_valid_values_pass(name, value):
    """Values inside the rules have no reason against them."""
    assert check_value(name, value) is None


def test_settings_rules_and_engine_keys():
    """Depth range order, inference size pairs, and which changes rebuild the engine."""
    settings = PARAMETERS.defaults()
    assert check_settings(settings) is None
    assert 'greater than min_depth_m' in check_settings(
        settings.replace({'min_depth_m': 5.0, 'max_depth_m': 2.0}))
    assert settings.replace({'inference_width': 320}).inference_size is None
    assert settings.replace({'inference_width': 320,
                             'inference_height': 240}).inference_size == (240, 320)
    for name in ('overlay_alpha', 'publish_color', 'confidence_threshold', 'max_depth_m'):
        spec_default = getattr(settings, name)
        other = (not spec_default if isinstance(spec_default, bool) else 0.5)
        assert PARAMETERS.engine_key(settings.replace({name: other})) == \
            PARAMETERS.engine_key(settings), name
    assert PARAMETERS.engine_key(settings.replace({'device': 'cpu'})) != \
        PARAMETERS.engine_key(settings)
    assert PARAMETERS.engine_parameters >= {'model_path', 'device', 'backend', 'precision',
                                            'inference_width', 'inference_height'}
    assert isinstance(settings, NodeSettings) and settings.publish_bundle
    assert 'onnxruntime backend runs on the CPU only' in check_settings(
        settings.replace({'backend': 'onnxruntime', 'device': 'cuda'}))
    with pytest.raises(AttributeError):
        settings.device = 'cpu'


# ---------------------------------------------------------------- workers
class _NewestSlot:
    """The newest item only, as the camera input keeps frames (for the worker test)."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.item = None
        self.dropped = 0

    def put(self, item) -> None:
        with self.condition:
            self.dropped += self.item is not None
            self.item = item
            self.condition.notify()

    def take(self, timeout_s: float):
        with self.condition:
            self.condition.wait_for(lambda: self.item is not None, timeout_s)
            item, self.item = self.item, None
            return item

    def wake(self) -> None:
        with self.condition:
            self.condition.notify_all()


def test_worker_never_falls_behind_and_survives_errors():
    """A slow consumer sees the newest frames only; an exception does not stop it."""
    slot = _NewestSlot()
    processed, errors = [], []
    period_s = 0.05

    def process(item):
        if item == 'bad':
            raise ValueError('broken frame')
        time.sleep(period_s)
        processed.append(item)

    worker = Worker(slot.take, process, errors.append, slot.wake, name='test')
    worker.start()
    slot.put('bad')
    time.sleep(0.02)
    for index in range(20):
        slot.put(index)
        time.sleep(period_s / 10)
    deadline = time.monotonic() + 5.0
    while (not processed or processed[-1] != 19) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop() and not worker.running
    assert processed[-1] == 19
    assert processed == sorted(processed)
    assert [str(e) for e in errors] == ['broken frame']
    assert slot.dropped + len(processed) == 20


def test_handoff_passes_every_item_and_makes_the_giver_wait():
    """put() waits while an item is pending; nothing is replaced; close() reports a lost one."""
    handoff = Handoff()
    taken = []
    assert handoff.put(1)
    giver = threading.Thread(target=lambda: handoff.put(2))
    giver.start()
    time.sleep(0.1)
    assert giver.is_alive()  # 1 is still pending
    taken.append(handoff.take(1.0))
    giver.join(2.0)
    taken.append(handoff.take(1.0))
    assert taken == [1, 2] and handoff.take(0.01) is None
    assert handoff.put(3) and handoff.close() and not handoff.put(4)
    handoff.reopen()
    assert handoff.put(5) and handoff.take(0.0) == 5


def test_auto_pipelining_needs_a_spare_core_or_a_gpu():
    """Auto pipelines on a CPU with a core beyond inference threads; always/never are obeyed."""
    def engine(device, threads):
        return SimpleNamespace(device=torch.device(device),
                               backend=SimpleNamespace(cpu_threads=threads))
    cores = os.cpu_count() or 1
    assert not pipelined('auto', engine('cuda', 1))
    assert not pipelined('auto', engine('cpu', cores))
    assert pipelined('auto', engine('cpu', 1)) == (cores > 1)
    assert pipelined('always', engine('cpu', cores))
    assert not pipelined('never', engine('cuda', 1))
    assert pipelined('auto', engine('cpu', cores), cameras=2)
    assert not pipelined('auto', engine('cuda', 1), cameras=4)


# ---------------------------------------------------------------- engine swapping
def test_engine_holder_swaps_in_the_background_and_keeps_serving_on_failure(
        nyud_checkpoint, kitti_checkpoint, tmp_path):
    """Real engines: a rebuild swaps atomically; a broken checkpoint leaves the old one."""
    swapped, failed = [], []
    holder = EngineHolder(lambda path: InferenceEngine(path, device='cpu', backend='torch'),
                          lambda path: path, lambda e, s: swapped.append(s),
                          lambda s, e: failed.append(e))
    first = holder.load(str(nyud_checkpoint))
    assert holder.engine is first and holder.settings == str(nyud_checkpoint)
    assert holder.request(str(nyud_checkpoint)) is False
    assert holder.request(str(kitti_checkpoint)) is True
    assert holder.engine is first or swapped, 'the old engine serves during the rebuild'
    assert holder.wait_idle(WAIT_S)
    assert holder.engine.config.num_classes == 6 and swapped == [str(kitti_checkpoint)]
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'no weights here')
    serving = holder.engine
    assert holder.request(str(broken))
    assert holder.wait_idle(WAIT_S)
    assert holder.engine is serving and isinstance(failed[0], CheckpointError)
    assert 'broken.pth' in str(failed[0])
    holder.release()
    assert holder.engine is None and holder.request(str(nyud_checkpoint)) is False


# ---------------------------------------------------------------- diagnostics
def test_rate_and_latency_windows():
    """Rates come from event times; summaries from the stored durations."""
    rate = diagnostics.RateWindow(window_s=5.0)
    for index in range(11):
        rate.add(100.0 + index * 0.1)
    assert rate.rate_hz(101.0) == pytest.approx(10.0)
    assert rate.rate_hz(200.0) == 0.0
    latency = diagnostics.LatencyWindow()
    assert latency.summary() is None
    for value in range(1, 101):
        latency.add(value)
    summary = latency.summary()
    assert summary['mean'] == pytest.approx(50.5) and summary['max'] == 100.0
    assert summary['p99'] == pytest.approx(99.01)
    values = np.random.default_rng(3).exponential(20.0, 257)
    latency = diagnostics.LatencyWindow()
    for value in values:
        latency.add(value)
    summary = latency.summary()
    assert summary['p50'] == pytest.approx(np.percentile(values, 50), rel=1e-12)
    assert summary['p99'] == pytest.approx(np.percentile(values, 99), rel=1e-12)


def test_statistics_count_drops_rejections_and_stale_frames():
    """Counters and the stale rule: a frame older than the inference period is stale."""
    stats = diagnostics.NodeStatistics()
    stats.frame_received(1.0, False)
    stats.frame_received(1.1, True)
    stats.frame_rejected('bad size')
    times = dict(inference_ms=50.0, receive_to_publish_ms=60.0, overhead_ms=2.0,
                 stamp_to_publish_ms=61.0)
    stats.frame_published(1.2, diagnostics.FrameTimes(frame_age_ms=40.0, period_ms=55.0,
                                                      **times))
    stats.frame_published(1.3, diagnostics.FrameTimes(frame_age_ms=70.0, period_ms=55.0,
                                                      **times))
    snapshot = stats.snapshot(1.3)
    assert snapshot['frames_received'] == 2 and snapshot['frames_dropped'] == 1
    assert snapshot['frames_rejected'] == 1 and snapshot['last_rejection'] == 'bad size'
    assert snapshot['frames_processed'] == 2 and snapshot['frames_stale'] == 1
    assert snapshot['overhead_ms_p99'] == pytest.approx(2.0)


def test_health_levels_say_what_is_wrong():
    """OK while processing; WARN naming the problem; ERROR without an engine."""
    snapshot = diagnostics.NodeStatistics().snapshot()
    assert diagnostics.health('unconfigured', snapshot, False, 0, 'missing.pth', False)[0] \
        == DiagnosticStatus.ERROR
    snapshot['frames_received'] = 5
    snapshot['last_rejection'] = 'unsupported encoding'
    level, message = diagnostics.health('active', snapshot, False, 2, None, True)
    assert level == DiagnosticStatus.WARN
    assert 'no camera_info' in message and '2 malformed' in message
    assert diagnostics.health('active', snapshot, True, 0, None, True) == (
        DiagnosticStatus.OK, 'processing')
    status = diagnostics.diagnostic_status('n: x', 'cpu', DiagnosticStatus.OK, 'ok',
                                           [('rate', 29.97123), ('count', 3)])
    assert [(v.key, v.value) for v in status.values] == [('rate', '29.97'), ('count', '3')]


# ---------------------------------------------------------------- outputs and class map
def test_depth_range_threshold_and_confidence_encodings():
    """Overrides narrow the depth range; low-confidence pixels become unlabelled."""
    depth = np.array([[0.2, 1.0, 5.0, np.nan]], np.float32)
    labels = np.array([[1, 2, 3, 4]], np.uint8)
    confidence = np.array([[0.2, 0.6, 0.9, 1.0]], np.float32)
    settings = PARAMETERS.defaults().replace({'min_depth_m': 0.5, 'max_depth_m': 4.0,
                                              'confidence_threshold': 0.5,
                                              'confidence_encoding': 'mono8'})
    prediction = Prediction(depth=depth.copy(), labels=labels.copy(), confidence=confidence)
    limit_outputs(prediction, settings)
    assert np.isnan(prediction.depth[0, [0, 2, 3]]).all() and prediction.depth[0, 1] == 1.0
    assert prediction.labels.tolist() == [[255, 2, 3, 4]]
    untouched = Prediction(depth=depth.copy(), labels=labels.copy(), confidence=confidence)
    limit_outputs(untouched, PARAMETERS.defaults())
    assert np.isnan(untouched.depth).sum() == 1 and untouched.labels.tolist() == [[1, 2, 3, 4]]
    frame = OutputFrame(header=Header(), rgb=np.zeros((1, 4, 3), np.uint8),
                        prediction=prediction, camera_info=None, settings=settings,
                        colors=np.zeros((6, 3), np.uint8), width=4, height=1)
    assert frame.confidence_pixels.tolist() == [[51, 153, 230, 255]]
    assert frame.labels_encoding == 'mono8'
    wide = Prediction(depth=depth, labels=np.zeros((1, 4), np.uint16), confidence=confidence)
    assert OutputFrame(header=Header(), rgb=frame.rgb, prediction=wide, camera_info=None,
                       settings=settings, colors=frame.colors, width=4,
                       height=1).labels_encoding == '16UC1'
    assert effective_depth_range(0.0, 10.0, 0.5, 20.0) == (0.5, 10.0)


def test_label_info_lists_every_class_with_name_and_colour():
    """The class map of a preset: ids, names, colours, unlabelled id and depth range."""
    config = get_preset('kitti6')
    colors = np.asarray(config.class_colors, np.uint8)
    msg = class_map_message(config, colors, Header(frame_id='cam'), 0.3, unlabeled_id(np.uint8),
                            'model.pth', 0.0, 80.0)
    assert [(c.class_id, c.class_name) for c in msg.class_map] == list(
        enumerate(config.class_names))
    assert (msg.class_map[2].r, msg.class_map[2].g, msg.class_map[2].b) == config.class_colors[2]
    assert msg.unlabeled_id == 255 and unlabeled_id(np.uint16) == 65535
    assert msg.threshold == pytest.approx(0.3) and msg.max_depth_m == 80.0
    assert model_name('') == 'bundled default model'


def test_qos_profiles():
    """Cameras in with sensor-data QoS; outputs reliable; class map latched."""
    assert qos.input_qos('sensor_data', 5).reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos.input_qos('reliable', 1).reliability == ReliabilityPolicy.RELIABLE
    assert qos.output_qos('reliable', 2).depth == 2
    assert qos.output_qos('best_effort', 2).reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos.latched_qos().durability == DurabilityPolicy.TRANSIENT_LOCAL
    with pytest.raises(ValueError, match='unknown output QoS'):
        qos.output_qos('sensor_data', 1)


# ---------------------------------------------------------------- command line
def test_help_prints_usage_and_every_parameter_and_starts_nothing(tmp_path):
    """`hydranet_node --help` exits 0 with the parameters; no ROS context (no log) is made."""
    import subprocess
    import sys
    env = dict(os.environ, ROS_LOG_DIR=str(tmp_path / 'log'), ROS_HOME=str(tmp_path))
    result = subprocess.run([sys.executable, '-m', 'hydranet_ros.node.launcher', '--help'],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: hydranet_node')
    assert all(f'  {spec.name} (default' in result.stdout for spec in PARAMETER_SPECS)
    assert not (tmp_path / 'log').exists(), 'the node started a ROS context'
