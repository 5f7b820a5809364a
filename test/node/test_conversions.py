"""Image message <-> array conversions: every encoding, padded rows, byte order, errors."""
import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy is not installed: the conversions use sensor_msgs')

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from hydranet_ros.node.messages import (ImageConversionError, array_to_image,  # noqa: E402
                                        compressed_to_array, encode_compressed,
                                        image_to_array)

RNG = np.random.default_rng(118)
ARRAYS = {
    'rgb8': RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8),
    'bgr8': RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8),
    'rgba8': RNG.integers(0, 256, (6, 10, 4), dtype=np.uint8),
    'bgra8': RNG.integers(0, 256, (6, 10, 4), dtype=np.uint8),
    'mono8': RNG.integers(0, 256, (6, 10), dtype=np.uint8),
    '16UC1': RNG.integers(0, 65536, (6, 10), dtype=np.uint16),
    '32FC1': np.where(RNG.random((6, 10)) < 0.2, np.nan,
                      RNG.random((6, 10)) * 80.0).astype(np.float32),
}


@pytest.mark.parametrize('encoding', sorted(ARRAYS))
def test_round_trip_through_a_serialised_message(encoding):
    """Array -> message -> bytes -> message -> array gives the same pixels and header."""
    pixels = ARRAYS[encoding]
    header = Header(frame_id='camera_optical_frame')
    header.stamp.sec, header.stamp.nanosec = 12, 34
    msg = array_to_image(pixels, encoding, header)
    assert (msg.height, msg.width, msg.encoding) == (6, 10, encoding)
    assert msg.step == 10 * pixels.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1)
    received = deserialize_message(serialize_message(msg), Image)
    assert received.header == header
    np.testing.assert_array_equal(image_to_array(received), pixels)


def test_image_to_array_does_not_copy():
    """The array is a view of the message buffer."""
    msg = array_to_image(ARRAYS['rgb8'], 'rgb8')
    pixels = image_to_array(msg)
    assert not pixels.flags.owndata
    msg.data[0] = (int(msg.data[0]) + 1) % 256
    assert pixels[0, 0, 0] == msg.data[0]


def test_padded_rows_are_read_through_the_step():
    """Rows longer than width x pixel size (step padding) are skipped correctly."""
    pixels = ARRAYS['rgb8']
    padded = np.zeros((6, 40), np.uint8)
    padded[:, :30] = pixels.reshape(6, 30)
    msg = Image(height=6, width=10, encoding='rgb8', step=40, data=padded.tobytes())
    np.testing.assert_array_equal(image_to_array(msg), pixels)


def test_big_endian_data_is_swapped_to_native_order():
    """16UC1 and 32FC1 with is_bigendian set decode to the same values."""
    for encoding in ('16UC1', '32FC1'):
        pixels = ARRAYS[encoding]
        swapped = pixels.astype(pixels.dtype.newbyteorder('>'))
        msg = Image(height=6, width=10, encoding=encoding, is_bigendian=1,
                    step=10 * pixels.itemsize, data=swapped.tobytes())
        np.testing.assert_array_equal(image_to_array(msg), pixels)


def test_encoding_names_are_case_insensitive():
    """'RGB8' is read as rgb8."""
    msg = array_to_image(ARRAYS['rgb8'], 'rgb8')
    msg.encoding = 'RGB8'
    np.testing.assert_array_equal(image_to_array(msg), ARRAYS['rgb8'])


@pytest.mark.parametrize('change, message', [
    ({'encoding': 'yuv422'}, "unsupported encoding 'yuv422'; expected one of rgb8"),
    ({'data': bytes(100)}, 'needs 180 bytes of data, got 100'),
    ({'step': 20}, 'needs step >= 30 bytes'),
    ({'height': 0}, 'expected a positive width and height'),
])
def test_malformed_messages_name_expected_and_actual(change, message):
    """Errors say what was expected and what was found."""
    msg = array_to_image(ARRAYS['rgb8'], 'rgb8')
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(ImageConversionError, match=message.replace('(', r'\(')):
        image_to_array(msg)


def test_array_to_image_rejects_a_mismatched_array():
    """A wrong dtype or channel count is refused with both named."""
    with pytest.raises(ImageConversionError, match='32FC1 needs float32 pixels, got float64'):
        array_to_image(np.zeros((4, 4)), '32FC1')
    with pytest.raises(ImageConversionError, match=r'rgb8 needs an array of shape \(H, W, 3\)'):
        array_to_image(np.zeros((4, 4, 4), np.uint8), 'rgb8')


@pytest.mark.parametrize('encoding, decoded', [('rgb8', 'bgr8'), ('bgr8', 'bgr8'),
                                               ('mono8', 'mono8'), ('rgba8', 'bgra8')])
def test_png_compressed_images_decode_losslessly(encoding, decoded):
    """PNG CompressedImage (as image_transport writes it) decodes to the original pixels."""
    pixels = ARRAYS[encoding]
    msg = deserialize_message(serialize_message(encode_compressed(pixels, encoding, 'png')),
                              CompressedImage)
    assert msg.format == f'{encoding}; png compressed {decoded}'
    result, result_encoding = compressed_to_array(msg)
    assert result_encoding == decoded
    to_stored = {'rgb8': lambda a: a[:, :, ::-1],
                 'rgba8': lambda a: a[:, :, [2, 1, 0, 3]]}.get(encoding, lambda a: a)
    np.testing.assert_array_equal(result, to_stored(pixels))


def test_jpeg_compressed_images_decode_approximately():
    """JPEG frames decode to bgr8 of the right size."""
    pixels = np.full((16, 24, 3), (200, 100, 50), np.uint8)
    result, encoding = compressed_to_array(encode_compressed(pixels, 'rgb8', 'jpeg'))
    assert encoding == 'bgr8' and result.shape == (16, 24, 3)
    assert np.abs(result[:, :, ::-1].astype(int) - pixels).max() <= 8


@pytest.mark.parametrize('image_format, data, message', [
    ('16UC1; compressedDepth', b'\x89PNG', 'compressedDepth stream; expected a colour'),
    ('jpeg', b'', 'has no data'),
    ('jpeg', b'not an image', 'cannot decode 12 bytes'),
])
def test_undecodable_compressed_images_are_refused(image_format, data, message):
    """compressedDepth, empty and corrupt payloads raise the domain error."""
    msg = CompressedImage(format=image_format, data=data)
    with pytest.raises(ImageConversionError, match=message):
        compressed_to_array(msg)
