"""The engine policy: network input size, device, backend and precision decided in one place."""
import logging

import cv2
import numpy as np
import pytest
import torch

from hydranet_ros.engine import BackendError, DeviceError, InferenceEngine, plan_problem, \
    plan_run
from hydranet_ros.engine.default_model import ASSETS_DIR, default_model_path
from hydranet_ros.engine.run_plan import onnxruntime_installed, REASON_TRAINING_SIZE
from hydranet_ros.model import build_hydranet, HydraNetConfig, load_hydranet

BUNDLED_TRAINING_SIZE = (96, 320)
KITTI_SAMPLE = f'{ASSETS_DIR}/samples/kitti_000099.png'
NEEDS_ONNXRUNTIME = pytest.mark.skipif(not onnxruntime_installed(),
                                       reason='onnxruntime is not installed')
CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available(), reason='a CUDA GPU is present')


@pytest.fixture(scope='module')
def bundled():
    """Return the bundled model (loaded once)."""
    return load_hydranet(default_model_path())


def test_a_recorded_training_size_is_used_unless_a_size_is_given(bundled):
    plan = plan_run(bundled.config, device='cpu')
    assert plan.input_size == BUNDLED_TRAINING_SIZE
    assert plan.input_size_reason == REASON_TRAINING_SIZE
    assert plan.network_input_text() == \
        'network input 96x320 (the training size recorded in the checkpoint)'
    asked = plan_run(bundled.config, device='cpu', input_size=(240, 640))
    assert asked.input_size == (240, 640)
    assert asked.network_input_text() == 'network input 240x640 (as asked)'
    plain = plan_run(HydraNetConfig(num_classes=3), device='cpu')
    assert plain.input_size is None
    assert plain.network_input_text() == "network input at each image's size"
    with pytest.raises(ValueError, match='at least 32x32'):
        plan_run(bundled.config, device='cpu', input_size=(16, 320))


def test_a_malformed_recorded_size_is_ignored_with_a_warning(caplog):
    for note in ([96], 'big', [8, 8]):
        config = HydraNetConfig(num_classes=3, notes={'image_size': note})
        with caplog.at_level(logging.WARNING):
            assert plan_run(config, device='cpu').input_size is None
        assert 'image_size' in caplog.text
        caplog.clear()


def test_the_bundled_model_runs_the_same_by_default_path_or_module(bundled):
    """The rule depends on the checkpoint, not on how it was named (None, path, module)."""
    rgb = cv2.cvtColor(cv2.imread(KITTI_SAMPLE), cv2.COLOR_BGR2RGB)
    engines = [InferenceEngine(model, device='cpu', backend='torch', threads=2)
               for model in (None, default_model_path(), bundled)]
    predictions = [engine.infer(rgb) for engine in engines]
    for engine, prediction in zip(engines, predictions):
        assert engine.plan.input_size == BUNDLED_TRAINING_SIZE
        assert 'network input 96x320' in engine.network_input_text()
        assert prediction.depth.shape == rgb.shape[:2]
        assert np.array_equal(prediction.labels, predictions[0].labels)
        assert np.array_equal(prediction.depth, predictions[0].depth, equal_nan=True)


@pytest.mark.parametrize('device,backend,precision,words', [
    ('cuda', 'onnxruntime', 'auto', 'onnxruntime backend runs on the CPU only'),
    ('cuda:1', 'onnxruntime', 'fp32', 'use backend torch'),
    ('cpu', 'torch', 'fp16', 'fp16 needs a CUDA GPU'),
    ('cpu', 'auto', 'bf16', 'bf16 needs a CUDA GPU'),
    ('cpu', 'torch', 'int8', 'int8 needs the onnxruntime backend'),
    ('cuda', 'auto', 'int8', 'int8 runs on the CPU'),
    ('gpu', 'auto', 'auto', 'unknown device'),
    ('cpu', 'tensorrt', 'auto', 'unknown backend'),
    ('cpu', 'auto', 'fp8', 'unknown precision'),
])
def test_conflicts_are_named_without_a_model_or_gpu(device, backend, precision, words):
    problem = plan_problem(device, backend, precision)
    assert problem is not None and words in problem
    error = DeviceError if words == 'unknown device' else BackendError
    with pytest.raises(error, match=words):
        plan_run(HydraNetConfig(num_classes=3), device, backend, precision)


@NEEDS_ONNXRUNTIME
def test_onnxruntime_only_conflicts(bundled):
    problem = plan_problem('auto', 'onnxruntime', 'fp16')
    assert 'not available in the onnxruntime backend' in problem
    plan = plan_run(bundled.config, 'auto', 'onnxruntime', 'int8')
    assert (plan.device.type, plan.backend, plan.precision) == ('cpu', 'onnxruntime', 'int8')


@pytest.mark.parametrize('device,backend,precision', [
    ('auto', 'auto', 'auto'), ('cpu', 'auto', 'fp32'), ('cuda', 'torch', 'fp16'),
    ('cuda:0', 'auto', 'bf16'), ('auto', 'torch', 'fp32'), (' CPU ', 'Torch', 'FP32'),
])
def test_valid_combinations_pass(device, backend, precision):
    assert plan_problem(device, backend, precision) is None


def test_the_cpu_plan(bundled):
    plan = plan_run(bundled.config, device='cpu')
    expected_backend = 'onnxruntime' if onnxruntime_installed() else 'torch'
    assert (plan.device.type, plan.backend, plan.precision) == ('cpu', expected_backend, 'fp32')
    plan = plan_run(bundled.config, device='cpu', backend='torch')
    assert (plan.backend, plan.precision) == ('torch', 'fp32')


@CPU_ONLY
def test_without_a_gpu_cuda_falls_back_with_a_cpu_precision(bundled):
    plan = plan_run(bundled.config, device='cuda', precision='fp16', fallback_to_cpu=True)
    assert (plan.device.type, plan.precision) == ('cpu', 'fp32')
    plan = plan_run(bundled.config, device='auto', backend='torch', precision='bf16')
    assert (plan.device.type, plan.backend, plan.precision) == ('cpu', 'torch', 'fp32')
    with pytest.raises(BackendError, match='needs a CUDA GPU'):
        plan_run(bundled.config, device='auto', precision='fp16', fallback_to_cpu=False)
    with pytest.raises(DeviceError, match='CUDA is not available'):
        plan_run(bundled.config, device='cuda', fallback_to_cpu=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_on_a_gpu_auto_is_torch_fp16_and_onnxruntime_stays_on_the_cpu(bundled):
    plan = plan_run(bundled.config, device='auto')
    assert (plan.device.type, plan.backend, plan.precision) == ('cuda', 'torch', 'fp16')
    if onnxruntime_installed():
        plan = plan_run(bundled.config, device='auto', backend='onnxruntime')
        assert (plan.device.type, plan.backend) == ('cpu', 'onnxruntime')
    engine = InferenceEngine(build_hydranet(HydraNetConfig(num_classes=3)).eval(),
                             device='cuda', precision='bf16')
    assert engine.plan.precision == 'bf16' and engine.device.type == 'cuda'
    prediction = engine.infer(np.full((64, 96, 3), 100, np.uint8))
    assert prediction.depth.shape == (64, 96)
