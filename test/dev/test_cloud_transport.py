"""The cloud transport benchmark sends real clouds over DDS and reports what they cost."""
import json

import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed')

from std_msgs.msg import Header  # noqa: E402

from dev.bench import cloud_transport  # noqa: E402
from hydranet_ros.engine.geometry import build_cloud, PinholeIntrinsics  # noqa: E402
from hydranet_ros.node.messages import serialize_point_cloud  # noqa: E402

WIDTH, HEIGHT = 64, 48


def expected_bytes(decimation: int) -> int:
    """Return the size of the serialised cloud the benchmark publishes."""
    depth, labels, confidence, rgb = cloud_transport.frame(WIDTH, HEIGHT)
    cloud = build_cloud(depth, PinholeIntrinsics(50.0, 50.0, 32.0, 24.0), labels, confidence,
                        rgb, 'pcl', decimation)
    return len(serialize_point_cloud(cloud, Header(frame_id=cloud_transport.FRAME_ID)))


def test_reports_each_decimation_against_the_first(capsys):
    """Two decimations, side by side: sizes exact, clouds delivered, ratios to the first."""
    assert cloud_transport.main(['--width', str(WIDTH), '--height', str(HEIGHT),
                                 '--decimations', '1', '2', '--seconds', '1',
                                 '--rate', '10']) == 0
    report = json.loads(capsys.readouterr().out)
    assert report['image'] == f'{HEIGHT}x{WIDTH}'
    first, second = report['runs']
    assert [first['decimation'], second['decimation']] == [1, 2]
    assert [first['points'], second['points']] == [WIDTH * HEIGHT, WIDTH * HEIGHT // 4]
    assert [first['cloud_bytes'], second['cloud_bytes']] == [expected_bytes(1),
                                                             expected_bytes(2)]
    assert second['cloud_bytes_ratio_to_first'] == second['cloud_bytes'] / first['cloud_bytes']
    for run in report['runs']:
        assert run['clouds_sent'] == 10
        assert 1 <= run['clouds_received'] <= run['clouds_sent']
        assert run['publisher_cpu_ms_per_cloud'] > 0.0
        assert run['build_ms_median'] > 0.0


def test_the_frame_is_a_plane_in_range():
    """The published depth lies between the near and far distances, in several classes."""
    depth, labels, confidence, rgb = cloud_transport.frame(WIDTH, HEIGHT)
    assert depth.shape == labels.shape == confidence.shape == rgb.shape[:2] == (HEIGHT, WIDTH)
    assert cloud_transport.NEAR_M <= depth.min() < depth.max() <= cloud_transport.FAR_M
    assert 1 < len(set(labels.ravel().tolist())) and labels.max() < 40


def test_rejects_a_decimation_below_one():
    """A decimation of 0 is refused before anything starts."""
    with pytest.raises(SystemExit):
        cloud_transport.parse_args(['--decimations', '1', '0'])
