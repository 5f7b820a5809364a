"""Losses against hand computations: masking, ignore index, berHu, task weighting."""
import math

import pytest
import torch

from hydranet_ros.training.losses import depth_loss, segmentation_loss, task_losses
from hydranet_ros.training.task_weighting import build_task_weighting

NAN = float('nan')


def _depth(values):
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, -1)


def test_l1_uses_only_valid_pixels():
    prediction = _depth([1.0, 2.0, 5.0, 7.0, 9.0])
    # NaN, 0 (unknown) and beyond max_depth_m are masked; |1-2| + |2-4| = 3 over 2 pixels.
    target = _depth([2.0, 4.0, NAN, 0.0, 90.0])
    loss = depth_loss(prediction, target, 'l1', max_depth_m=80.0)
    assert loss.item() == pytest.approx(1.5)


def test_relative_l1_is_abs_rel():
    prediction = _depth([3.0, 2.0])
    target = _depth([2.0, 4.0])
    # (|3-2|/2 + |2-4|/4) / 2 = 0.5
    assert depth_loss(prediction, target, 'rel_l1').item() == pytest.approx(0.5)


def test_berhu_switches_to_scaled_l2_above_threshold():
    prediction = _depth([0.0, 0.0, 0.0])
    target = _depth([0.1, 1.0, 10.0])
    # c = 0.2 * max residual = 2; 0.1 and 1.0 stay L1; 10 -> (100 + 4) / 4 = 26.
    expected = (0.1 + 1.0 + 26.0) / 3.0
    assert depth_loss(prediction, target, 'berhu').item() == pytest.approx(expected)


def test_depth_loss_gradient_only_on_valid_pixels():
    prediction = _depth([1.0, 1.0, 1.0]).requires_grad_()
    target = _depth([2.0, NAN, 0.5])
    depth_loss(prediction, target, 'l1').backward()
    assert prediction.grad.flatten().tolist() == pytest.approx([-0.5, 0.0, 0.5])


def test_depth_prediction_is_upsampled_to_the_target():
    prediction = torch.full((1, 1, 2, 3), 4.0)
    target = torch.full((1, 1, 8, 12), 5.0)
    assert depth_loss(prediction, target, 'l1').item() == pytest.approx(1.0)


def test_cross_entropy_ignores_255():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]]).T.reshape(1, 2, 1, 3)
    labels = torch.tensor([[[0, 1, 255]]])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 1))
                - math.log(math.exp(1) / (math.exp(1) + 1))) / 2
    assert segmentation_loss(logits, labels).item() == pytest.approx(expected, rel=1e-5)


def test_missing_task_gives_no_loss():
    outputs = {'segm': torch.randn(2, 3, 4, 4, requires_grad=True),
               'depth': torch.randn(2, 1, 4, 4, requires_grad=True)}
    depth_only = {'labels': torch.full((2, 16, 16), 255), 'depth': torch.rand(2, 1, 16, 16) + 1}
    labels_only = {'labels': torch.randint(0, 3, (2, 16, 16)),
                   'depth': torch.full((2, 1, 16, 16), NAN)}
    losses = task_losses(outputs, depth_only)
    assert losses['segm'] is None and losses['depth'] is not None
    assert task_losses(outputs, labels_only)['depth'] is None

    for kind in ('fixed', 'uncertainty'):
        losses = task_losses(outputs, labels_only)
        assert losses['depth'] is None and losses['segm'] is not None
        weighting = build_task_weighting(kind)
        total = weighting(losses)
        total.backward()
        assert torch.isfinite(total)
        assert outputs['depth'].grad is None or not outputs['depth'].grad.any()
    assert build_task_weighting('fixed')({'segm': None, 'depth': None}) is None


def test_fixed_weighting_is_a_weighted_sum():
    weighting = build_task_weighting('fixed', weights={'segm': 2.0, 'depth': 0.5})
    total = weighting({'segm': torch.tensor(3.0), 'depth': torch.tensor(4.0)})
    assert total.item() == pytest.approx(8.0)


def test_uncertainty_weighting_matches_kendall():
    weighting = build_task_weighting('uncertainty')
    with torch.no_grad():
        weighting.log_variance.copy_(torch.tensor([math.log(2.0), math.log(4.0)]))
    total = weighting({'segm': torch.tensor(3.0), 'depth': torch.tensor(8.0)})
    # segm: 3/2 + ln(2)/2; depth: 0.5 * 8/4 + ln(4)/2
    expected = 1.5 + math.log(2.0) / 2 + 1.0 + math.log(4.0) / 2
    assert total.item() == pytest.approx(expected)
    # A task absent from the batch adds neither its loss nor its regulariser.
    alone = weighting({'segm': torch.tensor(3.0), 'depth': None})
    assert alone.item() == pytest.approx(1.5 + math.log(2.0) / 2)


def test_unknown_depth_loss_is_rejected():
    with pytest.raises(ValueError, match='unknown depth loss'):
        depth_loss(_depth([1.0]), _depth([1.0]), 'l3')
