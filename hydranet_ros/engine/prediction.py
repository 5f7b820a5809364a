"""What the engine returns for one image, and what its network returns before decoding."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np


@dataclass
class Prediction:
    """Per-pixel outputs at the input image's resolution.

    ``depth`` is metres (float32, NaN where invalid or outside the model's depth range);
    ``labels`` holds class ids (uint8, or uint16 above 255 classes); ``confidence`` is the
    largest softmax probability in [0, 1]; ``overlay`` is an RGB picture for people;
    ``normals`` are unit vectors (H, W, 3) for three-task models, else None.
    """

    depth: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    overlay: Optional[np.ndarray] = None
    normals: Optional[np.ndarray] = None
    timings_ms: Dict[str, float] = field(default_factory=dict)


@dataclass
class NetworkOutputs:
    """The network's outputs for images of one size, before resizing and decoding.

    ``raw`` maps output names (``segm``, ``depth``, ``normals``) to arrays or tensors at the
    network's resolution; ``timings_ms`` holds the stages timed so far.
    """

    images: List[np.ndarray]
    height: int
    width: int
    raw: Dict[str, Any]
    timings_ms: Dict[str, float] = field(default_factory=dict)
