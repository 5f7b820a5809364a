"""camera_info for the outputs: the input image's header, and K/P scaled to the output size."""
import copy

from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header


def scale_camera_info(info: CameraInfo, width: int, height: int) -> CameraInfo:
    """Return a copy of ``info`` describing the same camera at ``width`` x ``height`` pixels.

    Pixel centres are at integer coordinates (as in OpenCV), so a principal point scales as
    ``(c + 0.5) * s - 0.5``; focal lengths and the projection's translation scale by ``s``.
    Binning is folded into the scale (the result has binning 0) and the ROI is scaled.
    """
    scaled = copy.deepcopy(info)
    if info.width == 0 or info.height == 0 or (info.width, info.height) == (width, height):
        scaled.width, scaled.height = width, height
        return scaled
    scale_x = width / float(info.width)
    scale_y = height / float(info.height)
    k = list(info.k)
    k[0] *= scale_x
    k[1] *= scale_x
    k[2] = (k[2] + 0.5) * scale_x - 0.5
    k[4] *= scale_y
    k[5] = (k[5] + 0.5) * scale_y - 0.5
    scaled.k = k
    p = list(info.p)
    p[0] *= scale_x
    p[1] *= scale_x
    p[2] = (p[2] + 0.5) * scale_x - 0.5
    p[3] *= scale_x
    p[5] *= scale_y
    p[6] = (p[6] + 0.5) * scale_y - 0.5
    p[7] *= scale_y
    scaled.p = p
    scaled.width, scaled.height = width, height
    scaled.binning_x = scaled.binning_y = 0
    roi = scaled.roi
    roi.x_offset = int(round(info.roi.x_offset * scale_x))
    roi.y_offset = int(round(info.roi.y_offset * scale_y))
    roi.width = int(round(info.roi.width * scale_x))
    roi.height = int(round(info.roi.height * scale_y))
    return scaled


def camera_info_for_output(info: CameraInfo, header: Header, width: int,
                           height: int) -> CameraInfo:
    """Return the camera_info to publish beside an output image: its header, its size."""
    result = scale_camera_info(info, width, height)
    result.header = header
    return result
