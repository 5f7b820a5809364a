"""The class map message (hydranet_ros/LabelInfo) of the model that serves frames."""
import numpy as np

from std_msgs.msg import Header

from hydranet_ros.msg import LabelInfo, SegmentationClass

# model_name and unlabeled_id are used through this module by the node.
from ..engine.class_map import class_name, model_name, unlabeled_id  # noqa: F401
from ..model import HydraNetConfig


def label_info_message(config: HydraNetConfig, colors: np.ndarray, header: Header,
                       threshold: float, unlabeled: int, name: str, min_depth_m: float,
                       max_depth_m: float) -> LabelInfo:
    """Return the class map: id, name and overlay colour of every class."""
    class_map = [SegmentationClass(class_id=i, class_name=class_name(config, i),
                                   r=int(colors[i][0]), g=int(colors[i][1]), b=int(colors[i][2]))
                 for i in range(config.num_classes)]
    return LabelInfo(header=header, class_map=class_map, threshold=float(threshold),
                     unlabeled_id=unlabeled, model_name=name, min_depth_m=float(min_depth_m),
                     max_depth_m=float(max_depth_m))
