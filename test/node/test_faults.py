"""Faults around hydranet_node, each made real: stopped camera, missing camera_info, no GPU.

Also frames too big for memory, and signals.

One node per module in its own process over real DDS, asked for ``device: cuda`` with
``device_fallback`` on a machine without CUDA, with a small random-weight model. The memory
fault is a real one: the node process gets an address-space limit (``prlimit``) just above
what it uses, and a frame whose inference needs more.
"""
import resource
import signal
import time

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from hydranet_ros.node.messages import array_to_image  # noqa: E402
from dev.reliability.node_watch import write_random_checkpoint  # noqa: E402
from node_harness import (CameraPublisher, RosClient, TestEnvironment,  # noqa: E402
                          camera_info, diagnostic_values, make_header, request_outputs,
                          running_node, sample_rgb, start_node)

NODE = 'hydranet_faults_node'
WIDTH, HEIGHT = 64, 48
INPUT_TIMEOUT_S = 1.0
MAX_INPUT_PIXELS = 200 * 200
OUTPUT_TIMEOUT_S = 60.0
LOG_TIMEOUT_S = 20.0
FRAME_PERIOD_S = 0.1
MEMORY_HEADROOM_BYTES = 96 * 1024 * 1024
HUGE_SIDE_PX = (2400, 1800)  # (width, height): inference needs far more than the headroom
SIGNAL_EXIT_TIMEOUT_S = 30.0  # a hang, not a slow machine: it ends in ~1-3 s
OUTPUTS = {'depth/image': Image, 'depth/camera_info': CameraInfo}


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> str:
    """Return a small random-weight checkpoint."""
    return write_random_checkpoint(str(tmp_path_factory.mktemp('model') / 'random4.pth'), 4)


@pytest.fixture(scope='module')
def ros(tmp_path_factory, model):
    """Start the node (cuda asked, CPU fallback allowed) and a client on a private domain."""
    with running_node(tmp_path_factory.mktemp('faults'), NODE, {
            'model_path': model, 'backend': 'torch', 'device': 'cuda', 'device_fallback': True,
            'threads': 1, 'input_timeout_s': INPUT_TIMEOUT_S,
            'max_input_pixels': MAX_INPUT_PIXELS}, 'hydranet_faults_client') as running:
        yield running


@pytest.fixture(scope='module')
def outputs(client):
    """Subscribe to depth and its camera_info for the whole module."""
    logs = {topic: client.subscribe(topic, msg_type) for topic, msg_type in OUTPUTS.items()}
    assert client.wait_for_publishers('depth/image')
    return logs


@pytest.fixture(scope='module')
def image() -> np.ndarray:
    """Return a real sample picture at test size."""
    return sample_rgb(width=WIDTH, height=HEIGHT)


def _frame(image: np.ndarray):
    return lambda header: array_to_image(image, 'rgb8', header)


def _diagnostics(client: RosClient, predicate, timeout_s: float = LOG_TIMEOUT_S) -> dict:
    log = client.subscribe('/diagnostics', DiagnosticArray)
    log.clear()

    def values(msg):
        status = [s for s in msg.status if s.name.startswith(f'{NODE}:')]
        return ({'message': status[0].message, 'level': status[0].level,
                 **diagnostic_values(status[0])} if status else None)
    msg = log.wait_for(lambda m: values(m) is not None and predicate(values(m)), timeout_s)
    assert msg is not None, 'no matching diagnostics from the node'
    return values(msg)


def _answered(camera, outputs, image) -> bool:
    return bool(request_outputs(camera, _frame(image), {'depth/image': outputs['depth/image']},
                                timeout_s=OUTPUT_TIMEOUT_S))


def test_cuda_without_a_gpu_falls_back_to_the_cpu_and_says_why(node, client):
    """device: cuda with device_fallback on a machine without CUDA serves on the CPU."""
    if _cuda_available():
        pytest.skip('this machine has CUDA: there is nothing to fall back from')
    assert 'CUDA is not available' in node.output()
    assert 'falling back to the CPU' in node.output()
    assert _diagnostics(client, lambda v: True)['device'] == 'cpu'


def test_outputs_flow_without_camera_info_and_a_broken_one_is_refused(
        node, client, camera, outputs, image):
    """No camera_info: outputs flow, a warning names the topic; NaN intrinsics are refused."""
    assert _answered(camera, outputs, image), node.output()
    deadline = time.monotonic() + LOG_TIMEOUT_S
    while 'no camera_info received on' not in node.output() and time.monotonic() < deadline:
        camera.publish_array(image, 'rgb8')
        time.sleep(FRAME_PERIOD_S * 3)
    assert 'no camera_info received on /camera_info' in node.output()
    assert not outputs['depth/camera_info'].messages
    values = _diagnostics(client, lambda v: True)
    assert values['camera_info_received'] == 'False'
    assert 'no camera_info received' in values['message']

    broken = camera_info(WIDTH, HEIGHT, make_header(0))
    broken.k = [float('nan')] + list(broken.k[1:])
    mark = len(node.output())
    camera.publish_array(image, 'rgb8', broken)
    assert node.wait_for_output('rejected camera_info', LOG_TIMEOUT_S, after=mark)
    assert 'K has non-finite values' in node.output()[mark:]
    values = _diagnostics(client, lambda v: int(v['camera_info_rejected']) >= 1)
    assert 'camera_info rejected' in values['message']
    assert not outputs['depth/camera_info'].messages

    good = camera_info(WIDTH, HEIGHT, make_header(0))
    received = request_outputs(camera, _frame(image), outputs, good, OUTPUT_TIMEOUT_S)
    assert received, 'no depth/camera_info once a valid camera_info arrived'
    assert list(received['depth/camera_info'].k) == list(good.k)


def test_camera_stop_is_reported_and_outputs_resume_after_restart(
        node, client, camera, outputs, image):
    """A silent camera turns the diagnostics to WARN (input stale); outputs resume after."""
    for _ in range(5):
        camera.publish_array(image, 'rgb8')
        time.sleep(FRAME_PERIOD_S)
    mark = len(node.output())
    assert node.wait_for_output('input stale', LOG_TIMEOUT_S, after=mark), node.output()[mark:]
    values = _diagnostics(client, lambda v: 'input stale' in v['message'])
    assert values['level'] == DiagnosticStatus.WARN
    assert float(values['seconds_since_last_image']) > INPUT_TIMEOUT_S
    gaps_before = int(values['input_gaps'])

    assert _answered(camera, outputs, image), 'no output after the camera restarted'
    assert node.wait_for_output('images resumed on /image after a gap of', LOG_TIMEOUT_S,
                                after=mark)
    values = _diagnostics(client, lambda v: int(v['input_gaps']) > gaps_before)
    assert float(values['longest_input_gap_s']) > INPUT_TIMEOUT_S


def test_frame_over_max_input_pixels_is_rejected_before_inference(
        node, client, camera, outputs, image):
    """A complete but huge frame is refused on arrival; the next good frame is answered."""
    mark = len(node.output())
    huge = np.zeros((300, 300, 3), np.uint8)
    camera.publish_array(huge, 'rgb8')
    assert node.wait_for_output('too_large', LOG_TIMEOUT_S, after=mark), node.output()[mark:]
    assert f'more than max_input_pixels {MAX_INPUT_PIXELS}' in node.output()[mark:]
    _diagnostics(client, lambda v: int(v['frames_rejected_too_large']) >= 1)
    assert _answered(camera, outputs, image)


def _virtual_memory_bytes(pid: int) -> int:
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmSize:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('no VmSize')


def test_out_of_memory_in_inference_rejects_the_frame_and_the_node_lives(
        node, client, camera, outputs, image):
    """A real memory limit: the frame that exceeds it is rejected, the next one is answered."""
    pid = node.process.pid
    assert client.set_parameter(NODE, 'max_input_pixels', 16_000_000).successful
    assert _answered(camera, outputs, image)
    previous = resource.prlimit(pid, resource.RLIMIT_AS)
    limit = _virtual_memory_bytes(pid) + MEMORY_HEADROOM_BYTES
    mark = len(node.output())
    try:
        resource.prlimit(pid, resource.RLIMIT_AS, (limit, previous[1]))
        width, height = HUGE_SIDE_PX
        camera.publish_array(np.full((height, width), 128, np.uint8), 'mono8')
        assert node.wait_for_output('out of memory while processing', OUTPUT_TIMEOUT_S,
                                    after=mark), node.output()[mark:]
    finally:
        if node.process.poll() is None:
            resource.prlimit(pid, resource.RLIMIT_AS, previous)
    assert node.process.poll() is None, node.output()[mark:]
    assert f'{width}x{height}' in node.output()[mark:]
    values = _diagnostics(client, lambda v: int(v['frames_rejected_out_of_memory']) >= 1)
    assert int(values['frames_failed']) == 0
    assert _answered(camera, outputs, image), 'no output after the out-of-memory frame'
    assert client.set_parameter(NODE, 'max_input_pixels', MAX_INPUT_PIXELS).successful


def _stream_until(camera: CameraPublisher, image: np.ndarray, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        camera.publish_array(image, 'rgb8')
        time.sleep(FRAME_PERIOD_S / 2)


def test_start_failure_without_fallback_and_prompt_shutdown_on_signals(tmp_path, model, image):
    """Without fallback cuda ends the start (1, why); SIGINT/SIGTERM: exit 0 within ~2 s."""
    environment = TestEnvironment(tmp_path)
    common = {'model_path': model, 'backend': 'torch', 'device': 'cpu', 'threads': 1}
    processes = {name: start_node(environment, f'hydranet_{name}', common, [f'__ns:=/{name}'])
                 for name in ('sigint', 'sigterm')}
    if not _cuda_available():
        processes['no_fallback'] = start_node(environment, 'hydranet_no_fallback', {
            **common, 'device': 'cuda', 'device_fallback': False})
    environment.enter()
    client = RosClient('hydranet_signal_client')
    try:
        if 'no_fallback' in processes:
            failing = processes['no_fallback']
            assert failing.wait_exit() == 1, failing.output()
            assert "device 'cuda' requested but CUDA is not available" in failing.output()
            assert 'Traceback' not in failing.output()
        for name, signal_number in (('sigint', signal.SIGINT), ('sigterm', signal.SIGTERM)):
            process = processes[name]
            assert process.wait_for_output('active:'), process.output()
            camera = CameraPublisher(client, f'/{name}/image', None)
            depth = client.subscribe(f'/{name}/depth/image', Image)
            assert client.wait_for_subscriber(camera.images)
            _stream_until(camera, image, 1.0)
            assert depth.wait_for(lambda m: True, OUTPUT_TIMEOUT_S), process.output()
            process.process.send_signal(signal_number)
            code = process.wait_exit(SIGNAL_EXIT_TIMEOUT_S)
            assert code == 0, (name, code, process.output())
            assert 'Traceback' not in process.output(), process.output()
    finally:
        client.close()
        environment.exit()
        for process in processes.values():
            process.stop()
