"""Frames as received from the camera topics, and their decoding into RGB pixels."""
from dataclasses import dataclass
from typing import Union

import numpy as np

from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ..engine import to_rgb
from .conversions import compressed_to_array, image_to_array
from .serialized_image import SerializedImage


@dataclass
class ReceivedFrame:
    """One camera message and the monotonic time (perf_counter seconds) it arrived.

    ``take_ms`` is how long the node spent taking and checking the queued camera messages
    before it could start on this frame.
    """

    msg: Union[Image, CompressedImage, SerializedImage]
    received_s: float
    take_ms: float = 0.0

    @property
    def header(self) -> Header:
        """The camera's header, copied onto every output."""
        return self.msg.header

    @property
    def compressed(self) -> bool:
        """Whether the message is a CompressedImage."""
        return isinstance(self.msg, CompressedImage)


def decode_rgb(frame: ReceivedFrame) -> np.ndarray:
    """Return the frame as contiguous RGB uint8 (H, W, 3).

    Raises ``ImageConversionError`` for messages that do not match their encoding and
    ``ImageFormatError`` for encodings the network cannot use (16UC1, 32FC1).
    """
    if frame.compressed:
        pixels, encoding = compressed_to_array(frame.msg)
    else:
        pixels, encoding = image_to_array(frame.msg), frame.msg.encoding.strip()
    return to_rgb(pixels, encoding)
