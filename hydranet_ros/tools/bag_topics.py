"""A rosbag2's topics: message types, the camera image topic and its camera_info sibling."""
import posixpath
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.typesys import get_types_from_idl, get_types_from_msg, Stores, get_typestore
from rosbags.typesys.store import Typestore

from ..model.checkpoint_file import library_reason
from .bag_messages import CAMERA_INFO_TYPE, COMPRESSED_IMAGE_TYPE, IMAGE_TYPE

IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)
# Message definitions of the ROS 2 distribution this package targets first, newer ones after.
PREFERRED_STORES = ('ROS2_KILTED', 'ROS2_JAZZY', 'LATEST')
_IDL_SEPARATOR = '=' * 80 + '\n'


class BagTopicError(ValueError):
    """The bag lacks the topic asked for, or the choice of image topic is ambiguous."""


@dataclass(frozen=True)
class TopicSummary:
    """One topic of a bag: name, message type and message count."""

    name: str
    msgtype: str
    count: int


def default_typestore() -> Typestore:
    """Return the message definitions of ROS 2 Kilted (or the newest this rosbags knows)."""
    for name in PREFERRED_STORES:
        if hasattr(Stores, name):
            return get_typestore(getattr(Stores, name))
    return get_typestore(Stores.LATEST)


def _definitions(connection: Connection) -> Dict:
    definition = connection.msgdef
    if not definition.data:
        return {}
    if definition.format == MessageDefinitionFormat.MSG:
        return get_types_from_msg(definition.data, connection.msgtype)
    if definition.format == MessageDefinitionFormat.IDL:
        if not definition.data.startswith(f'{_IDL_SEPARATOR}IDL: '):
            return get_types_from_idl(definition.data)
        types = {}
        for section in definition.data.split(_IDL_SEPARATOR)[1:]:
            types.update(get_types_from_idl(section.split('\n', 1)[1]))
        return types
    return {}


def bag_typestore(connections: Sequence[Connection],
                  unusable: Optional[Dict[str, str]] = None) -> Typestore:
    """Return the default typestore plus every type the bag defines that it lacks.

    A connection whose definition cannot be parsed or registered is left out; its type and the
    reason go into ``unusable`` (when given). Its messages can still be copied as recorded.
    """
    store = default_typestore()
    for connection in connections:
        try:
            added = {name: definition
                     for name, definition in _definitions(connection).items()
                     if name not in store.fielddefs}
            if added:
                store.register(added)
        except Exception as error:  # noqa: B902 - a damaged definition may raise anything
            if unusable is not None:
                unusable[connection.msgtype] = library_reason(error)
    return store


def summarize_topics(connections: Sequence[Connection]) -> List[TopicSummary]:
    """Return one entry per topic and type, sorted by name."""
    counts: Dict[tuple, int] = {}
    for connection in connections:
        key = (connection.topic, connection.msgtype)
        counts[key] = counts.get(key, 0) + connection.msgcount
    return [TopicSummary(topic, msgtype, count)
            for (topic, msgtype), count in sorted(counts.items())]


def format_topic_list(topics: Sequence[TopicSummary]) -> str:
    """Return a table of the topics, camera image topics marked with ``*``."""
    width = max([len(t.name) for t in topics] + [5])
    lines = [f'  {"topic":<{width}}  {"messages":>8}  type']
    for topic in topics:
        mark = '*' if topic.msgtype in IMAGE_TYPES else ' '
        lines.append(f'{mark} {topic.name:<{width}}  {topic.count:>8}  {topic.msgtype}')
    lines.append('(* = image topic usable with --topic)')
    return '\n'.join(lines)


def choose_image_topic(topics: Sequence[TopicSummary], requested: Optional[str] = None,
                       exclude_prefix: str = '') -> TopicSummary:
    """Return the image topic to process: ``requested``, or the only camera image topic.

    Without a request, topics under ``exclude_prefix`` (earlier outputs) are ignored and a raw
    ``Image`` topic is preferred over its own ``.../compressed`` transport.
    """
    images = [t for t in topics if t.msgtype in IMAGE_TYPES]
    listing = ', '.join(f'{t.name} ({t.msgtype.rsplit("/", 1)[-1]})' for t in images) or 'none'
    if requested:
        for topic in images:
            if topic.name == requested:
                return topic
        known = {t.name: t.msgtype for t in topics}
        if requested in known:
            raise BagTopicError(f'topic {requested} holds {known[requested]}, not an image; '
                                f'image topics: {listing}')
        raise BagTopicError(f'topic {requested} is not in the bag; image topics: {listing}')
    candidates = [t for t in images
                  if not (exclude_prefix and t.name.startswith(exclude_prefix.rstrip('/') + '/'))]
    raw_names = {t.name for t in candidates if t.msgtype == IMAGE_TYPE}
    candidates = [t for t in candidates
                  if not (t.msgtype == COMPRESSED_IMAGE_TYPE
                          and posixpath.dirname(t.name) in raw_names)]
    if not candidates:
        raise BagTopicError('the bag has no sensor_msgs/Image or CompressedImage topic '
                            '(list its topics with --list)')
    if len(candidates) > 1:
        raise BagTopicError(f'the bag has several image topics; choose one with --topic: '
                            f'{listing}')
    return candidates[0]


def camera_info_topic(topics: Sequence[TopicSummary], image_topic: str,
                      requested: Optional[str] = None) -> Optional[str]:
    """Return the camera_info topic of ``image_topic``: its sibling, or the bag's only one."""
    infos = [t.name for t in topics if t.msgtype == CAMERA_INFO_TYPE]
    if requested:
        if requested not in infos:
            raise BagTopicError(f'camera_info topic {requested} is not in the bag (as '
                                f'{CAMERA_INFO_TYPE}); camera_info topics: '
                                f'{", ".join(infos) or "none"}')
        return requested
    base = image_topic
    if base.endswith('/compressed'):
        base = posixpath.dirname(base)
    sibling = posixpath.join(posixpath.dirname(base), 'camera_info')
    if sibling in infos:
        return sibling
    return infos[0] if len(infos) == 1 else None
