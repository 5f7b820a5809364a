"""Images read from and written to their serialised form agree with rclpy's serialiser."""
import random

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed')

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from hydranet_ros.node.messages import array_to_image, image_to_array  # noqa: E402
from hydranet_ros.node.messages import (SerializedImage,  # noqa: E402
                                        SerializedImageError, serialize_image)

ENCODINGS = ('rgb8', 'bgr8', 'mono8', 'rgba8', '16UC1', '32FC1', 'yuv422', '')


def _random_image(rng: random.Random) -> Image:
    msg = Image(height=rng.randint(0, 7), width=rng.randint(0, 9),
                encoding=rng.choice(ENCODINGS), is_bigendian=rng.randint(0, 1),
                step=rng.randint(0, 40))
    msg.header.stamp.sec = rng.randint(-2**31, 2**31 - 1)
    msg.header.stamp.nanosec = rng.randint(0, 999_999_999)
    msg.header.frame_id = 'f' * rng.randint(0, 13)
    msg.data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 50)))
    return msg


def test_every_field_equals_the_deserialised_message():
    """Random frame_id, encoding and data lengths cover every alignment of the later fields."""
    rng = random.Random(0)
    for _ in range(500):
        msg = _random_image(rng)
        serialized = serialize_message(msg)
        view = SerializedImage(serialized)
        reference = deserialize_message(serialized, Image)
        assert view.header == reference.header
        assert (view.height, view.width, view.encoding, view.is_bigendian, view.step) == (
            reference.height, reference.width, reference.encoding, reference.is_bigendian,
            reference.step)
        assert bytes(view.data) == bytes(reference.data)


def test_pixels_are_a_view_of_the_serialised_bytes():
    """A 640x480 rgb8 frame converts to the same array as the deserialised message."""
    pixels = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)
    msg = Image(height=480, width=640, encoding='rgb8', step=1920, data=pixels.tobytes())
    msg.header.frame_id = 'camera_optical_frame'
    view = SerializedImage(serialize_message(msg))
    assert np.array_equal(image_to_array(view), pixels)
    assert not image_to_array(view).flags.owndata


def test_cut_off_or_foreign_bytes_are_refused():
    """Every prefix missing a field's bytes, and an encapsulation not plain CDR, is refused."""
    msg = _random_image(random.Random(1))
    msg.data = bytes(range(10))
    serialized = serialize_message(msg)
    for end in range(len(serialized) - 3):  # at most 3 bytes of trailing padding
        with pytest.raises(SerializedImageError):
            SerializedImage(serialized[:end])
    with pytest.raises(SerializedImageError):
        SerializedImage(b'\x00\x09\x00\x00' + serialized[4:])


@pytest.mark.parametrize('shape, dtype, encoding', [
    ((3, 5), np.float32, '32FC1'), ((4, 7), np.uint8, 'mono8'), ((2, 3, 3), np.uint8, 'rgb8'),
    ((6, 1), np.uint16, '16UC1'), ((480, 640), np.float32, '32FC1')])
def test_written_bytes_deserialise_to_the_message_array_to_image_makes(shape, dtype, encoding):
    """The bytes serialize_image writes deserialise to exactly array_to_image's message."""
    rng = np.random.default_rng(0)
    pixels = (rng.random(shape) * 1000).astype(dtype)
    for frame_id in ('', 'cam', 'camera_optical_frame'):
        expected = array_to_image(pixels, encoding)
        expected.header.stamp.sec, expected.header.stamp.nanosec = 1_700_000_001, 42
        expected.header.frame_id = frame_id
        written = serialize_image(pixels, encoding, expected.header)
        assert deserialize_message(written, Image) == expected
        assert SerializedImage(written).header == expected.header
