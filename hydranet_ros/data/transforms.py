"""Augmentations applied consistently to a sample's picture, depth and labels.

Geometry (flip, scale, crop) moves all three together: the picture is resampled bilinearly, labels
and depth by nearest neighbour (never blending class ids, never inventing depth across an edge).
Zooming by a factor s makes the scene look as if it were s times closer, so with
``metric_zoom=True`` depth is divided by s to stay consistent with the camera's focal length.
Colour jitter changes only the picture. Every transform takes a ``numpy.random.Generator``.
"""
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..model import IMAGENET_MEAN, IMAGENET_STD
from .classes import IGNORE_INDEX
from .sample import Sample

Transform = Callable[[Sample, np.random.Generator], Sample]
"""An augmentation: takes a sample and a random generator, returns the new sample."""


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Iterable[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Return the transformed sample."""
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample


class RandomHorizontalFlip:
    """Mirror picture, depth and labels left-right with probability ``probability``."""

    def __init__(self, probability: float = 0.5) -> None:
        self.probability = probability

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Return the sample, flipped or not."""
        if rng.random() >= self.probability:
            return sample

        def flip(array: Optional[np.ndarray]) -> Optional[np.ndarray]:
            return None if array is None else np.ascontiguousarray(array[:, ::-1])
        return sample.with_(image=flip(sample.image), depth_m=flip(sample.depth_m),
                            labels=flip(sample.labels))


class RandomScale:
    """Resize by a factor drawn uniformly from ``scale_range``.

    Args:
        scale_range: (min, max) zoom factors.
        metric_zoom: divide depth by the factor (the camera's focal length is unchanged, so an
            enlarged object must be nearer).
    """

    def __init__(self, scale_range: Tuple[float, float] = (0.75, 1.25),
                 metric_zoom: bool = True) -> None:
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.metric_zoom = metric_zoom

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Return the resized sample."""
        scale = float(rng.uniform(*self.scale_range))
        if abs(scale - 1.0) < 1e-6:
            return sample
        height, width = sample.image.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(sample.image, size, interpolation=cv2.INTER_LINEAR)
        depth = labels = None
        if sample.depth_m is not None:
            depth = cv2.resize(sample.depth_m, size, interpolation=cv2.INTER_NEAREST)
            if self.metric_zoom:
                depth = depth / np.float32(scale)
        if sample.labels is not None:
            labels = cv2.resize(sample.labels, size, interpolation=cv2.INTER_NEAREST)
        return sample.with_(image=image, depth_m=depth, labels=labels)


class RandomCrop:
    """Cut a random ``(height, width)`` window; pad first where the sample is smaller.

    Padding is black in the picture, unknown (NaN) in depth and ignored (255) in labels.
    """

    def __init__(self, height: int, width: int) -> None:
        self.height = int(height)
        self.width = int(width)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Return the cropped sample."""
        height, width = sample.image.shape[:2]
        pad_h, pad_w = max(self.height - height, 0), max(self.width - width, 0)
        if pad_h or pad_w:
            sample = _pad(sample, pad_h, pad_w)
            height, width = sample.image.shape[:2]
        top = int(rng.integers(0, height - self.height + 1))
        left = int(rng.integers(0, width - self.width + 1))
        window = (slice(top, top + self.height), slice(left, left + self.width))

        def cut(array: Optional[np.ndarray]) -> Optional[np.ndarray]:
            return None if array is None else np.ascontiguousarray(array[window])
        return sample.with_(image=cut(sample.image), depth_m=cut(sample.depth_m),
                            labels=cut(sample.labels))


def _pad(sample: Sample, pad_h: int, pad_w: int) -> Sample:
    """Pad at the bottom and right: black picture, unknown depth, ignored labels."""
    def pad(array: Optional[np.ndarray], value: float) -> Optional[np.ndarray]:
        if array is None:
            return None
        widths = ((0, pad_h), (0, pad_w)) + ((0, 0),) * (array.ndim - 2)
        return np.pad(array, widths, constant_values=value)
    return sample.with_(image=pad(sample.image, 0), depth_m=pad(sample.depth_m, np.nan),
                        labels=pad(sample.labels, IGNORE_INDEX))


class ColorJitter:
    """Random brightness, contrast and saturation factors in [1 - x, 1 + x], and a hue shift.

    Args:
        brightness, contrast, saturation: maximum relative change.
        hue_deg: maximum hue rotation in degrees.
    """

    def __init__(self, brightness: float = 0.3, contrast: float = 0.3, saturation: float = 0.3,
                 hue_deg: float = 10.0) -> None:
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue_deg = hue_deg

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Return the sample with a recoloured picture."""
        image = sample.image.astype(np.float32)
        image *= rng.uniform(1.0 - self.brightness, 1.0 + self.brightness)
        grey = image.mean(axis=-1, keepdims=True)
        contrast = rng.uniform(1.0 - self.contrast, 1.0 + self.contrast)
        image = grey.mean() + (image - grey.mean()) * contrast
        grey = image.mean(axis=-1, keepdims=True)
        image = grey + (image - grey) * rng.uniform(1.0 - self.saturation, 1.0 + self.saturation)
        image = np.clip(image, 0.0, 255.0).astype(np.uint8)
        if self.hue_deg > 0.0:
            hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
            shift = int(round(rng.uniform(-self.hue_deg, self.hue_deg) / 2.0))  # OpenCV: 0..179
            hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
            image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return sample.with_(image=image)


def to_tensors(sample: Sample, mean: Sequence[float] = IMAGENET_MEAN,
               std: Sequence[float] = IMAGENET_STD) -> Dict[str, torch.Tensor]:
    """Convert a sample to the tensors a batch is made of.

    Returns a dict: normalised ``image`` (3, H, W), ``depth`` (1, H, W; NaN unknown), ``labels``
    (H, W) int64 (255 unknown) and the flags ``has_depth`` and ``has_labels``.
    """
    image: np.ndarray = sample.image.astype(np.float32) / 255.0
    image = (image - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    height, width = sample.image.shape[:2]
    if sample.depth_m is None:
        depth = np.full((height, width), np.nan, dtype=np.float32)
    else:
        depth = np.where(np.isfinite(sample.depth_m), sample.depth_m, np.nan).astype(np.float32)
    if sample.labels is None:
        labels = np.full((height, width), IGNORE_INDEX, dtype=np.int64)
    else:
        labels = sample.labels.astype(np.int64)
    return {
        'image': torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
        'depth': torch.from_numpy(depth)[None],
        'labels': torch.from_numpy(labels),
        'has_depth': torch.tensor(sample.depth_m is not None),
        'has_labels': torch.tensor(sample.labels is not None),
    }


def training_transform(crop_size: Optional[Tuple[int, int]] = None,
                       scale_range: Tuple[float, float] = (1.0, 1.0), flip: bool = True,
                       color_jitter: float = 0.3, metric_zoom: bool = True) -> Compose:
    """Build the usual training augmentation: scale, crop, flip and colour jitter."""
    steps: List[Transform] = []
    if tuple(scale_range) != (1.0, 1.0):
        steps.append(RandomScale(scale_range, metric_zoom))
    if crop_size is not None:
        steps.append(RandomCrop(*crop_size))
    if flip:
        steps.append(RandomHorizontalFlip())
    if color_jitter > 0.0:
        steps.append(ColorJitter(color_jitter, color_jitter, color_jitter, 30.0 * color_jitter))
    return Compose(steps)
