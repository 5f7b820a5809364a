"""Recorded sensor_msgs messages (rosbags objects) to and from NumPy images."""
from typing import Any, Dict

import numpy as np

from ..engine import decode_compressed, decode_raw, ImageFormatError

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


def message_to_rgb(msg: Any, msgtype: str) -> np.ndarray:
    """Return an Image or CompressedImage message as RGB uint8, decoded by the engine's table.

    Raise ``ImageFormatError`` for a message the node would refuse as well.
    """
    if msgtype == IMAGE_TYPE:
        return decode_raw(msg.data, str(msg.encoding), msg.width, msg.height, msg.step,
                          bool(msg.is_bigendian))
    if msgtype == COMPRESSED_IMAGE_TYPE:
        return decode_compressed(msg.data, str(msg.format))
    raise ImageFormatError(f'{msgtype} is not an image type')


def image_message(types: Dict[str, Any], header: Any, array: np.ndarray, encoding: str) -> Any:
    """Return a sensor_msgs/Image with ``header`` holding ``array`` (little-endian)."""
    height, width = array.shape[:2]
    little_endian = array.astype(array.dtype.newbyteorder('<'), copy=False)
    data = np.ascontiguousarray(little_endian).view(np.uint8).reshape(-1)
    return types[IMAGE_TYPE](header=header, height=height, width=width, encoding=encoding,
                             is_bigendian=0, step=data.size // height, data=data)


def restamped_camera_info(types: Dict[str, Any], info: Any, header: Any) -> Any:
    """Return a copy of a sensor_msgs/CameraInfo carrying ``header`` (stamp and frame id)."""
    fields = {name: getattr(info, name) for name in info.__dataclass_fields__}
    fields['header'] = header
    return types[CAMERA_INFO_TYPE](**fields)
