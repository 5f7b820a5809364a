"""Normalising uint8 RGB batches into the network's input."""
from typing import Sequence

import numpy as np
import torch

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


def normalise_on_device(images: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                        dtype: torch.dtype) -> torch.Tensor:
    """Normalise an (N, H, W, 3) uint8 tensor on its device; return NCHW in channels_last."""
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], device=images.device)
    offset = torch.tensor([m / s for m, s in zip(mean, std)], device=images.device)
    normalised = images.float().mul_(scale).sub_(offset)
    return normalised.to(dtype).permute(0, 3, 1, 2)
