"""Demo through ROS 2: the demo camera and hydranet_node as processes, pictures of the outputs.

Starts ``hydranet_demo_source`` (the shipped street sample, then generated street scenes) and
``hydranet_node`` (with config/hydranet.yaml) on a private domain, subscribes to what the node
publishes, and writes for each distinct camera image: ``<name>_panel.png`` (input |
segmentation/color | colourised depth/image, with a class legend from segmentation/label_info),
``<name>_labels.png`` and ``<name>_depth.npy``, plus ``summary.json`` with class shares, depth
range, camera_info and the node's diagnostics. Logs of both processes go to ``<out>/logs``.

    python -m hydranet_ros.tools.node_demo --out out/node_demo
"""
import argparse
import collections
import json
import os
import sys
import time
import zlib
from typing import Dict, List, Optional

import numpy as np

from ..engine.visualize import colorize_depth
from ..model import read_checkpoint_file
from .errors import add_debug_argument, tool_main
from .image_io import output_path, write_npy, write_png
from .node_processes import (DEMO_SOURCE_MODULE, Listener, NODE_MODULE, PACKAGE_DIR,
                             node_arguments, ros_environment, start, stop, wait_for)
from .panel import compose_panel
from .sizes import DeprecatedWidthHeight, input_size, size_text
from .prediction_summary import class_histogram, depth_statistics

NODE_NAME = 'hydranet'
STREET_SAMPLE = PACKAGE_DIR / 'assets' / 'samples' / 'kitti_000099.png'
GENERATED_SIZE = (192, 640)
DEFAULT_MODEL_SIZE = (96, 320)
"""Height and width the bundled model was trained at (it is only accurate at that scale)."""
CAMERA_RATE_HZ = 5.0
SECONDS_PER_IMAGE = 4.0
PHASE_TIMEOUT_S = 600.0
REMEMBERED_INPUTS = 64
LEGEND_CLASSES = 6


class OutputCollector:
    """Pairs the node's outputs with the camera image of the same stamp."""

    def __init__(self, listener: Listener) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        from hydranet_ros.msg import LabelInfo

        self.listener = listener
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.inputs: 'collections.OrderedDict[tuple, object]' = collections.OrderedDict()
        self.outputs: Dict[str, Dict[tuple, object]] = {
            'depth/image': {}, 'segmentation/color': {}, 'segmentation/labels': {},
            'depth/camera_info': {}}
        self.label_info = None
        self.diagnostics: Dict[str, str] = {}
        self.results: Dict[int, dict] = {}
        listener.listen(Image, 'image', self._on_input, reliable)
        for topic in self.outputs:
            msg_type = CameraInfo if topic.endswith('camera_info') else Image
            listener.listen(msg_type, topic, lambda m, t=topic: self._on_output(t, m), reliable)
        listener.listen(LabelInfo, 'segmentation/label_info', self._on_label_info, latched)
        listener.listen(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    @staticmethod
    def _key(msg) -> tuple:
        return (msg.header.stamp.sec, msg.header.stamp.nanosec)

    def _on_input(self, msg) -> None:
        self.inputs[self._key(msg)] = msg
        while len(self.inputs) > REMEMBERED_INPUTS:
            self.inputs.popitem(last=False)

    def _on_output(self, topic: str, msg) -> None:
        key = self._key(msg)
        self.outputs[topic][key] = msg
        self._try_complete(key)

    def _on_label_info(self, msg) -> None:
        self.label_info = msg

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(f'{NODE_NAME}:'):
                self.diagnostics = {item.key: item.value for item in status.values}

    def _try_complete(self, key: tuple) -> None:
        from ..node.messages import image_to_array
        image = self.inputs.get(key)
        found = {topic: messages.get(key) for topic, messages in self.outputs.items()}
        if image is None or any(msg is None for msg in found.values()):
            return
        pixels = image_to_array(image)
        image_id = zlib.crc32(pixels.tobytes())
        if image_id not in self.results:
            self.results[image_id] = {
                'input': np.array(pixels), 'depth': np.array(image_to_array(found['depth/image'])),
                'overlay': np.array(image_to_array(found['segmentation/color'])),
                'labels': np.array(image_to_array(found['segmentation/labels'])),
                'camera_info': found['depth/camera_info']}
        for messages in self.outputs.values():
            messages.pop(key, None)

    def count(self) -> int:
        """Return how many distinct camera images have a complete set of outputs."""
        with self.listener.lock:
            return len(self.results)


def write_result(out_dir: str, name: str, result: dict, label_info) -> dict:
    """Write the panel, labels and depth of one image; return its summary."""
    names = [c.class_name for c in label_info.class_map]
    colors = {c.class_id: (c.r, c.g, c.b) for c in label_info.class_map}
    depth_range = (float(label_info.min_depth_m), float(label_info.max_depth_m))
    depth_rgb = colorize_depth(result['depth'], *depth_range)
    classes = class_histogram(result['labels'], names)
    legend = [(c['name'], colors.get(c['id'], (0, 0, 0)), c['fraction'])
              for c in classes[:LEGEND_CLASSES]]
    panel = compose_panel(result['input'], result['overlay'], depth_rgb, legend, depth_range)
    files = {'panel': write_png(output_path(out_dir, name, '_panel.png'), panel),
             'labels': write_png(output_path(out_dir, name, '_labels.png'), result['labels']),
             'depth_npy': write_npy(output_path(out_dir, name, '_depth.npy'), result['depth'])}
    info = result['camera_info']
    height, width = result['depth'].shape
    return {'width': int(width), 'height': int(height), 'classes_top5': classes[:5],
            'depth_m': depth_statistics(result['depth']),
            'camera_info': {'fx': float(info.k[0]), 'fy': float(info.k[4]),
                            'cx': float(info.k[2]), 'cy': float(info.k[5])},
            'files': files}


def camera_phases(generated: int) -> List[tuple]:
    """Return (name, expected distinct images, demo source parameters) per phase."""
    phases = [('street_sample', 1, {'images': f'[{STREET_SAMPLE}]'})]
    if generated:
        phases.append(('generated', generated, {
            'source': 'generated', 'generated_count': generated,
            'height': GENERATED_SIZE[0], 'width': GENERATED_SIZE[1]}))
    return phases


@tool_main('hydranet-demo')
def main(argv: Optional[List[str]] = None) -> int:
    """Run the demo; return 0 on success, 1 if the node fails, 2 for a bad option or model."""
    parser = argparse.ArgumentParser(prog='hydranet-demo',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='out/node_demo', help='folder for pictures and JSON')
    parser.add_argument('--model', default='', help='checkpoint (default: the bundled model)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--backend', default='auto', help='auto, torch or onnxruntime')
    parser.add_argument('--generated', type=int, default=2,
                        help='generated street scenes after the shipped sample')
    parser.add_argument('--input-size', type=input_size, metavar='HxW',
                        help='network input HEIGHTxWIDTH (default: the bundled model'
                             f' training size {size_text(*DEFAULT_MODEL_SIZE)}, '
                             'or native with --model)')
    parser.add_argument('--inference-size', dest='input_size', action=DeprecatedWidthHeight,
                        help='deprecated: the network input as WIDTHxHEIGHT; use --input-size')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.model:
        read_checkpoint_file(args.model)  # a bad model is refused here, before the node starts
    out_dir = os.path.abspath(args.out)
    log_dir = os.path.join(out_dir, 'logs')
    env = ros_environment(log_dir)
    parameters = {'device': args.device, 'backend': args.backend}
    if args.model:
        parameters['model_path'] = os.path.abspath(args.model)
    size = args.input_size or (None if args.model else DEFAULT_MODEL_SIZE)
    if size:
        height, width = size
        parameters.update(inference_width=width, inference_height=height)
    listener = Listener('hydranet_node_demo')
    collector = OutputCollector(listener)
    node = start(NODE_MODULE, node_arguments(NODE_NAME, parameters), env,
                 os.path.join(log_dir, 'hydranet_node.log'))
    summaries: Dict[str, dict] = {}
    try:
        expected = 0
        for phase, count, camera_parameters in camera_phases(args.generated):
            camera_args = ['--ros-args', '-p', f'rate_hz:={CAMERA_RATE_HZ}',
                           '-p', f'seconds_per_image:={SECONDS_PER_IMAGE}']
            for key, value in camera_parameters.items():
                camera_args += ['-p', f'{key}:={value}']
            camera = start(DEMO_SOURCE_MODULE, camera_args, env,
                           os.path.join(log_dir, f'demo_source_{phase}.log'))
            expected += count
            print(f'{phase}: waiting for the node to process {count} image(s)...')
            started = time.monotonic()
            try:
                wait_for(lambda: collector.count() >= expected, PHASE_TIMEOUT_S,
                         f'outputs of {phase}', [node, camera])
            finally:
                stop(camera)
            print(f'{phase}: done in {time.monotonic() - started:.1f} s')
        with listener.lock:
            label_info = collector.label_info
            results = list(collector.results.values())
            diagnostics = dict(collector.diagnostics)
        for index, result in enumerate(results):
            name = f'frame_{index:02d}'
            summaries[name] = write_result(out_dir, name, result, label_info)
            top = ', '.join(f'{c["name"]} {c["fraction"] * 100:.0f}%'
                            for c in summaries[name]['classes_top5'])
            print(f'{name}: {summaries[name]["width"]}x{summaries[name]["height"]}  '
                  f'median depth {summaries[name]["depth_m"]["median_m"]} m  classes: {top}')
    except (TimeoutError, RuntimeError) as error:
        print(f'node demo failed: {error}; see the logs in {log_dir}', file=sys.stderr)
        return 1
    finally:
        stop(node)
        listener.close()
    with open(os.path.join(out_dir, 'summary.json'), 'w') as handle:
        json.dump({'model': label_info.model_name, 'classes': len(label_info.class_map),
                   'node_diagnostics': diagnostics, 'frames': summaries}, handle, indent=2)
    print(f'node: {diagnostics.get("backend", "")}, inference '
          f'{diagnostics.get("inference_ms_mean", "?")} ms, overhead '
          f'{diagnostics.get("overhead_ms_mean", "?")} ms per frame')
    print(f'pictures: {out_dir}/*_panel.png (input | segmentation | depth)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
