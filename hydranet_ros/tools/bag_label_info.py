"""The class map of a processed bag: hydranet_ros/msg/LabelInfo, latched on playback.

The node publishes its class map once on a transient-local topic; a bag keeps it as one message
(again when the camera frame changes) on a connection whose offered QoS is transient local, so
that ``ros2 bag play`` serves it to late subscribers as the node does.
"""
from pathlib import Path
from typing import Any, Iterator

from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)
from rosbags.typesys import get_types_from_msg
from rosbags.typesys.store import Typestore

from ..engine.class_map import class_name, unlabeled_id
from ..model import HydraNetConfig
from ..share import share_directories

LABEL_INFO_TYPE = 'hydranet_ros/msg/LabelInfo'
CLASS_TYPE = 'hydranet_ros/msg/SegmentationClass'
MESSAGE_NAMES = ('SegmentationClass', 'LabelInfo')
_NO_TIME = QosTime(sec=0, nsec=0)
LATCHED_QOS = Qos(history=QosHistory.KEEP_LAST, depth=1, reliability=QosReliability.RELIABLE,
                  durability=QosDurability.TRANSIENT_LOCAL, deadline=_NO_TIME,
                  lifespan=_NO_TIME, liveliness=QosLiveliness.AUTOMATIC,
                  liveliness_lease_duration=_NO_TIME, avoid_ros_namespace_conventions=False)


def message_directories() -> Iterator[Path]:
    """Yield where this package's .msg files may be: its share directories, in order."""
    for directory in share_directories():
        yield directory / 'msg'


def register_label_info(store: Typestore) -> bool:
    """Add the class map types to ``store``; return False when no definition is found."""
    if LABEL_INFO_TYPE in store.fielddefs:
        return True
    for directory in message_directories():
        files = [directory / f'{name}.msg' for name in MESSAGE_NAMES]
        if all(path.is_file() for path in files):
            types = {}
            for name, path in zip(MESSAGE_NAMES, files):
                types.update(get_types_from_msg(path.read_text(encoding='utf-8'),
                                                f'hydranet_ros/msg/{name}'))
            store.register(types)
            return True
    return False


def label_info_message(store: Typestore, config: HydraNetConfig, colors: Any, header: Any,
                       labels_dtype: Any, name: str) -> Any:
    """Return the class map of ``config`` (ids, names, overlay colours) with ``header``.

    The bag tool labels every pixel, so the confidence threshold is 0.
    """
    types = store.types
    class_map = [types[CLASS_TYPE](class_id=i, class_name=class_name(config, i),
                                   r=int(colors[i][0]), g=int(colors[i][1]), b=int(colors[i][2]))
                 for i in range(config.num_classes)]
    return types[LABEL_INFO_TYPE](header=header, class_map=class_map, threshold=0.0,
                                  unlabeled_id=unlabeled_id(labels_dtype), model_name=name,
                                  min_depth_m=float(config.min_depth_m),
                                  max_depth_m=float(config.max_depth_m))
