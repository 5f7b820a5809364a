"""hydranet_demo_source in its own process: images, camera_info and compressed frames."""
import math

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from hydranet_ros.data.scene_generator import FOCAL_LENGTH_PER_WIDTH  # noqa: E402
from hydranet_ros.node.messages import compressed_to_array, image_to_array  # noqa: E402
from node_harness import (DEMO_SOURCE_MODULE, ManagedProcess, RosClient,  # noqa: E402
                          TestEnvironment, sample_rgb, stamp_key)

WIDTH, HEIGHT = 160, 120
TIMEOUT_S = 60.0


def _start(environment: TestEnvironment, namespace: str, *parameters: str) -> ManagedProcess:
    args = ['--ros-args', '-r', f'__ns:=/{namespace}', '-p', 'rate_hz:=20.0',
            '-p', f'width:={WIDTH}', '-p', f'height:={HEIGHT}']
    for parameter in parameters:
        args += ['-p', parameter]
    return ManagedProcess(DEMO_SOURCE_MODULE, args, environment.env,
                          environment.tmp_dir / f'{namespace}.log')


def test_demo_source_publishes_samples_and_generated_scenes_like_a_camera(tmp_path):
    """Paired image and camera_info stamps, the optical frame, a plausible K, compressed PNG."""
    environment = TestEnvironment(tmp_path)
    environment.enter()
    samples = _start(environment, 'samples', 'publish_compressed:=true',
                     'seconds_per_image:=0.0')
    generated = _start(environment, 'generated', 'source:=generated', 'generated_count:=1')
    client = RosClient('demo_source_test_client')
    try:
        logs = {name: client.subscribe(name, msg_type) for name, msg_type in (
            ('/samples/image', Image), ('/samples/camera_info', CameraInfo),
            ('/samples/image/compressed', CompressedImage), ('/generated/image', Image),
            ('/generated/camera_info', CameraInfo))}
        for name, log in logs.items():
            assert log.wait_for(lambda m: True, TIMEOUT_S), (name, samples.output(),
                                                             generated.output())
        image = logs['/samples/image'].wait_for(
            lambda m: logs['/samples/camera_info'].with_stamp(stamp_key(m.header)) is not None
            and logs['/samples/image/compressed'].with_stamp(stamp_key(m.header)) is not None,
            TIMEOUT_S)
        assert image is not None, 'image, camera_info and compressed never shared a stamp'
        info = logs['/samples/camera_info'].with_stamp(stamp_key(image.header))
        compressed = logs['/samples/image/compressed'].with_stamp(stamp_key(image.header))
        assert image.header.frame_id == info.header.frame_id == 'camera_optical_frame'
        assert (image.encoding, image.width, image.height) == ('rgb8', WIDTH, HEIGHT)
        assert (info.width, info.height) == (WIDTH, HEIGHT)
        assert 2 * math.degrees(math.atan(WIDTH / 2 / info.k[0])) == pytest.approx(60.0)
        pixels = image_to_array(image)
        decoded, encoding = compressed_to_array(compressed)
        assert encoding == 'bgr8' and np.array_equal(decoded[:, :, ::-1], pixels)
        shipped = [sample_rgb(name, WIDTH, HEIGHT)
                   for name in ('kitti_000099.png', 'nyud_000464.png')]
        assert any(np.array_equal(pixels, sample) for sample in shipped)

        scene = logs['/generated/image'].messages[-1]
        scene_info = logs['/generated/camera_info'].messages[-1]
        assert (scene.width, scene.height, scene.encoding) == (WIDTH, HEIGHT, 'rgb8')
        assert scene_info.k[0] == pytest.approx(FOCAL_LENGTH_PER_WIDTH * WIDTH)
    finally:
        client.close()
        codes = [samples.stop(), generated.stop()]
        environment.exit()
    assert codes == [0, 0], (samples.output(), generated.output())
