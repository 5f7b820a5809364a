"""Point clouds written straight to CDR bytes deserialise to the PointCloud2 rclpy would make."""
import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed')

from rclpy.serialization import deserialize_message  # noqa: E402
from sensor_msgs.msg import PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from hydranet_ros.engine.geometry import (AUTOWARE, CloudFilter, PCL,  # noqa: E402
                                          PinholeIntrinsics, build_cloud)
from hydranet_ros.node.messages import (ImageConversionError, point_fields,  # noqa: E402
                                        serialize_point_cloud)

HEIGHT, WIDTH = 9, 13


def _cloud(profile: str, organized: bool) -> np.ndarray:
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 9.0, (HEIGHT, WIDTH)).astype(np.float32)
    depth[0, :4] = np.nan
    labels = rng.integers(0, 5, (HEIGHT, WIDTH)).astype(np.uint8)
    confidence = rng.random((HEIGHT, WIDTH)).astype(np.float32)
    rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    return build_cloud(depth, PinholeIntrinsics(11.0, 12.0, 6.5, 4.25), labels, confidence,
                       rgb, profile, cloud_filter=CloudFilter(drop_ids=(4,)),
                       organized=organized)


@pytest.mark.parametrize('profile', [PCL, AUTOWARE])
@pytest.mark.parametrize('organized', [True, False])
@pytest.mark.parametrize('frame_id', ['', 'c', 'camera_optical_frame', 'x' * 31])
def test_fields_and_points_equal_the_message_built_by_hand(profile, organized, frame_id):
    """Every alignment of the fields after the frame id; organised and unorganised."""
    cloud = _cloud(profile, organized)
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = 1_700_000_123, 456_789
    height, width = cloud.shape if organized else (1, cloud.shape[0])
    expected = PointCloud2(
        header=header, height=height, width=width, is_bigendian=False,
        fields=[PointField(name=n, offset=o, datatype=t, count=1)
                for n, o, t in point_fields(cloud.dtype)],
        point_step=cloud.dtype.itemsize, row_step=cloud.dtype.itemsize * width,
        data=np.ascontiguousarray(cloud).reshape(-1).view(np.uint8).tobytes(),
        is_dense=not organized)
    received = deserialize_message(serialize_point_cloud(cloud, header), PointCloud2)
    assert received == expected
    names = [f.name for f in received.fields]
    assert names == list(cloud.dtype.names)


def test_types_are_described_and_bad_clouds_refused():
    """Describe the profiles with PointField types; refuse 3-D arrays and other types."""
    assert [t for _, _, t in point_fields(_cloud(PCL, True).dtype)] == [7, 7, 7, 7, 6, 7]
    assert [t for _, _, t in point_fields(_cloud(AUTOWARE, True).dtype)] == [7, 7, 7, 2, 7]
    with pytest.raises(ImageConversionError, match='height, width'):
        serialize_point_cloud(np.zeros((2, 2, 2), _cloud(PCL, True).dtype), Header())
    with pytest.raises(ImageConversionError, match='PointField'):
        point_fields(np.dtype([('x', '<f4'), ('when', '<M8[s]')]))
