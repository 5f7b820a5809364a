"""The image table: every encoding decoded from buffers built here out of a real photo."""
import array
import pathlib

import cv2
import numpy as np
import pytest

import hydranet_ros
from hydranet_ros.engine import decode_compressed, decode_raw, ImageFormatError, row_bytes, \
    SUPPORTED_ENCODINGS, to_rgb
from hydranet_ros.engine import images
from camera_encodings import BAYER_SITES, encoded, expected_rgb, message_fields, wide

SAMPLE = pathlib.Path(hydranet_ros.__file__).parent / 'assets' / 'samples' / 'kitti_000099.png'
ROW_PADDING_BYTES = 7  # odd: 16-bit rows then start at odd addresses
# Mean absolute error (0..255) allowed where the encoding loses information.
BAYER_MEAN_ERROR = 8.0
YUV_MEAN_ERROR = 4.0
JPEG_MEAN_ERROR = 8.0


@pytest.fixture(scope='module')
def rgb() -> np.ndarray:
    """Return a crop of the bundled KITTI photo (RGB, even width) with detail and flat areas."""
    image = cv2.cvtColor(cv2.imread(str(SAMPLE)), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[100:300, 300:700])


def decode(pixels: np.ndarray, encoding: str, padding: int = 0, big_endian: bool = False):
    data, step = message_fields(pixels, padding, big_endian)
    return decode_raw(data, encoding, pixels.shape[1], pixels.shape[0], step, big_endian)


LOSSLESS = [e for e in SUPPORTED_ENCODINGS if not e.startswith(('bayer', 'yuv', 'uyvy', 'yuyv'))]
BAYER = [e for e in SUPPORTED_ENCODINGS if e.startswith('bayer')]
YUV = [e for e in SUPPORTED_ENCODINGS if e not in LOSSLESS + BAYER]


def test_the_table_has_every_camera_encoding():
    assert set(SUPPORTED_ENCODINGS) == {
        'rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', '8UC1', '8UC3', '8UC4', 'mono16', '16UC1',
        'rgb16', 'bgr16', 'rgba16', 'bgra16', 'bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8',
        'bayer_grbg8', 'bayer_rggb16', 'bayer_bggr16', 'bayer_gbrg16', 'bayer_grbg16',
        'yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv'}


@pytest.mark.parametrize('encoding', LOSSLESS)
def test_lossless_encodings_decode_exactly(rgb, encoding):
    decoded = decode(encoded(rgb, encoding), encoding)
    assert decoded.dtype == np.uint8 and decoded.shape == rgb.shape
    assert decoded.flags.c_contiguous
    assert np.array_equal(decoded, expected_rgb(rgb, encoding))


@pytest.mark.parametrize('encoding', BAYER)
def test_bayer_mosaics_keep_each_measured_colour(rgb, encoding):
    decoded = decode(encoded(rgb, encoding), encoding)
    assert decoded.shape == rgb.shape
    inner = (slice(2, -2), slice(2, -2))
    for channel, sites in BAYER_SITES[encoding[6:10]].items():
        for row, col in sites:
            measured = rgb[row::2, col::2, channel]
            kept = decoded[row::2, col::2, channel]
            assert np.array_equal(kept[inner], measured[inner]), (channel, row, col)
    assert np.abs(decoded.astype(int) - rgb).mean() < BAYER_MEAN_ERROR


@pytest.mark.parametrize('encoding', YUV)
def test_yuv422_is_close_to_the_photo(rgb, encoding):
    decoded = decode(encoded(rgb, encoding), encoding)
    assert decoded.shape == rgb.shape
    error = np.abs(decoded.astype(int) - rgb)
    assert error.mean() < YUV_MEAN_ERROR
    # The channels are in order: each decoded channel is closest to its own channel.
    for channel in range(3):
        own = np.abs(decoded[..., channel].astype(int) - rgb[..., channel]).mean()
        for other in {0, 1, 2} - {channel}:
            assert own < np.abs(decoded[..., channel].astype(int) - rgb[..., other]).mean()


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_padded_rows_big_endian_and_arrays_decode_the_same(rgb, encoding):
    pixels = encoded(rgb, encoding)
    reference = decode(pixels, encoding)
    assert np.array_equal(decode(pixels, encoding, padding=ROW_PADDING_BYTES), reference)
    assert np.array_equal(decode(pixels, encoding, big_endian=True), reference)
    assert np.array_equal(decode(pixels, encoding, ROW_PADDING_BYTES, True), reference)
    assert np.array_equal(to_rgb(pixels, encoding), reference)
    assert row_bytes(encoding, pixels.shape[1]) == pixels[0].nbytes


def test_buffer_types_and_an_unpadded_last_row(rgb):
    pixels = encoded(rgb, 'bgr8')
    data, step = message_fields(pixels, ROW_PADDING_BYTES)
    height, width = pixels.shape[:2]
    expected = decode_raw(data, 'bgr8', width, height, step, False)
    for buffer in (bytearray(data), memoryview(data), array.array('B', data),
                   np.frombuffer(data, np.uint8), data[:-ROW_PADDING_BYTES]):
        assert np.array_equal(decode_raw(buffer, 'bgr8', width, height, step, False), expected)


def test_packed_rgb8_is_a_view_of_the_data(rgb):
    data = np.ascontiguousarray(rgb).reshape(-1)
    decoded = decode_raw(data, 'rgb8', rgb.shape[1], rgb.shape[0], rgb.shape[1] * 3, False)
    assert np.shares_memory(decoded, data) and decoded.flags.c_contiguous


def test_names_are_matched_without_case_and_spaces(rgb):
    assert np.array_equal(decode(encoded(rgb, 'bgr8'), ' BGR8 '), rgb)
    assert row_bytes('YUV422_YUY2', 10) == 20


@pytest.mark.parametrize('encoding', ['32FC1', '16SC1', 'nv12', ''])
def test_other_encodings_are_refused_by_name_with_a_hint(encoding):
    for attempt in (lambda: row_bytes(encoding, 16),
                    lambda: decode_raw(bytes(16 * 16 * 4), encoding, 16, 16, 64, False),
                    lambda: to_rgb(np.zeros((16, 16), np.float32), encoding)):
        with pytest.raises(ImageFormatError) as error:
            attempt()
        assert error.value.kind == images.ENCODING
        message = str(error.value)
        assert f'image encoding {encoding!r} cannot be used as a camera image' in message
        assert 'publish rgb8' in message and 'image_proc' in message and 'yuv422' in message


@pytest.mark.parametrize('fields,kind,words', [
    (('rgb8', 16, 16, 47, 16 * 48), images.STEP, 'step >= 48'),
    (('rgb8', 16, 16, 48, 16 * 48 - 1), images.DATA_LENGTH, 'needs 768 bytes'),
    (('rgb8', 16, 16, 48, 16 * 48 + 1), images.DATA_LENGTH, 'needs 768 bytes'),
    (('mono16', 16, 4, 32, 4 * 32), images.SIZE, 'too small'),
    (('yuv422', 15, 16, 30, 16 * 30), images.SIZE, 'odd width'),
])
def test_malformed_layouts_are_refused_with_their_kind(fields, kind, words):
    encoding, width, height, step, size = fields
    with pytest.raises(ImageFormatError, match=words) as error:
        decode_raw(bytes(size), encoding, width, height, step, False)
    assert error.value.kind == kind


@pytest.mark.parametrize('array,encoding,words', [
    (np.zeros((16, 16, 3), np.float32), 'rgb8', 'uint8'),
    (np.zeros((16, 16, 3), np.uint8), 'rgb16', 'uint16'),
    (np.zeros((16, 16), np.uint8), 'rgb8', 'shape'),
    (np.zeros((16, 16, 4), np.uint8), 'bgr8', 'shape'),
    (np.zeros((4, 16, 3), np.uint8), 'rgb8', 'too small'),
])
def test_arrays_that_do_not_match_their_encoding_are_refused(array, encoding, words):
    with pytest.raises(ImageFormatError, match=words):
        to_rgb(array, encoding)


def _png(pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode('.png', pixels)
    assert ok
    return data.tobytes()


def test_compressed_pictures_of_8_and_16_bits(rgb):
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey_rgb = expected_rgb(rgb, 'mono8')
    alpha = np.concatenate([bgr, np.full(rgb.shape[:2] + (1,), 9, np.uint8)], 2)
    assert np.array_equal(decode_compressed(_png(bgr), 'rgb8; png compressed bgr8'), rgb)
    assert np.array_equal(decode_compressed(_png(alpha), 'png'), rgb)
    assert np.array_equal(decode_compressed(memoryview(_png(grey)), 'png'), grey_rgb)
    assert np.array_equal(decode_compressed(_png(wide(grey)), 'mono16; png compressed'),
                          grey_rgb)
    assert np.array_equal(decode_compressed(_png(wide(bgr)), 'png'), rgb)
    ok, jpeg = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = decode_compressed(jpeg.tobytes(), 'jpeg')
    reference = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(decoded, reference)
    assert np.abs(decoded.astype(int) - rgb).mean() < JPEG_MEAN_ERROR


@pytest.mark.parametrize('data,image_format,kind,words', [
    (b'\x89PNG', '16UC1; compressedDepth png', images.FORMAT, 'compressedDepth'),
    (b'', 'jpeg', images.UNDECODABLE, 'no data'),
    (b'not a picture at all', 'jpeg', images.UNDECODABLE, 'cannot decode'),
])
def test_compressed_data_that_is_no_camera_picture_is_refused(data, image_format, kind, words):
    with pytest.raises(ImageFormatError, match=words) as error:
        decode_compressed(data, image_format)
    assert error.value.kind == kind
