"""Demo: run the bundled default model on shipped and generated street images, write pictures."""
import argparse
import json
import os
import sys
from typing import Iterator, Tuple

import numpy as np

import cv2

from ..engine import InferenceEngine
from ..engine.default_model import ASSETS_DIR
from .prediction_files import write_prediction
from .prediction_summary import summarize_prediction

SAMPLE_IMAGES = ('kitti_000099.png',)
GENERATED_SIZE = (192, 640)
DEMO_SEED = 7


def demo_frames(generated: int) -> Iterator[Tuple[str, np.ndarray]]:
    """Yield (name, RGB image): the shipped street sample, then generated street scenes."""
    for name in SAMPLE_IMAGES:
        image = cv2.imread(os.path.join(ASSETS_DIR, 'samples', name), cv2.IMREAD_COLOR)
        yield os.path.splitext(name)[0], cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if generated:
        from ..data.scene_generator import StreetSceneGenerator
        generator = StreetSceneGenerator(seed=DEMO_SEED, height=GENERATED_SIZE[0],
                                         width=GENERATED_SIZE[1])
        for index in range(generated):
            yield f'generated_{index:02d}', generator.render(index).image_rgb


def _describe(name: str, summary: dict) -> str:
    classes = ', '.join(f'{c["name"]} {c["fraction"] * 100:.0f}%' for c in summary['classes_top5'])
    depth = summary['depth_m']
    depth_text = (f'{depth["min_m"]:.1f}-{depth["max_m"]:.1f} m (median {depth["median_m"]:.1f})'
                  if depth['median_m'] is not None else 'no valid depth')
    return (f'{name:<14} {summary["width"]}x{summary["height"]:<5} '
            f'{summary["timings_ms"].get("network", 0.0):7.1f} ms  depth {depth_text}  '
            f'classes: {classes}')


def main(argv=None) -> int:
    """Run the demo; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='out/demo', help='folder for the pictures and JSON')
    parser.add_argument('--model', default='', help='checkpoint (default: the bundled model)')
    parser.add_argument('--generated', type=int, default=3,
                        help='how many generated street scenes to add to the shipped sample')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    args = parser.parse_args(argv)
    engine = InferenceEngine(args.model or None, device=args.device)
    print(f'model: {engine.config.notes.get("name", args.model or "bundled default")}, '
          f'{engine.config.num_classes} classes, {engine.describe()}')
    os.makedirs(args.out, exist_ok=True)
    summaries = {}
    for name, image in demo_frames(args.generated):
        prediction = engine.infer(image)
        summaries[name] = summarize_prediction(prediction, engine.config.class_names)
        summaries[name]['files'] = write_prediction(args.out, name, image, prediction, engine,
                                                    ('panel', 'depth', 'overlay', 'depth_npy'))
        print(_describe(name, summaries[name]))
    with open(os.path.join(args.out, 'summary.json'), 'w') as handle:
        json.dump(summaries, handle, indent=2)
    print(f'pictures: {os.path.abspath(args.out)}/*_panel.png (input | segmentation | depth)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
