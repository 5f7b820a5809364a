"""Augmentations move picture, depth and labels together and keep depth metric."""
import numpy as np
import pytest

from hydranet_ros.data.sample import Sample
from hydranet_ros.data.transforms import (ColorJitter, RandomCrop, RandomHorizontalFlip,
                                          RandomScale, to_tensors)


def _coded_sample(height=12, width=16):
    """Return a sample whose picture, depth and labels all encode the pixel position."""
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([rows * 10, cols * 10, np.zeros_like(rows)], -1).astype(np.uint8)
    depth = (1.0 + cols).astype(np.float32)
    labels = (cols % 5).astype(np.uint8)
    return Sample(image, depth, labels)


class _Always:
    """A generator stand-in whose draws are fixed (uniform -> value, integers -> value)."""

    def __init__(self, value):
        self.value = value

    def random(self):
        return 0.0

    def uniform(self, low, high):
        return self.value

    def integers(self, low, high):
        return min(int(self.value), high - 1)


def test_flip_mirrors_all_three():
    sample = _coded_sample()
    flipped = RandomHorizontalFlip(1.0)(sample, np.random.default_rng(0))
    assert np.array_equal(flipped.image, sample.image[:, ::-1])
    assert np.array_equal(flipped.depth_m, sample.depth_m[:, ::-1])
    assert np.array_equal(flipped.labels, sample.labels[:, ::-1])


def test_crop_cuts_the_same_window():
    sample = _coded_sample()
    cropped = RandomCrop(5, 7)(sample, _Always(3))
    assert np.array_equal(cropped.image, sample.image[3:8, 3:10])
    assert np.array_equal(cropped.depth_m, sample.depth_m[3:8, 3:10])
    assert np.array_equal(cropped.labels, sample.labels[3:8, 3:10])


def test_crop_pads_with_ignore_and_unknown():
    sample = _coded_sample(4, 4)
    cropped = RandomCrop(6, 5)(sample, _Always(0))
    assert cropped.image.shape == (6, 5, 3)
    assert (cropped.labels[4:] == 255).all() and (cropped.labels[:, 4] == 255).all()
    assert np.isnan(cropped.depth_m[4:]).all()


def test_scale_keeps_labels_exact_and_depth_metric():
    sample = _coded_sample()
    zoomed = RandomScale((2.0, 2.0), metric_zoom=True)(sample, _Always(2.0))
    assert zoomed.image.shape == (24, 32, 3)
    # Nearest-neighbour: every label id of the result exists in the source (no blends).
    assert set(np.unique(zoomed.labels)) <= set(np.unique(sample.labels))
    assert np.array_equal(zoomed.labels[::2, ::2], sample.labels)
    # Twice as large looks twice as near.
    assert np.allclose(zoomed.depth_m[::2, ::2], sample.depth_m / 2.0)
    plain = RandomScale((2.0, 2.0), metric_zoom=False)(sample, _Always(2.0))
    assert np.allclose(plain.depth_m[::2, ::2], sample.depth_m)


def test_colour_jitter_changes_only_the_picture():
    sample = _coded_sample()
    jittered = ColorJitter(0.5, 0.5, 0.5, 20.0)(sample, np.random.default_rng(4))
    assert not np.array_equal(jittered.image, sample.image)
    assert jittered.depth_m is sample.depth_m and jittered.labels is sample.labels


def test_to_tensors_normalises_and_marks_unknowns():
    sample = Sample(np.full((2, 3, 3), 255, np.uint8),
                    np.array([[1.0, np.inf, np.nan], [2.0, 3.0, 4.0]], np.float32), None)
    tensors = to_tensors(sample, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert tensors['image'].shape == (3, 2, 3)
    assert float(tensors['image'].min()) == pytest.approx(1.0)
    depth = tensors['depth'][0]
    assert depth[0, 0] == 1.0 and depth[0, 1].isnan() and depth[0, 2].isnan()
    assert (tensors['labels'] == 255).all() and not tensors['has_labels']


def test_mismatched_annotation_is_rejected():
    with pytest.raises(ValueError, match='must match the picture'):
        Sample(np.zeros((4, 4, 3), np.uint8), np.zeros((3, 4), np.float32))
