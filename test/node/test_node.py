"""hydranet_node in its own process over real DDS: outputs, class map, health, parameters.

One node per module, started with the shipped parameters file (config/hydranet.yaml) and the
reference checkpoint; this process publishes real sample images and compares every output with
the engine's result for the same image.
"""
import time

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from hydranet_ros.engine import InferenceEngine, overlay_labels  # noqa: E402
from hydranet_ros.engine.images import decode_raw  # noqa: E402
from hydranet_ros.model import HydraNetConfig, build_hydranet, save_hydranet  # noqa: E402
from hydranet_ros.msg import DepthSegmentation, LabelInfo  # noqa: E402
from hydranet_ros.node.outputs import scale_camera_info  # noqa: E402
from hydranet_ros.node.messages import array_to_image, image_to_array  # noqa: E402
from camera_encodings import encoded, message_fields  # noqa: E402
from node_harness import (LATCHED, RosClient, camera_info, diagnostic_values,  # noqa: E402
                          make_header, reference_prediction,
                          request_outputs, running_node, sample_rgb, stamp_key)

NODE = 'hydranet_test_node'
THREADS = 2
WIDTH, HEIGHT = 160, 120
CAMERA_INFO_WIDTH, CAMERA_INFO_HEIGHT = 320, 240  # calibrated at twice the image size
OUTPUT_TIMEOUT_S = 40.0
SWAP_TIMEOUT_S = 90.0
BURST_FRAMES = 20
IMAGE_TOPICS = {
    'depth/image': Image, 'segmentation/labels': Image, 'segmentation/color': Image,
    'segmentation/confidence': Image, 'depth/camera_info': CameraInfo,
    'perception': DepthSegmentation,
}


@pytest.fixture(scope='module')
def ros(tmp_path_factory, nyud_checkpoint):
    """Start the node and a client on a private domain; stop both after the module."""
    with running_node(tmp_path_factory.mktemp('node'), NODE,
                      {'model_path': nyud_checkpoint, 'backend': 'torch', 'device': 'cpu',
                       'threads': THREADS}, 'hydranet_test_client') as running:
        yield running


@pytest.fixture(scope='module')
def outputs(client):
    """Subscribe to every output topic for the whole module; return the logs."""
    logs = {topic: client.subscribe(topic, msg_type) for topic, msg_type in IMAGE_TOPICS.items()}
    for topic in IMAGE_TOPICS:
        assert client.wait_for_publishers(topic), f'the node does not publish {topic}'
    return logs


@pytest.fixture(scope='module')
def torch_threads():
    """Run reference inference with the node's thread count (results then match exactly)."""
    import torch
    previous = torch.get_num_threads()
    yield THREADS
    torch.set_num_threads(previous)


@pytest.fixture(scope='module')
def engine(nyud_checkpoint, torch_threads) -> InferenceEngine:
    """Return the engine the node runs, in this process, for reference results."""
    return InferenceEngine(str(nyud_checkpoint), device='cpu', backend='torch',
                           threads=torch_threads)


@pytest.fixture(scope='module')
def image() -> np.ndarray:
    """Return a real sample picture at test size."""
    return sample_rgb(width=WIDTH, height=HEIGHT)


def _frame(image: np.ndarray, encoding: str = 'rgb8'):
    return lambda header: array_to_image(image, encoding, header)


def _calibration() -> CameraInfo:
    return camera_info(CAMERA_INFO_WIDTH, CAMERA_INFO_HEIGHT, make_header(0))


def _expected(engine: InferenceEngine, image: np.ndarray, encoding: str = 'rgb8'):
    """Return what the node publishes for ``image`` with the default depth rules.

    Depth is scaled by the published calibration against the NYUDv2 training camera.
    """
    published = scale_camera_info(_calibration(), WIDTH, HEIGHT)
    return reference_prediction(engine, image, published, encoding)


def _latest_diagnostics(client: RosClient, predicate, timeout_s: float = 20.0) -> dict:
    log = client.subscribe('/diagnostics', DiagnosticArray)
    log.clear()

    def matches(msg) -> bool:
        status = [s for s in msg.status if s.name.startswith(f'{NODE}:')]
        return bool(status) and predicate(status[0], diagnostic_values(status[0]))
    msg = log.wait_for(matches, timeout_s)
    assert msg is not None, 'no matching diagnostics from the node'
    status = [s for s in msg.status if s.name.startswith(f'{NODE}:')][0]
    return {'status': status, **diagnostic_values(status)}


def test_every_output_matches_the_engine_with_the_input_header(camera, outputs, engine, image):
    """Depth, labels, confidence, overlay, camera_info and bundle: right encodings and values."""
    received = request_outputs(camera, _frame(image), outputs, _calibration(), OUTPUT_TIMEOUT_S)
    assert received, 'not every output arrived for one input frame'
    expected = _expected(engine, image)
    header = received['depth/image'].header
    for topic, msg in received.items():
        assert msg.header == header, topic
        assert msg.header.frame_id == 'camera_optical_frame', topic
    images = {topic: received[topic] for topic in ('depth/image', 'segmentation/labels',
                                                   'segmentation/color',
                                                   'segmentation/confidence')}
    assert {t: m.encoding for t, m in images.items()} == {
        'depth/image': '32FC1', 'segmentation/labels': 'mono8', 'segmentation/color': 'rgb8',
        'segmentation/confidence': '32FC1'}
    assert all((m.width, m.height) == (WIDTH, HEIGHT) for m in images.values())

    depth = image_to_array(received['depth/image'])
    np.testing.assert_array_equal(depth, expected.depth)
    assert np.array_equal(np.isnan(depth), np.isnan(expected.depth))
    labels = image_to_array(received['segmentation/labels'])
    assert np.array_equal(labels, expected.labels)
    np.testing.assert_array_equal(image_to_array(received['segmentation/confidence']),
                                  expected.confidence)
    expected_overlay = overlay_labels(image, labels, engine.colors, 0.5)
    assert np.array_equal(image_to_array(received['segmentation/color']), expected_overlay)

    info = received['depth/camera_info']
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    reference = scale_camera_info(_calibration(), WIDTH, HEIGHT)
    np.testing.assert_allclose(info.k, reference.k)
    np.testing.assert_allclose(info.p, reference.p)
    assert info.k[0] == pytest.approx(_calibration().k[0] / 2.0)

    bundle = received['perception']
    assert bytes(bundle.depth.data) == bytes(received['depth/image'].data)
    assert bytes(bundle.labels.data) == bytes(received['segmentation/labels'].data)
    assert bytes(bundle.confidence.data) == bytes(received['segmentation/confidence'].data)
    assert bundle.camera_info == info


@pytest.mark.parametrize('encoding', ['bgr8', 'rgba8', 'bgra8', 'mono8'])
def test_input_encodings_give_the_engine_result(camera, outputs, engine, image, encoding):
    """Every camera encoding is converted as the engine converts it."""
    converted = {
        'bgr8': image[:, :, ::-1],
        'rgba8': np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]),
        'bgra8': np.dstack([image[:, :, ::-1], np.full(image.shape[:2], 255, np.uint8)]),
        'mono8': image[:, :, 1],
    }[encoding]
    logs = {topic: outputs[topic] for topic in ('depth/image', 'segmentation/labels')}
    received = request_outputs(camera, _frame(converted, encoding), logs, _calibration(),
                               OUTPUT_TIMEOUT_S)
    assert received, f'no output for a {encoding} image'
    expected = _expected(engine, converted, encoding)
    assert np.array_equal(image_to_array(received['segmentation/labels']), expected.labels)
    np.testing.assert_array_equal(image_to_array(received['depth/image']), expected.depth)


@pytest.mark.parametrize('encoding', ['bayer_rggb8', 'yuv422_yuy2', 'mono16'])
def test_driver_encodings_are_answered_as_the_bag_tool_decodes_them(
        camera, outputs, engine, image, encoding):
    """Bayer, YUYV (usb_cam, UVC drivers) and 16-bit frames made from a real sample."""
    data, step = message_fields(encoded(image, encoding))
    logs = {topic: outputs[topic] for topic in ('depth/image', 'segmentation/labels')}

    def frame(header):
        return Image(header=header, height=HEIGHT, width=WIDTH, encoding=encoding,
                     is_bigendian=0, step=step, data=data)
    received = request_outputs(camera, frame, logs, _calibration(), OUTPUT_TIMEOUT_S)
    assert received, f'no output for a {encoding} image'
    expected = _expected(engine, decode_raw(data, encoding, WIDTH, HEIGHT, step, False))
    assert np.array_equal(image_to_array(received['segmentation/labels']), expected.labels)
    np.testing.assert_array_equal(image_to_array(received['depth/image']), expected.depth)


def test_late_subscriber_receives_the_class_map(client, camera, outputs, engine, image):
    """The latched label_info reaches a subscriber that joins after it was published."""
    assert request_outputs(camera, _frame(image), {'depth/image': outputs['depth/image']},
                           _calibration(), OUTPUT_TIMEOUT_S)
    time.sleep(0.5)
    log = client.subscribe('segmentation/label_info', LabelInfo, LATCHED)
    info = log.wait_for(lambda m: m.header.frame_id == 'camera_optical_frame', 20.0)
    assert info is not None, 'no label_info for a late subscriber'
    assert len(info.class_map) == engine.config.num_classes == 40
    assert [c.class_name for c in info.class_map] == list(engine.config.class_names)
    assert [(c.r, c.g, c.b) for c in info.class_map] == [
        tuple(int(v) for v in engine.colors[i]) for i in range(40)]
    assert info.unlabeled_id == 255
    assert info.model_name == 'ckpt_nyud_random.pth'
    assert info.max_depth_m == pytest.approx(engine.config.max_depth_m)


def test_diagnostics_report_rates_latencies_device_and_model(client, camera, outputs, image):
    """/diagnostics carries the figures people look at."""
    assert request_outputs(camera, _frame(image), {'depth/image': outputs['depth/image']},
                           _calibration(), OUTPUT_TIMEOUT_S)
    values = _latest_diagnostics(client, lambda s, v: int(v.get('frames_processed', 0)) > 0)
    for key in ('input_rate_hz', 'output_rate_hz', 'inference_ms_mean', 'inference_ms_p99',
                'receive_to_publish_ms_p99', 'overhead_ms_p99',
                'frames_dropped', 'frames_rejected', 'frames_received'):
        assert key in values, key
    # The test stamps (2023) are not on the node's clock: no latency from the stamp.
    assert 'stamp_to_publish_ms_mean' in values or \
        values['stamp_to_publish_ms'].startswith('n/a')
    assert values['state'] == 'active'
    assert values['device'] == 'cpu'
    assert values['model'] == 'ckpt_nyud_random.pth'
    assert values['backend'].startswith('torch')
    assert values['camera_info_received'] == 'True'
    assert float(values['inference_ms_mean']) > 0.0


def test_newest_frame_is_processed_and_older_ones_are_dropped(client, camera, outputs, image):
    """A burst faster than inference: the last frame comes out, every other one is accounted.

    The burst is published back to back, so the node cannot run the network on each; the
    checks hold however loaded the machine is: each frame of the burst ends processed or
    counted as dropped (or lost in transport), and the newest one is always processed.
    """
    depth_log = outputs['depth/image']
    # The node counts frames missing from a publisher's sequence after its first one it saw.
    assert request_outputs(camera, _frame(image), outputs, _calibration(), OUTPUT_TIMEOUT_S)
    before = _latest_diagnostics(client, lambda s, v: True)
    keys = [camera.publish_array(image, 'rgb8', _calibration()) for _ in range(BURST_FRAMES)]
    assert depth_log.wait_for(lambda m: stamp_key(m.header) == keys[-1], OUTPUT_TIMEOUT_S), \
        'the newest frame of the burst was never processed'

    def delta(values, name):
        return int(values[name]) - int(before[name])

    def accounted(status, values) -> bool:
        ended = delta(values, 'frames_processed') + delta(values, 'frames_dropped')
        return ended + delta(values, 'frames_lost_in_transport') >= BURST_FRAMES
    after = _latest_diagnostics(client, accounted)
    processed = [k for k in keys if depth_log.with_stamp(k) is not None]
    assert delta(after, 'frames_processed') == len(processed) < BURST_FRAMES, processed
    assert delta(after, 'frames_processed') + delta(after, 'frames_dropped') + \
        delta(after, 'frames_lost_in_transport') == BURST_FRAMES
    assert delta(after, 'frames_rejected') == 0


def test_invalid_parameters_are_rejected_with_a_reason(client):
    """set_parameters answers successful=False and says why."""
    cases = [('overlay_alpha', 2.0, 'overlay_alpha'), ('backend', 'tensorrt', 'tensorrt'),
             ('device', 'gpu0', 'gpu0'), ('model_path', '/no/such/model.pth', 'existing file'),
             ('inference_width', 10, '>= 32'), ('input_qos', 'reliable', 'read-only'),
             ('confidence_encoding', 'jpeg', 'jpeg'), ('threads', 'four', 'type'),
             ('pipeline', 'on', 'auto, always, never')]
    for name, value, fragment in cases:
        result = client.set_parameter(NODE, name, value)
        assert not result.successful, (name, value)
        assert fragment in result.reason, (name, result.reason)
    assert client.set_parameter(NODE, 'min_depth_m', 5.0).successful
    result = client.set_parameter(NODE, 'max_depth_m', 2.0)
    assert not result.successful and 'min_depth_m' in result.reason
    assert client.set_parameter(NODE, 'min_depth_m', 0.0).successful


def test_malformed_images_are_logged_counted_and_good_frames_keep_flowing(
        client, camera, outputs, node, image):
    """Wrong sizes and unusable encodings: a log line and a count each, then normal output."""
    before = int(_latest_diagnostics(client, lambda s, v: True)['frames_rejected'])
    short = array_to_image(image, 'rgb8', camera.next_header())
    short.data = short.data[:100]
    unknown = array_to_image(image, 'rgb8', camera.next_header())
    unknown.encoding = 'nv12'
    depth_input = array_to_image(np.ones((HEIGHT, WIDTH), np.float32), '32FC1',
                                 camera.next_header())
    for msg, fragment in ((short, 'got 100'), (unknown, "'nv12'"), (depth_input, "'32FC1'")):
        mark = len(node.output())
        camera.publish(msg)
        assert node.wait_for_output(fragment, 20.0, after=mark), node.output()[mark:]
        assert 'rejected a malformed image' in node.output()[mark:]
    values = _latest_diagnostics(client, lambda s, v: int(v['frames_rejected']) >= before + 3)
    assert 'rejected' in values['status'].message
    assert request_outputs(camera, _frame(image), outputs, _calibration(), OUTPUT_TIMEOUT_S)


def test_runtime_parameters_change_outputs(client, camera, outputs, engine, image):
    """Confidence threshold, depth range and output switches apply without a restart.

    Thresholded (unlabelled) pixels have NaN depth too.
    """
    expected = _expected(engine, image)
    threshold = float(np.median(expected.confidence))
    max_depth_m = float(np.nanmedian(expected.depth))
    results = client.set_parameters(NODE, {'confidence_threshold': threshold,
                                           'max_depth_m': max_depth_m})
    assert all(r.successful for r in results), [r.reason for r in results]
    try:
        logs = {t: outputs[t] for t in ('depth/image', 'segmentation/labels')}
        received = request_outputs(camera, _frame(image), logs, _calibration(), OUTPUT_TIMEOUT_S)
        labels = image_to_array(received['segmentation/labels'])
        reference = np.where(expected.confidence < threshold, 255, expected.labels)
        assert np.array_equal(labels, reference)
        assert 0.3 < np.mean(labels == 255) < 0.7
        depth = image_to_array(received['depth/image'])
        assert np.nanmax(depth) <= max_depth_m
        assert np.array_equal(np.isnan(depth), ~(expected.depth <= max_depth_m) |
                              (expected.confidence < threshold))
        label_info = client.subscribe('segmentation/label_info', LabelInfo, LATCHED)
        assert label_info.wait_for(lambda m: abs(m.threshold - threshold) < 1e-6, 20.0)
    finally:
        client.set_parameters(NODE, {'confidence_threshold': 0.0, 'max_depth_m': 0.0})

    assert client.set_parameter(NODE, 'publish_color', False).successful
    assert client.wait_for_publishers('segmentation/color', 0, 20.0)
    assert request_outputs(camera, _frame(image), {'depth/image': outputs['depth/image']},
                           _calibration(), OUTPUT_TIMEOUT_S)
    assert client.set_parameter(NODE, 'publish_color', True).successful
    assert client.wait_for_publishers('segmentation/color', 1, 20.0)


def test_pipelined_publishing_gives_the_same_outputs_and_the_newest_frame(
        client, camera, outputs, engine, image):
    """Pipeline always: the second thread publishes; values, headers, dropping unchanged."""
    assert client.set_parameter(NODE, 'pipeline', 'always').successful
    try:
        received = request_outputs(camera, _frame(image), outputs, _calibration(),
                                   OUTPUT_TIMEOUT_S)
        assert received, 'not every output arrived for one input frame'
        expected = _expected(engine, image)
        assert all(m.header == received['depth/image'].header for m in received.values())
        np.testing.assert_array_equal(image_to_array(received['depth/image']), expected.depth)
        assert np.array_equal(image_to_array(received['segmentation/labels']), expected.labels)
        depth_log = outputs['depth/image']
        keys = [camera.publish_array(image, 'rgb8', _calibration())
                for _ in range(BURST_FRAMES)]
        assert depth_log.wait_for(lambda m: stamp_key(m.header) == keys[-1], OUTPUT_TIMEOUT_S)
        time.sleep(1.0)
        assert len([k for k in keys if depth_log.with_stamp(k) is not None]) < BURST_FRAMES
    finally:
        assert client.set_parameter(NODE, 'pipeline', 'auto').successful


def test_model_swap_at_run_time_and_failed_rebuild_keeps_serving(
        client, camera, outputs, node, engine, image, kitti_checkpoint, nyud_checkpoint,
        tmp_path):
    """A new model_path is loaded in the background and swapped in; a broken one is not."""
    label_info = client.subscribe('segmentation/label_info', LabelInfo, LATCHED)
    logs = {t: outputs[t] for t in ('depth/image', 'segmentation/labels')}
    label_info.clear()
    assert client.set_parameter(NODE, 'model_path', str(kitti_checkpoint)).successful
    assert label_info.wait_for(lambda m: len(m.class_map) == 6, SWAP_TIMEOUT_S), node.output()
    kitti = InferenceEngine(str(kitti_checkpoint), device='cpu', backend='torch',
                            threads=THREADS)
    received = request_outputs(camera, _frame(image), logs, _calibration(), OUTPUT_TIMEOUT_S)
    assert np.array_equal(image_to_array(received['segmentation/labels']),
                          kitti.infer(image).labels)

    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'this is not a checkpoint')
    mark = len(node.output())
    assert client.set_parameter(NODE, 'model_path', str(broken)).successful
    assert node.wait_for_output('cannot build the engine', SWAP_TIMEOUT_S, after=mark)
    assert 'still serving ckpt_kitti_random.pth' in node.output()[mark:]
    received = request_outputs(camera, _frame(image), logs, _calibration(), OUTPUT_TIMEOUT_S)
    assert np.array_equal(image_to_array(received['segmentation/labels']),
                          kitti.infer(image).labels)
    values = _latest_diagnostics(client, lambda s, v: v['engine_error'] != '')
    assert 'broken.pth' in values['engine_error']

    label_info.clear()
    assert client.set_parameter(NODE, 'model_path', str(nyud_checkpoint)).successful
    assert label_info.wait_for(lambda m: len(m.class_map) == 40, SWAP_TIMEOUT_S)
    received = request_outputs(camera, _frame(image), logs, _calibration(), OUTPUT_TIMEOUT_S)
    assert np.array_equal(image_to_array(received['segmentation/labels']),
                          engine.infer(image).labels)
    values = _latest_diagnostics(client, lambda s, v: v['engine_error'] == '')
    assert values['model'] == 'ckpt_nyud_random.pth'


def test_inference_size_and_device_changes_rebuild_the_engine(
        client, camera, outputs, node, nyud_checkpoint, image):
    """Apply a network input size at run time; fail a GPU rebuild without fallback, serving on.

    (The GPU part runs on machines without CUDA.)
    """
    import torch
    logs = {t: outputs[t] for t in ('depth/image', 'segmentation/labels')}
    mark = len(node.output())
    results = client.set_parameters(NODE, {'inference_width': 64, 'inference_height': 48})
    assert all(r.successful for r in results), [r.reason for r in results]
    assert node.wait_for_output('network input 48x64', SWAP_TIMEOUT_S, after=mark)
    small = InferenceEngine(str(nyud_checkpoint), device='cpu', backend='torch',
                            input_size=(48, 64), threads=THREADS)
    received = request_outputs(camera, _frame(image), logs, _calibration(), OUTPUT_TIMEOUT_S)
    labels = image_to_array(received['segmentation/labels'])
    assert labels.shape == (HEIGHT, WIDTH)
    assert np.array_equal(labels, small.infer(image).labels)
    results = client.set_parameters(NODE, {'inference_width': 0, 'inference_height': 0})
    assert all(r.successful for r in results)
    if torch.cuda.is_available():
        return
    mark = len(node.output())
    results = client.set_parameters(NODE, {'device_fallback': False, 'device': 'cuda'})
    assert all(r.successful for r in results)
    assert node.wait_for_output('cannot build the engine', SWAP_TIMEOUT_S, after=mark)
    assert 'CUDA is not available' in node.output()[mark:]
    assert request_outputs(camera, _frame(image), logs, _calibration(), OUTPUT_TIMEOUT_S)
    results = client.set_parameters(NODE, {'device_fallback': True, 'device': 'cpu'})
    assert all(r.successful for r in results)


def test_more_than_255_classes_give_16uc1_labels(client, camera, outputs, node, image,
                                                 nyud_checkpoint, tmp_path):
    """A 300-class model publishes 16UC1 labels and 65535 as the unlabelled id."""
    torch = pytest.importorskip('torch')
    torch.manual_seed(300)
    wide = tmp_path / 'classes300.pth'
    save_hydranet(build_hydranet(HydraNetConfig(num_classes=300, max_depth_m=10.0)), wide)
    label_info = client.subscribe('segmentation/label_info', LabelInfo, LATCHED)
    label_info.clear()
    try:
        assert client.set_parameter(NODE, 'model_path', str(wide)).successful
        info = label_info.wait_for(lambda m: len(m.class_map) == 300, SWAP_TIMEOUT_S)
        assert info is not None, node.output()
        assert info.unlabeled_id == 65535 and info.class_map[299].class_name == 'class_299'
        logs = {t: outputs[t] for t in ('segmentation/labels', 'perception')}
        received = request_outputs(camera, _frame(image), logs, _calibration(), OUTPUT_TIMEOUT_S)
        labels_msg = received['segmentation/labels']
        assert labels_msg.encoding == '16UC1' and labels_msg.step == 2 * WIDTH
        assert received['perception'].labels.encoding == '16UC1'
        expected = InferenceEngine(str(wide), device='cpu', backend='torch', threads=THREADS)
        assert np.array_equal(image_to_array(labels_msg), expected.infer(image).labels)
    finally:
        label_info.clear()
        assert client.set_parameter(NODE, 'model_path', str(nyud_checkpoint)).successful
        assert label_info.wait_for(lambda m: len(m.class_map) == 40, SWAP_TIMEOUT_S)
