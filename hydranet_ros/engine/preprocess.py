"""Normalising uint8 RGB batches into the network's input."""
from typing import Sequence

import numpy as np

import cv2


def normalise_nchw(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Return ``(images / 255 - mean) / std`` as float32 NCHW for an (N, H, W, 3) uint8 batch."""
    batch, height, width, _ = images.shape
    out = np.empty((batch, 3, height, width), np.float32)
    for index in range(batch):
        for channel, plane in enumerate(cv2.split(images[index])):
            target = out[index, channel]
            target[...] = plane
            target -= np.float32(255.0 * mean[channel])
            target *= np.float32(1.0 / (255.0 * std[channel]))
    return out
