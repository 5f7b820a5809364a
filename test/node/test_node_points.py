"""depth/points and trusted depth over DDS: the node's labelled cloud, sky NaN, metric scale.

One node (the bundled model, whose classes include sky) gets the KITTI sample with a
calibration made at twice the image size with an off-centre principal point; this process
checks the cloud against the node's own published depth, labels and depth/camera_info.
"""
import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the node tests need ROS 2 '
                                    '(pip install -r requirements-ros.txt or a ROS install)')

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile,  # noqa: E402
                       ReliabilityPolicy)
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from hydranet_ros.data.scene_generator import FOCAL_LENGTH_PER_WIDTH  # noqa: E402
from hydranet_ros.engine import InferenceEngine  # noqa: E402
from hydranet_ros.node.messages import array_to_image, image_to_array  # noqa: E402
from node_harness import (camera_info, CameraPublisher, make_header,  # noqa: E402
                          reference_prediction, request_outputs, running_node, sample_rgb)

NODE = 'hydranet_points_node'
THREADS = 2
WIDTH, HEIGHT = 400, 120
SAMPLE = 'kitti_000099.png'
SKY, BUILDING, ROAD, CAR = 0, 1, 2, 5
TRAINING_SIZE = (96, 320)  # the bundled model's network input
OUTPUT_TIMEOUT_S = 40.0
RELATIVE_TOLERANCE = 1e-4
BEST_EFFORT = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.VOLATILE)
TOPICS = {'depth/image': Image, 'depth/camera_info': CameraInfo, 'segmentation/labels': Image,
          'segmentation/confidence': Image}
POINT_TYPES = {1: 'i1', 2: 'u1', 3: '<i2', 4: '<u2', 5: '<i4', 6: '<u4', 7: '<f4', 8: '<f8'}


@pytest.fixture(scope='module')
def ros(tmp_path_factory):
    """Start the node with depth/points on; stop it after the module."""
    with running_node(tmp_path_factory.mktemp('points'), NODE,
                      {'publish_points': True, 'threads': THREADS},
                      'hydranet_points_client') as running:
        yield running


@pytest.fixture(scope='module')
def logs(ros):
    """Subscribe to depth, labels, confidence, camera_info and the cloud (best effort)."""
    node, client = ros
    result = {topic: client.subscribe(topic, msg_type) for topic, msg_type in TOPICS.items()}
    result['depth/points'] = client.subscribe('depth/points', PointCloud2, BEST_EFFORT)
    for topic in result:
        assert client.wait_for_publishers(topic), f'the node does not publish {topic}'
    return result


@pytest.fixture(scope='module')
def camera(ros) -> CameraPublisher:
    """Return a camera publisher on the node's input topics."""
    publisher = CameraPublisher(ros[1])
    assert ros[1].wait_for_subscriber(publisher.images), 'the node never subscribed to image'
    return publisher


@pytest.fixture(scope='module')
def image() -> np.ndarray:
    """Return the KITTI sample at test size."""
    return sample_rgb(SAMPLE, WIDTH, HEIGHT)


@pytest.fixture(scope='module')
def engine() -> InferenceEngine:
    """Return the engine the node runs, for reference results."""
    return InferenceEngine(None, threads=THREADS)


def _calibration() -> CameraInfo:
    """Return a calibration made at twice the image size, principal point off the centre."""
    info = camera_info(2 * WIDTH, 2 * HEIGHT, make_header(0), hfov_deg=60.0)
    info.k[2] += 25.0
    info.k[5] -= 14.0
    info.p[2], info.p[6] = info.k[2], info.k[5]
    return info


def _request(camera, image, logs) -> dict:
    received = request_outputs(camera, lambda header: array_to_image(image, 'rgb8', header),
                               logs, _calibration(), OUTPUT_TIMEOUT_S)
    assert received, 'not every output arrived for one input frame'
    return received


def cloud_array(msg: PointCloud2) -> np.ndarray:
    """Read a PointCloud2 into a structured array by its own field list."""
    dtype = np.dtype({'names': [f.name for f in msg.fields],
                      'formats': [POINT_TYPES[f.datatype] for f in msg.fields],
                      'offsets': [f.offset for f in msg.fields], 'itemsize': msg.point_step})
    assert msg.row_step == msg.point_step * msg.width and not msg.is_bigendian
    points = np.frombuffer(bytes(msg.data), dtype)
    return points.reshape(msg.height, msg.width) if msg.height > 1 else points


def _back_projection(depth: np.ndarray, k, step: int = 1):
    rows, cols = np.mgrid[0:depth.shape[0]:step, 0:depth.shape[1]:step]
    z = depth[rows, cols].astype(np.float64)
    return (cols - k[2]) * z / k[0], (rows - k[5]) * z / k[4], z


def _assert_points(cloud, x, y, z):
    for name, expected in (('x', x), ('y', y), ('z', z)):
        np.testing.assert_allclose(cloud[name], expected, rtol=RELATIVE_TOLERANCE, atol=1e-6,
                                   err_msg=name)


def test_cloud_is_the_back_projection_of_the_published_depth(camera, logs, image, engine):
    """Header, grid, x y z through the published K, labels, confidence, colour, NaN."""
    received = _request(camera, image, logs)
    header = received['depth/image'].header
    assert all(msg.header == header for msg in received.values())
    assert header.frame_id == 'camera_optical_frame'
    msg = received['depth/points']
    assert (msg.height, msg.width) == (HEIGHT, WIDTH)
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [
        ('x', 0, 7), ('y', 4, 7), ('z', 8, 7), ('rgb', 12, 7), ('label', 16, 6),
        ('confidence', 20, 7)]
    cloud = cloud_array(msg)
    depth = image_to_array(received['depth/image'])
    info = received['depth/camera_info']
    assert info.k[2] != pytest.approx((WIDTH - 1) / 2.0)  # the principal point is off-centre
    _assert_points(cloud, *_back_projection(depth, info.k))
    assert np.array_equal(np.isnan(cloud['z']), np.isnan(depth))
    assert not msg.is_dense
    labels = image_to_array(received['segmentation/labels'])
    assert np.array_equal(cloud['label'], labels)
    np.testing.assert_array_equal(cloud['confidence'],
                                  image_to_array(received['segmentation/confidence']))
    bits = cloud['rgb'].view(np.uint32)
    assert np.array_equal(np.stack([bits >> 16 & 255, bits >> 8 & 255, bits & 255], -1), image)

    # Sky is NaN (REP 118), and so nothing of it is in the cloud.
    sky = labels == SKY
    assert sky.mean() > 0.01, 'the sample shows no sky'
    assert np.isnan(depth[sky]).all() and np.isnan(cloud['x'][sky]).all()
    assert np.isfinite(depth[~sky]).mean() > 0.99

    # The depth is the network's, rescaled by the camera's focal length over the training
    # camera's, both at the network input (96x320): computed here from the published K.
    raw = engine.infer(image, with_overlay=False).depth
    focal_at_input = 0.5 * (info.k[0] * TRAINING_SIZE[1] / WIDTH
                            + info.k[4] * TRAINING_SIZE[0] / HEIGHT)
    scale = focal_at_input / (FOCAL_LENGTH_PER_WIDTH * TRAINING_SIZE[1])
    assert scale > 1.3
    valid = ~sky
    np.testing.assert_allclose(depth[valid], raw[valid] * scale, rtol=1e-3, atol=1e-3)
    expected = reference_prediction(engine, image, info)
    assert np.array_equal(np.isnan(expected.depth), np.isnan(depth))


def test_field_profiles_filters_and_decimation_apply_at_run_time(ros, camera, logs, image):
    """Autoware fields, decimation 3, a class and depth filter, unorganised then organised."""
    node, client = ros
    changes = {'points_fields': 'autoware', 'points_decimation': 3,
               'points_drop_classes': ['road'], 'points_max_depth_m': 30.0,
               'points_organized': False}
    results = client.set_parameters(NODE, changes)
    assert all(r.successful for r in results), [r.reason for r in results]
    try:
        received = _request(camera, image, logs)
        msg = received['depth/points']
        assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [
            ('x', 0, 7), ('y', 4, 7), ('z', 8, 7), ('class_id', 12, 2), ('probability', 16, 7)]
        assert msg.point_step == 20 and msg.height == 1 and msg.is_dense
        depth = image_to_array(received['depth/image'])[::3, ::3]
        labels = image_to_array(received['segmentation/labels'])[::3, ::3]
        confidence = image_to_array(received['segmentation/confidence'])[::3, ::3]
        with np.errstate(invalid='ignore'):
            kept = np.isfinite(depth) & (labels != ROAD) & (depth <= 30.0)
        cloud = cloud_array(msg)
        assert cloud.shape == (int(kept.sum()),) and 0 < cloud.size < depth.size
        x, y, z = _back_projection(image_to_array(received['depth/image']),
                                   received['depth/camera_info'].k, 3)
        _assert_points(cloud, x[kept], y[kept], z[kept])
        assert np.array_equal(cloud['class_id'], labels[kept])
        np.testing.assert_array_equal(cloud['probability'], confidence[kept])

        results = client.set_parameters(NODE, {'points_organized': True,
                                               'points_drop_classes': [],
                                               'points_keep_classes': ['Car', 'building']})
        assert all(r.successful for r in results), [r.reason for r in results]
        received = _request(camera, image, logs)
        cloud = cloud_array(received['depth/points'])
        depth = image_to_array(received['depth/image'])
        labels = image_to_array(received['segmentation/labels'])[::3, ::3]
        assert cloud.shape == (-(-HEIGHT // 3), -(-WIDTH // 3))
        with np.errstate(invalid='ignore'):
            kept = np.isfinite(depth[::3, ::3]) & np.isin(labels, (CAR, BUILDING)) & \
                (depth[::3, ::3] <= 30.0)
        assert np.array_equal(np.isfinite(cloud['z']), kept) and kept.any()
        assert np.array_equal(cloud['class_id'], labels)
    finally:
        results = client.set_parameters(NODE, {
            'points_fields': 'pcl', 'points_decimation': 1, 'points_keep_classes': [],
            'points_drop_classes': [], 'points_max_depth_m': 0.0, 'points_organized': True})
        assert all(r.successful for r in results), [r.reason for r in results]


def test_depth_rules_follow_their_parameters(ros, camera, logs, image, engine):
    """depth_scale none (warned), invalid classes, min_confidence; bad values refused."""
    node, client = ros
    raw = engine.infer(image, with_overlay=False)
    mark = len(node.output())
    results = client.set_parameters(NODE, {'depth_scale': 'none', 'min_confidence': 0.6,
                                           'invalid_depth_classes': ['sky', 'car', 'tree']})
    assert all(r.successful for r in results), [r.reason for r in results]
    try:
        received = _request(camera, image, logs)
        depth = image_to_array(received['depth/image'])
        labels = image_to_array(received['segmentation/labels'])
        confidence = image_to_array(received['segmentation/confidence'])
        invalid = np.isin(labels, (SKY, CAR)) | (confidence < 0.6)
        assert invalid.any() and (~invalid).any()
        assert np.isnan(depth[invalid]).all()
        np.testing.assert_allclose(depth[~invalid], raw.depth[~invalid], rtol=1e-3, atol=1e-3)
        assert node.wait_for_output('depth_scale is none', 20.0, after=mark), node.output()
        assert "the model has no class 'tree'" in node.output()[mark:]

        assert client.set_parameters(NODE, {'invalid_depth_classes': [],
                                            'min_confidence': 0.0})[0].successful
        received = _request(camera, image, logs)
        depth = image_to_array(received['depth/image'])
        assert np.isfinite(depth[image_to_array(received['segmentation/labels']) == SKY]).all()
    finally:
        results = client.set_parameters(NODE, {'depth_scale': 'intrinsics',
                                               'min_confidence': 0.0,
                                               'invalid_depth_classes': ['sky']})
        assert all(r.successful for r in results), [r.reason for r in results]
    for name, value, fragment in (('depth_scale', 'focal', 'intrinsics, none'),
                                  ('points_fields', 'xyzi', 'pcl, autoware'),
                                  ('points_decimation', 0, 'out of range'),
                                  ('points_keep_classes', 'car', 'type'),
                                  ('points_qos', 'reliable', 'read-only')):
        result = client.set_parameter(NODE, name, value)
        assert not result.successful and fragment in result.reason, (name, result.reason)
    assert client.set_parameter(NODE, 'points_min_depth_m', 5.0).successful
    result = client.set_parameter(NODE, 'points_max_depth_m', 2.0)
    assert not result.successful and 'points_min_depth_m' in result.reason
    assert client.set_parameter(NODE, 'points_min_depth_m', 0.0).successful
