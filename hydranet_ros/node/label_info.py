"""The class map message (hydranet_ros/LabelInfo) of the model that serves frames."""
import os

import numpy as np

from std_msgs.msg import Header

from hydranet_ros.msg import LabelInfo, SegmentationClass

from ..model import HydraNetConfig

UNLABELED_ID_MONO8 = 255
UNLABELED_ID_16UC1 = 65535


def unlabeled_id(labels_dtype: np.dtype) -> int:
    """Return the label value of unlabelled pixels for uint8 or uint16 label images."""
    return UNLABELED_ID_MONO8 if np.dtype(labels_dtype) == np.uint8 else UNLABELED_ID_16UC1


def class_name(config: HydraNetConfig, class_id: int) -> str:
    """Return the name of a class, or class_<id> when the model has no names."""
    if class_id < len(config.class_names):
        return config.class_names[class_id]
    return f'class_{class_id}'


def model_name(model_path: str) -> str:
    """Return a short name of the model for people: its file name, or the bundled default."""
    return os.path.basename(model_path) if model_path else 'bundled default model'


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
