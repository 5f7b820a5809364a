"""One house: a real frame through the node and through hydranet-infer gives the same result.

Both run with their default settings (the bundled model, so both must run it at the training
size its checkpoint records, and the same depth rules: sky NaN, depth rescaled by the camera's
focal length); the node gets the KITTI sample and its camera_info over DDS, the tool reads the
same PNG from disk and is given the same focal length.
"""
import subprocess
import sys

import cv2
import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

from sensor_msgs.msg import Image  # noqa: E402

from hydranet_ros.node.messages import array_to_image, image_to_array  # noqa: E402
from node_harness import (CameraPublisher, RosClient, TestEnvironment, camera_info,  # noqa: E402
                          make_header, request_outputs, start_node)
from ros_test_support import REPO_ROOT  # noqa: E402

SAMPLE = REPO_ROOT / 'hydranet_ros' / 'assets' / 'samples' / 'kitti_000099.png'
OUTPUT_TIMEOUT_S = 60.0
TOOL_TIMEOUT_S = 300.0
DEPTH_RELATIVE_TOLERANCE = 1e-3
MIN_LABEL_AGREEMENT = 0.999


@pytest.fixture(scope='module')
def node_outputs(tmp_path_factory):
    """Return depth and labels the node publishes for the sample, with default parameters."""
    rgb = cv2.cvtColor(cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    environment = TestEnvironment(tmp_path_factory.mktemp('node_vs_tool'))
    environment.enter()
    node = start_node(environment, 'hydranet_house_node', {})
    client = RosClient('hydranet_house_client')
    try:
        assert node.wait_for_output('active:'), node.output()
        camera = CameraPublisher(client)
        assert client.wait_for_subscriber(camera.images), 'the node never subscribed to image'
        logs = {topic: client.subscribe(topic, Image)
                for topic in ('depth/image', 'segmentation/labels')}
        received = request_outputs(camera, lambda header: array_to_image(rgb, 'rgb8', header),
                                   logs, camera_info(width, height, make_header(0)),
                                   OUTPUT_TIMEOUT_S)
        assert received, node.output()
        yield (image_to_array(received['depth/image']).copy(),
               image_to_array(received['segmentation/labels']).copy(), node.output())
    finally:
        client.close()
        node.stop()
        environment.exit()


def _focal_px() -> float:
    width, height = cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR).shape[1::-1]
    return camera_info(width, height, make_header(0)).k[0]


def test_node_and_infer_give_the_same_depth_and_labels(node_outputs, tmp_path):
    """Depth within 1e-3 relative (NaN in the same pixels, sky among them), labels 99.9%."""
    node_depth, node_labels, node_log = node_outputs
    result = subprocess.run([sys.executable, '-m', 'hydranet_ros.tools.infer', str(SAMPLE),
                             '--out', str(tmp_path), '--outputs', 'depth_npy,labels',
                             '--focal-px', str(float(_focal_px()))],
                            capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    tool_depth = np.load(tmp_path / 'kitti_000099_depth.npy')
    tool_labels = cv2.imread(str(tmp_path / 'kitti_000099_labels.png'), cv2.IMREAD_UNCHANGED)
    assert tool_depth.shape == node_depth.shape and tool_labels.shape == node_labels.shape
    assert np.array_equal(np.isnan(tool_depth), np.isnan(node_depth))
    valid = ~np.isnan(node_depth)
    np.testing.assert_allclose(node_depth[valid], tool_depth[valid],
                               rtol=DEPTH_RELATIVE_TOLERANCE)
    assert np.mean(node_labels == tool_labels) >= MIN_LABEL_AGREEMENT
    sky = node_labels == 0
    assert sky.any() and np.isnan(node_depth[sky]).all() and np.isnan(tool_depth[sky]).all()
    # Both say what they really run: the size the bundled checkpoint was trained at.
    assert 'network input 96x320' in node_log
    assert 'network input 96x320' in result.stdout + result.stderr
