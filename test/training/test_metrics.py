"""Metrics against hand computations."""
import math

import numpy as np
import pytest

from hydranet_ros.training.metrics import ConfusionMatrix, DepthMetrics


def test_confusion_matrix_iou_and_accuracy():
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    prediction = np.array([[0, 1, 1, 1], [2, 0, 2, 1]])
    matrix = ConfusionMatrix(3)
    matrix.update(prediction, truth)
    # class 0: TP 1, FP 1 (truth 2), FN 1 (pred 1) -> 1/3
    # class 1: TP 3, FP 1 (truth 0), FN 0 -> 3/4
    # class 2: TP 1, FP 0, FN 1 -> 1/2 (the ignored pixel predicted 2 does not count)
    summary = matrix.summary(['a', 'b', 'c'])
    assert summary['per_class_iou'] == pytest.approx({'a': 1 / 3, 'b': 3 / 4, 'c': 1 / 2})
    assert summary['miou'] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert summary['pixel_accuracy'] == pytest.approx(5 / 7)
    assert summary['mean_class_accuracy'] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert summary['pixels'] == 7


def test_classes_absent_everywhere_are_left_out_of_miou():
    matrix = ConfusionMatrix(4)
    matrix.update(np.array([0, 1, 1]), np.array([0, 1, 1]))
    summary = matrix.summary()
    assert summary['miou'] == pytest.approx(1.0)
    assert summary['per_class_iou']['2'] is None


def test_accumulating_frames_equals_one_big_frame():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, (4, 10, 10))
    prediction = rng.integers(0, 5, (4, 10, 10))
    whole, parts = ConfusionMatrix(5), ConfusionMatrix(5)
    whole.update(prediction, truth)
    for frame_prediction, frame_truth in zip(prediction, truth):
        parts.update(frame_prediction, frame_truth)
    assert np.array_equal(whole.matrix, parts.matrix)


def test_depth_metrics_by_hand():
    truth = np.array([2.0, 4.0, 10.0, np.nan, 0.0, 100.0])
    prediction = np.array([2.5, 3.0, 10.0, 5.0, 1.0, 1.0])
    metrics = DepthMetrics(max_depth_m=80.0)
    metrics.update(prediction, truth)
    summary = metrics.summary()
    # Valid: (2.5, 2), (3, 4), (10, 10).
    assert summary['pixels'] == 3
    assert summary['abs_rel'] == pytest.approx((0.5 / 2 + 1.0 / 4 + 0.0) / 3)
    assert summary['sq_rel'] == pytest.approx((0.25 / 2 + 1.0 / 4) / 3)
    assert summary['rmse'] == pytest.approx(math.sqrt((0.25 + 1.0) / 3))
    log_errors = [math.log(2.5 / 2), math.log(3 / 4), 0.0]
    assert summary['rmse_log'] == pytest.approx(math.sqrt(sum(e * e for e in log_errors) / 3))
    # Ratios 1.25 (not < 1.25), 1.333, 1.0.
    assert summary['delta1'] == pytest.approx(1 / 3)
    assert summary['delta2'] == pytest.approx(1.0)
    assert summary['delta3'] == pytest.approx(1.0)


def test_invalid_predictions_count_as_far_and_are_clamped():
    metrics = DepthMetrics(max_depth_m=10.0)
    metrics.update(np.array([np.nan, -3.0, 20.0]), np.array([5.0, 5.0, 5.0]))
    metrics.update(np.array([0.0001]), np.array([5.0]))
    summary = metrics.summary()
    # NaN and -3 are not depths: far end, 10; 20 is clamped to 10; 0.0001 to 0.001.
    expected = (5.0 / 5 + 5.0 / 5 + 5.0 / 5 + 4.999 / 5) / 4
    assert summary['abs_rel'] == pytest.approx(expected)
    assert np.isfinite(summary['rmse_log'])


def test_empty_depth_metrics_are_nan():
    metrics = DepthMetrics()
    metrics.update(np.ones(3), np.full(3, np.nan))
    summary = metrics.summary()
    assert summary['pixels'] == 0 and math.isnan(summary['abs_rel'])


def test_perfect_prediction():
    truth = np.linspace(1.0, 50.0, 100)
    metrics = DepthMetrics()
    metrics.update(truth, truth)
    summary = metrics.summary()
    assert summary['abs_rel'] == 0.0 and summary['rmse'] == 0.0 and summary['delta1'] == 1.0
