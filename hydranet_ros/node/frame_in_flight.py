"""A frame between the network (inference thread) and its outputs (publishing thread)."""
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..engine.prediction import NetworkOutputs
from .input_frames import ReceivedFrame


@dataclass
class FrameInFlight:
    """What the publishing thread needs to finish a frame whose network has run.

    Times are ``time.perf_counter`` seconds; ``waited_s`` is how long the frame waited for
    the inference thread (it arrived while the previous frame held it) and ``period_ms`` the
    time between the starts of the two frames (None when the inference thread was idle).
    """

    frame: ReceivedFrame
    engine: Any
    rgb: np.ndarray
    network: NetworkOutputs
    start_s: float
    decode_ms: float
    network_ms: float
    network_end_s: float
    waited_s: float
    period_ms: Optional[float]
