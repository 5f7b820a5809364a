"""image_transport's compressed and compressedDepth payloads: format strings, header, round trips.

Real predictions of the bundled model on a shipped sample, encoded and decoded with OpenCV:
labels come back exactly, depth within the quantisation the compressedDepth format documents.
"""
import struct
from pathlib import Path

import numpy as np
import pytest

import cv2

from hydranet_ros.engine import InferenceEngine
from hydranet_ros.engine.transport_formats import (
    COMPRESSED_DEPTH_FORMAT, CompressedPayload, TransportFormatError, compressed_depth,
    decode_compressed, decode_compressed_depth, depth_error_bound_m, depth_quantization,
    jpeg_compressed, png_compressed)

SAMPLE = (Path(__file__).resolve().parents[2] / 'hydranet_ros' / 'assets' / 'samples'
          / 'kitti_000099.png')
WIDTH, HEIGHT = 640, 480
QUANTIZATION_M = 100.0
FLOAT_SLACK = 1e-5  # float32 rounding of a / (v - b), relative
JPEG_MEAN_ERROR_LIMIT = 6.0  # grey levels, quality 80 on a photograph with an overlay


@pytest.fixture(scope='module')
def prediction():
    """Return the bundled model's prediction of the KITTI sample at 640x480."""
    bgr = cv2.resize(cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR), (WIDTH, HEIGHT))
    engine = InferenceEngine(None, device='cpu', backend='torch', threads=1)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return rgb, engine.infer(rgb)


def test_labels_png_is_lossless_with_the_plugins_format_string(prediction):
    """mono8 labels: 'mono8; png compressed ' (grey images name no stored encoding)."""
    labels = prediction[1].labels
    payload = png_compressed(labels, 'mono8')
    assert payload.format == 'mono8; png compressed '
    assert payload.data[:8] == b'\x89PNG\r\n\x1a\n'
    decoded, encoding = decode_compressed(payload)
    assert encoding == 'mono8' and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, labels)


def test_sixteen_bit_labels_png_is_lossless():
    """16UC1 label images (models above 255 classes) round-trip exactly through a 16-bit PNG."""
    labels = np.random.default_rng(7).integers(0, 65535, (48, 64), dtype=np.uint16)
    payload = png_compressed(labels, '16UC1')
    assert payload.format == '16UC1; png compressed '
    np.testing.assert_array_equal(decode_compressed(payload)[0], labels)


def test_color_jpeg_is_stored_bgr_and_decodes_close(prediction):
    """rgb8 overlays: 'rgb8; jpeg compressed bgr8', the JPEG holding BGR as OpenCV writes it."""
    rgb = prediction[0]
    payload = jpeg_compressed(rgb, 'rgb8', 80)
    assert payload.format == 'rgb8; jpeg compressed bgr8'
    decoded, encoding = decode_compressed(payload)
    assert encoding == 'rgb8'
    assert np.abs(decoded.astype(np.int16) - rgb).mean() < JPEG_MEAN_ERROR_LIMIT
    raw_bgr = cv2.imdecode(np.frombuffer(payload.data, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(raw_bgr[..., 0].astype(np.int16) - rgb[..., 2]).mean() < JPEG_MEAN_ERROR_LIMIT
    smaller = jpeg_compressed(rgb, 'rgb8', 30)
    assert len(smaller.data) < len(payload.data)


def test_compressed_depth_header_and_inverse_depth_png(prediction):
    """12-byte header (0 = inverse depth, a, b as float32), then a 16-bit PNG of a / d + b."""
    depth = prediction[1].depth
    payload = compressed_depth(depth, 10.0, QUANTIZATION_M)
    assert payload.format == COMPRESSED_DEPTH_FORMAT == '32FC1; compressedDepth png'
    kind, a, b = struct.unpack_from('=iff', payload.data)
    assert kind == 0
    assert a == pytest.approx(QUANTIZATION_M * (QUANTIZATION_M + 1.0))
    assert b == pytest.approx(1.0 - a / 10.0)
    inverse = cv2.imdecode(np.frombuffer(payload.data[12:], np.uint8), cv2.IMREAD_UNCHANGED)
    assert inverse.dtype == np.uint16 and inverse.shape == depth.shape
    near = np.isfinite(depth) & (depth < 10.0)
    expected = np.floor(np.float32(a) / depth[near] + np.float32(b))
    assert np.abs(inverse[near].astype(np.float64) - expected).max() <= 1.0
    assert (inverse[~near] == 0).all()


def test_depth_decodes_within_the_documented_quantisation(prediction):
    """0 <= d' - d < d^2 / (a - d) on every valid pixel; NaN stays NaN."""
    depth = prediction[1].depth.copy()
    depth[:4, :4] = np.nan
    payload = compressed_depth(depth, 0.0, QUANTIZATION_M)
    decoded = decode_compressed_depth(payload)
    valid = np.isfinite(depth)
    assert valid.sum() > depth.size // 2
    assert np.isfinite(decoded[valid]).all(), 'depth_max 0 keeps every valid pixel'
    assert np.isnan(decoded[~valid]).all()
    error = decoded[valid].astype(np.float64) - depth[valid]
    bound = depth_error_bound_m(depth[valid], QUANTIZATION_M)
    assert (error >= -FLOAT_SLACK * depth[valid]).all()
    assert (error <= bound + FLOAT_SLACK * depth[valid]).all()


def test_depth_beyond_the_limit_or_too_near_is_invalid():
    """At or beyond depth_max, and nearer than 16 bits reach, pixels decode to NaN."""
    depth = np.array([[0.05, 0.5, 5.0, 9.99, 10.0, 50.0, -1.0, np.inf]], np.float32)
    decoded = decode_compressed_depth(compressed_depth(depth, 10.0, QUANTIZATION_M))
    assert np.isnan(decoded[0, [0, 4, 5, 6, 7]]).all()
    assert np.isfinite(decoded[0, 1:4]).all()
    a, _ = depth_quantization(QUANTIZATION_M, 10.0)
    assert a == pytest.approx(10100.0)


def test_bad_inputs_say_what_was_expected():
    """Wrong dtypes, unknown encodings and foreign payloads are domain errors."""
    with pytest.raises(TransportFormatError, match='float32'):
        compressed_depth(np.zeros((4, 4), np.uint16), 10.0)
    with pytest.raises(TransportFormatError, match='rgb8'):
        jpeg_compressed(np.zeros((4, 4, 3), np.uint8), 'yuv422')
    with pytest.raises(TransportFormatError, match='uint8'):
        png_compressed(np.zeros((4, 4), np.uint16), 'mono8')
    with pytest.raises(TransportFormatError, match='compressedDepth'):
        decode_compressed_depth(CompressedPayload('mono8; png compressed ', b'x' * 20))
