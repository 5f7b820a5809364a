"""One time shard of a bag, converted as hydranet-bag converts the whole bag (no Ray here).

The shard's part bag holds, for the messages recorded in its window, what hydranet-bag writes
for them: the same connections in the same order (the output topics, then the recorded ones),
the recorded messages copied and each selected frame's outputs, made by hydranet-bag's own
``BagOutput`` and ``BagProcessor``. Frames are counted from the start of the bag's time window
(``Shard.first_image`` is the count of the window's first image), so ``--every`` picks the same
frames as in one pass.
"""
import argparse
import logging
import time
from typing import Callable, Dict, Optional

from rosbags.rosbag2 import Writer

from ..engine import InferenceEngine
from .bag import BAG_FORMAT_VERSION, BagOutput, BagProcessor, CameraInfoIndex, \
    camera_info_note, output_topics, skipped_by_reason, STORAGES
from .bag_label_info import register_label_info
from .bag_messages import CAMERA_INFO_TYPE
from .bag_reading import BagDamaged, messages, open_bag
from .bag_topics import bag_typestore
from .depth_options import ToolDepthRules
from .fleet_bags import Shard

LOGGER = logging.getLogger('hydranet_ros.tools')

FrameDone = Callable[[], None]


def convert_shard(shard: Shard, image_topic: str, info_topic: Optional[str], storage: str,
                  args: argparse.Namespace, engine: InferenceEngine,
                  frame_done: Optional[FrameDone] = None) -> Dict:
    """Write the part bag of one shard; return its frames, failures, time and damage.

    Raises ``ToolError`` when the bag cannot be opened; a bag damaged inside the window ends
    the shard with ``damaged`` set (the part is then incomplete and must not be used).
    """
    started = time.perf_counter()
    reader = open_bag(shard.bag)
    try:
        connections = reader.connections
        store = bag_typestore(connections)
        image_connections = {c.id for c in connections if c.topic == image_topic}
        info_connections = [c for c in connections
                            if c.topic == info_topic and c.msgtype == CAMERA_INFO_TYPE]
        camera_infos = CameraInfoIndex(reader, info_connections, store, shard.bag)
        topics = output_topics(args.namespace, len(camera_infos) > 0, args.confidence,
                               register_label_info(store))
        damage: Optional[BagDamaged] = None
        with Writer(shard.part_path, version=BAG_FORMAT_VERSION,
                    storage_plugin=STORAGES[storage]) as writer:
            output = BagOutput(writer, store, topics)
            if not args.outputs_only:
                for connection in connections:
                    output.add_copy(connection)
            processor = BagProcessor(engine, output, camera_infos, None, (), args.model,
                                     ToolDepthRules(args, engine), args.max_input_pixels)
            image_index = shard.first_image
            try:
                for connection, timestamp, raw in messages(reader, shard.bag,
                                                           start=shard.start_ns,
                                                           stop=shard.stop_ns):
                    output.copy(connection, timestamp, raw)
                    if connection.id not in image_connections:
                        continue
                    index, image_index = image_index, image_index + 1
                    if index % args.every or (shard.last_image is not None
                                              and index > shard.last_image):
                        continue
                    processor.process(index, timestamp, raw, connection.msgtype)
                    if frame_done is not None:
                        frame_done()
            except BagDamaged as error:
                damage = error
    finally:
        reader.close()
    notes = [camera_info_note(image_topic, info_topic, camera_infos)] if not len(
        camera_infos) else []
    return {'bag': shard.name, 'shard': shard.index, 'frames': len(processor.frames),
            'failed': processor.failures,
            'skipped_by_reason': skipped_by_reason(processor.failures),
            'inference_ms': round(sum(f['ms'] for f in processor.frames), 3),
            'seconds': round(time.perf_counter() - started, 3), 'notes': notes,
            'damaged': None if damage is None else str(damage)}
