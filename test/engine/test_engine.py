"""The inference engine: units, NaN handling, label range, resolution, encodings and errors."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

import cv2

from conftest import SAMPLES_DIR, require_shared
from hydranet_ros.engine import (device_problem, DeviceError, ImageFormatError, InferenceEngine,
                                 resolve_device, to_rgb)
from hydranet_ros.engine.postprocess import upsampled_argmax
from hydranet_ros.model import build_hydranet, HydraNetConfig, load_hydranet

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def _sample_rgb() -> np.ndarray:
    path = require_shared(SAMPLES_DIR / 'nyud_joint' / '000464.png')
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _expected(model, rgb):
    """Upstream-style computation: normalise, forward, upsample, argmax."""
    x = torch.from_numpy(((rgb / 255.0 - MEAN) / STD).astype(np.float32).transpose(2, 0, 1))
    with torch.inference_mode():
        outputs = model(x[None])
    size = rgb.shape[:2]
    logits = F.interpolate(outputs['segm'], size=size, mode='bilinear', align_corners=False)[0]
    depth = F.interpolate(outputs['depth'], size=size, mode='bilinear', align_corners=False)[0, 0]
    return logits.numpy(), depth.numpy()


@pytest.fixture(scope='module')
def reference_model(nyud_checkpoint):
    return load_hydranet(nyud_checkpoint)


@pytest.fixture(scope='module', params=['torch', 'onnxruntime'])
def engine(request, nyud_checkpoint):
    return InferenceEngine(nyud_checkpoint, device='cpu', backend=request.param, threads=2)


def test_outputs_match_upstream_computation(engine, reference_model):
    rgb = _sample_rgb()
    prediction = engine.infer(rgb)
    logits, depth = _expected(reference_model, rgb)
    assert prediction.depth.shape == rgb.shape[:2] and prediction.depth.dtype == np.float32
    assert prediction.labels.shape == rgb.shape[:2] and prediction.labels.dtype == np.uint8
    assert (prediction.labels == logits.argmax(0)).mean() >= 0.9999
    valid = (depth > 0) & (depth <= engine.config.max_depth_m)
    assert np.array_equal(np.isfinite(prediction.depth), valid)
    assert np.allclose(prediction.depth[valid], depth[valid], atol=1e-4)
    assert np.isnan(prediction.depth[~valid]).all()
    assert prediction.labels.max() < 40
    probabilities = torch.softmax(torch.from_numpy(logits), 0).max(0)[0].numpy()
    assert prediction.confidence.min() >= 0.0 and prediction.confidence.max() <= 1.0
    assert np.abs(prediction.confidence - probabilities).mean() < 0.01
    assert prediction.overlay.shape == rgb.shape and prediction.overlay.dtype == np.uint8
    assert set(prediction.timings_ms) >= {'network', 'postprocess'}


def test_encodings_give_the_same_result(engine):
    rgb = _sample_rgb()[:240, :320].copy()
    reference = engine.infer(rgb, 'rgb8')
    for encoding, image in [('bgr8', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)),
                            ('rgba8', cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)),
                            ('bgra8', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA))]:
        prediction = engine.infer(image, encoding)
        assert np.array_equal(prediction.labels, reference.labels), encoding
    mono = engine.infer(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 'mono8')
    assert mono.labels.shape == rgb.shape[:2]


@pytest.mark.parametrize('height,width', [(77, 101), (370, 1226), (64, 64)])
def test_odd_sizes_come_back_at_input_resolution(nyud_checkpoint, height, width):
    engine = InferenceEngine(nyud_checkpoint, device='cpu', backend='torch')
    image = cv2.resize(_sample_rgb(), (width, height))
    prediction = engine.infer(image)
    for array in (prediction.depth, prediction.labels, prediction.confidence):
        assert array.shape == (height, width)


def test_fixed_inference_size_resizes_back(nyud_checkpoint):
    engine = InferenceEngine(nyud_checkpoint, device='cpu', backend='torch',
                             input_size=(240, 320))
    prediction = engine.infer(_sample_rgb())
    assert prediction.labels.shape == (480, 640)
    assert prediction.depth.shape == (480, 640)
    with pytest.raises(ValueError, match='at least 32x32'):
        InferenceEngine(nyud_checkpoint, device='cpu', backend='torch', input_size=(8, 8))


def test_batch_equals_single_images(nyud_checkpoint):
    """A batch gives each image's own result, up to float rounding.

    PyTorch's CPU kernels may pick another algorithm for a batch (seen on an AVX-512 CPU):
    a label may then flip where two classes tie (max probabilities equal within 1e-5).
    """
    engine = InferenceEngine(nyud_checkpoint, device='cpu', backend='torch')
    rgb = _sample_rgb()
    images = [rgb[:200, :300].copy(), rgb[200:400, 300:600].copy(), rgb[:100, :160].copy()]
    batch = engine.infer_batch(images)
    for image, prediction in zip(images, batch):
        single = engine.infer(image)
        flipped = single.labels != prediction.labels
        assert flipped.mean() <= 1e-3
        assert np.allclose(single.confidence, prediction.confidence, atol=1e-5)
        assert np.allclose(single.depth, prediction.depth, atol=1e-4, equal_nan=True)


def test_many_classes_use_16_bit_labels():
    model = build_hydranet(HydraNetConfig(num_classes=300)).eval()
    prediction = InferenceEngine(model, device='cpu', backend='torch').infer(
        np.full((64, 80, 3), 127, np.uint8))
    assert prediction.labels.dtype == np.uint16


def test_three_task_model_returns_unit_normals():
    model = build_hydranet(HydraNetConfig(num_classes=4, tasks=('segm', 'depth', 'normals')))
    prediction = InferenceEngine(model.eval(), device='cpu', backend='torch').infer(
        np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    assert prediction.normals.shape == (96, 128, 3)
    assert np.allclose(np.linalg.norm(prediction.normals, axis=2), 1.0, atol=1e-3)


@pytest.mark.parametrize('image,encoding,message', [
    (np.zeros((10, 10, 3), np.float32), 'rgb8', 'uint8'),
    (np.zeros((10, 10), np.uint8), 'rgb8', 'shape'),
    (np.zeros((10, 10, 4), np.uint8), 'bgr8', 'shape'),
    (np.zeros((4, 10, 3), np.uint8), 'rgb8', 'too small'),
    (np.zeros((10, 10), np.float32), '32FC1', "encoding '32FC1' cannot be used as a camera"),
])
def test_bad_images_raise_clear_errors(image, encoding, message):
    with pytest.raises(ImageFormatError, match=message):
        to_rgb(image, encoding)


def test_devices():
    assert resolve_device('cpu').type == 'cpu'
    assert resolve_device('auto').type in ('cpu', 'cuda')
    for wrong in ('gpu0', 'cuda:', 'cuda:x', '', 'cpu:0'):
        with pytest.raises(DeviceError, match='unknown device'):
            resolve_device(wrong)
        assert 'unknown device' in device_problem(wrong)
    for right in ('auto', 'cpu', 'cuda', 'cuda:0', 'cuda:12', ' CUDA:1 ', 'Auto'):
        assert device_problem(right) is None
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match='CUDA is not available'):
            resolve_device('cuda:0')
        assert resolve_device('cuda', fallback_to_cpu=True).type == 'cpu'


@pytest.mark.parametrize('classes', [7, 40, 300])
@pytest.mark.parametrize('height,width,low_height,low_width', [
    (480, 640, 120, 160), (370, 1226, 93, 307), (101, 77, 26, 20), (50, 50, 50, 50),
    (40, 30, 60, 45)])
def test_upsampled_argmax_is_exact(classes, height, width, low_height, low_width):
    rng = np.random.default_rng(height * width + classes)
    logits = rng.normal(size=(classes, low_height, low_width)).astype(np.float32)
    logits[:, ::5] = np.round(logits[:, ::5])  # plateaus and exact ties
    logits[:, 1::5] *= 1000.0  # large magnitudes: rounding must not drop a candidate
    logits[:classes // 2, 2::7] = logits[classes // 2:classes // 2 * 2, 2::7]  # tied pairs
    upsampled = F.interpolate(torch.from_numpy(logits)[None], size=(height, width),
                              mode='bilinear', align_corners=False)[0].numpy()
    expected = upsampled.argmax(0)
    labels = upsampled_argmax(logits, height, width)
    # Equal except where two classes tie within float rounding: torch's kernels round
    # differently on different code paths (fused multiply-adds in the vector loop only).
    differ = labels != expected
    assert differ.mean() < 1e-5
    best = np.take_along_axis(upsampled, expected[None], 0)[0][differ]
    chosen = np.take_along_axis(upsampled, labels[None].astype(np.int64), 0)[0][differ]
    assert np.all(best - chosen <= 4 * np.spacing(np.abs(best)))


@pytest.mark.parametrize('input_size', [None, (96, 128)])
def test_network_runs_many_cameras_of_different_sizes_together(nyud_checkpoint, input_size):
    """run_network_many: each image comes back at its own size, as if run alone.

    With a fixed network input every image shares one batch; otherwise images of one size do.
    """
    engine = InferenceEngine(nyud_checkpoint, device='cpu', backend='torch',
                             input_size=input_size)
    rgb = _sample_rgb()
    images = [rgb[:120, :160].copy(), rgb[100:196, 200:328].copy(), rgb[:120, 160:320].copy()]
    results = engine.run_network_many(images)
    assert [(r.height, r.width) for r in results] == [i.shape[:2] for i in images]
    for image, result in zip(images, results):
        together = engine.finish(result, with_overlay=False)[0]
        alone = engine.infer(image, with_overlay=False)
        assert together.labels.shape == image.shape[:2]
        assert (together.labels != alone.labels).mean() <= 1e-3
        assert np.allclose(together.depth, alone.depth, atol=1e-4, equal_nan=True)
