"""hydranet-eval: segmentation and depth metrics of a model on a dataset, as JSON and a table.

Examples:
  hydranet-eval                                   # bundled model, 200 held-out generated scenes
  hydranet-eval --model runs/street/best.pt --data scenes --data-root /tmp/scenes --split test
  hydranet-eval --model ckpt.pth --data nyud --data-root ../shared/samples/nyud_joint --split ''
See docs/training.md for the metric definitions. Frames whose files cannot be read are
skipped, listed and left out of the metrics (exit status 1); exit status 2 means bad usage or
an unusable model or data root.
"""
import argparse
import json
import math
import os
import sys

import cv2
import numpy as np
import torch
import yaml

from hydranet_ros.data.datasets import DATASET_KINDS, open_dataset
from hydranet_ros.engine import BACKENDS
from hydranet_ros.engine.default_model import default_model_path
from hydranet_ros.engine.run_plan import MIN_INPUT_SIDE_PX
from hydranet_ros.engine.visualize import color_table, colorize_depth
from hydranet_ros.model import load_hydranet, PRESETS
from hydranet_ros.tools.engine_options import build_engine, engine_line, engine_summary, \
    EXIT_FAILED, EXIT_OK, positive_int, ToolError
from hydranet_ros.tools.errors import add_debug_argument, file_problem, tool_main
from hydranet_ros.tools.image_io import non_negative_int
from hydranet_ros.tools.sizes import SizeOrTwoNumbers
from hydranet_ros.training.evaluation import EnginePredictor, ModelPredictor, evaluate

PROG = 'hydranet-eval'

HELD_OUT_SCENE_SEED = 2
"""Generator seed of the held-out scenes the bundled model is evaluated on (training used 0,
validation 1)."""
HELD_OUT_SCENE_COUNT = 200
WORST_RANKINGS = ('miou', 'abs_rel')


def build_parser():
    """Return the argument parser (every flag documented)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--model', default=None,
                        help='checkpoint (published or project format); default: the bundled '
                             'model')
    parser.add_argument('--preset', default=None, choices=sorted(PRESETS),
                        help='class names/colours preset for published checkpoints')
    parser.add_argument('--data', choices=DATASET_KINDS, default='scenes',
                        help='dataset layout (see docs/training.md)')
    parser.add_argument('--data-root', default=None,
                        help='dataset directory; for scenes without it, frames are rendered on '
                             'the fly')
    parser.add_argument('--split', default='test',
                        help='split name (sub-directory or <split>.txt); "" for the root')
    parser.add_argument('--depth-scale', type=float, default=None,
                        help='depth PNG value per metre (default: 5000 nyud, 256 kitti, 1000 '
                             'folder)')
    parser.add_argument('--limit', type=positive_int, default=None,
                        help=f'evaluate only the first N frames (scenes on the fly: default '
                             f'{HELD_OUT_SCENE_COUNT})')
    parser.add_argument('--scene-seed', type=int, default=HELD_OUT_SCENE_SEED,
                        help='scenes on the fly: generator seed')
    parser.add_argument('--height', type=positive_int, default=None,
                        help="scenes on the fly: image height (default: the model's training "
                             'resolution when recorded, else 96)')
    parser.add_argument('--width', type=positive_int, default=None,
                        help='scenes on the fly: image width (default: training resolution, '
                             'else 320)')
    parser.add_argument('--predictor', choices=('auto', 'engine', 'model'), default='auto',
                        help='engine: the inference engine on the raw pictures (what users get); '
                             "model: the network at the data's resolution; auto: engine")
    parser.add_argument('--backend', default='auto', choices=BACKENDS,
                        help='engine backend')
    parser.add_argument('--input-size', action=SizeOrTwoNumbers, default=None,
                        min_side_px=MIN_INPUT_SIDE_PX,
                        help='engine input resolution HEIGHTxWIDTH, e.g. 96x320 (default: the '
                             "training size the checkpoint records, else each picture's own; "
                             'the old form H W is still read)')
    parser.add_argument('--device', default='cpu', help='device (cpu, cuda, auto)')
    parser.add_argument('--threads', type=positive_int, default=None, help='CPU threads')
    parser.add_argument('--batch-size', type=positive_int, default=8,
                        help='frames per forward pass (model predictor)')
    parser.add_argument('--min-depth', type=float, default=None,
                        help='smallest valid ground-truth depth in metres (default: model '
                             'config)')
    parser.add_argument('--max-depth', type=float, default=None,
                        help='largest valid ground-truth depth in metres (default: model '
                             'config)')
    parser.add_argument('--json', default=None, metavar='PATH', help='write the metrics here')
    parser.add_argument('--worst', type=non_negative_int, default=0, metavar='N',
                        help='write pictures of the N worst frames')
    parser.add_argument('--worst-by', choices=WORST_RANKINGS, default='miou',
                        help='rank frames by lowest mIoU or highest AbsRel')
    parser.add_argument('--worst-dir', default='out/eval_worst',
                        help='directory for the worst-frame pictures')
    add_debug_argument(parser)
    return parser


def open_data(args, height, width, limit):
    """Open the dataset the options name; raise ``ToolError`` saying what is wrong with it."""
    try:
        return open_dataset(args.data, args.data_root, args.split, limit, height=height,
                            width=width, seed=args.scene_seed, depth_scale=args.depth_scale)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as error:
        raise ToolError(f'{error}; check --data-root and --split (docs/training.md describes '
                        f'the {args.data} layout)') from error


def _training_size(model):
    """Return the (height, width) the model was trained at, if its checkpoint records it."""
    size = model.config.notes.get('image_size')
    return tuple(size) if size else None


def _predictor(args, model):
    if args.predictor == 'model':
        return ModelPredictor(model.to(args.device), args.device)
    engine = build_engine(model, device=args.device, backend=args.backend, precision='fp32',
                          threads=args.threads,
                          input_size=tuple(args.input_size) if args.input_size else None)
    return EnginePredictor(engine)


def format_table(result, class_names):
    """Return the metrics as a readable text table."""
    lines = []
    segmentation, depth = result.segmentation, result.depth
    if segmentation['pixels']:
        lines.append(f'{"class":<20}{"IoU":>8}')
        for name in class_names:
            value = segmentation['per_class_iou'].get(name)
            lines.append(f'{name:<20}{"-" if value is None else f"{value:.4f}":>8}')
        lines.append(f'{"mIoU":<20}{segmentation["miou"]:>8.4f}')
        lines.append(f'{"pixel accuracy":<20}{segmentation["pixel_accuracy"]:>8.4f}')
        lines.append(f'{"mean class accuracy":<20}{segmentation["mean_class_accuracy"]:>8.4f}')
    if depth['pixels']:
        if lines:
            lines.append('')
        header = ('AbsRel', 'SqRel', 'RMSE', 'RMSElog', 'd<1.25', 'd<1.25^2', 'd<1.25^3')
        keys = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'delta1', 'delta2', 'delta3')
        lines.append(''.join(f'{h:>10}' for h in header))
        lines.append(''.join(f'{depth[k]:>10.4f}' for k in keys))
    lines.append(f'{len(result.frames)} frames, {result.seconds:.1f} s')
    return '\n'.join(lines)


def _worst_frames(result, count, ranking):
    def badness(frame):
        value = frame.miou if ranking == 'miou' else frame.abs_rel
        if value is None or math.isnan(value):
            return -math.inf
        return -value if ranking == 'miou' else value
    return sorted(result.frames, key=badness, reverse=True)[:count]


def write_worst_pictures(result, dataset, predictor, config, args):
    """Draw picture | truth | prediction (labels, depth) for the worst frames into a folder."""
    os.makedirs(args.worst_dir, exist_ok=True)
    table = color_table(config.class_colors, config.num_classes)
    table[255] = (0, 0, 0)
    paths = []
    for rank, frame in enumerate(_worst_frames(result, args.worst, args.worst_by)):
        sample = dataset[frame.index]
        labels, depth = predictor.predict_batch([sample])[0]
        height, width = sample.image.shape[:2]
        blank = np.zeros((height, width, 3), np.uint8)
        truth_labels = table[sample.labels] if sample.labels is not None else blank
        truth_depth = (colorize_depth(sample.depth_m, config.min_depth_m, config.max_depth_m)
                       if sample.depth_m is not None else blank)
        top = np.concatenate([sample.image, truth_labels, truth_depth], axis=1)
        bottom = np.concatenate([blank, table[labels],
                                 colorize_depth(depth, config.min_depth_m, config.max_depth_m)],
                                axis=1)
        panel = np.concatenate([top, bottom], axis=0)
        path = os.path.join(args.worst_dir, f'worst_{rank:02d}_{frame.name}.png')
        cv2.imwrite(path, cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


@tool_main(PROG)
def main(argv=None):
    """Parse arguments, evaluate, print the table and write JSON/pictures."""
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_path = args.model or default_model_path()
    model = load_hydranet(model_path, preset=args.preset)
    config = model.config
    size = _training_size(model) or (96, 320)
    height, width = args.height or size[0], args.width or size[1]
    limit = args.limit
    if args.data == 'scenes' and not args.data_root and limit is None:
        limit = HELD_OUT_SCENE_COUNT
    dataset = open_data(args, height, width, limit)
    if tuple(dataset.class_names) != tuple(config.class_names)[:len(dataset.class_names)] or \
            len(dataset.class_names) != config.num_classes:
        print(f'warning: the data has {len(dataset.class_names)} classes, the model '
              f'{config.num_classes}; labels are compared by id', file=sys.stderr)
    min_depth = config.min_depth_m if args.min_depth is None else args.min_depth
    max_depth = config.max_depth_m if args.max_depth is None else args.max_depth
    predictor = _predictor(args, model)
    engine = getattr(predictor, 'engine', None)
    result = evaluate(predictor, dataset, config.num_classes, config.class_names
                      or [str(i) for i in range(config.num_classes)], min_depth, max_depth,
                      batch_size=args.batch_size, skip_unreadable=True)
    for skipped in result.skipped:
        print(f'{PROG}: skipped frame {skipped["index"]}: {skipped["error"]}', file=sys.stderr)
    if not result.frames:
        raise ToolError(file_problem(args.data_root or args.data,
                                     f'none of its {len(result.skipped)} frame(s) could be read',
                                     'check the files listed above'))
    names = config.class_names or [str(i) for i in range(config.num_classes)]
    print(f'model {model_path} | data {args.data} {args.data_root or "(generated)"} '
          f'{args.split} | predictor {predictor.name}'
          + (f' | {engine_line(engine)}' if engine else " | network at the data's size"))
    print(format_table(result, names))
    report = result.as_dict()
    report.update({'model': model_path, 'data': args.data, 'data_root': args.data_root,
                   'split': args.split, 'predictor': predictor.name,
                   'depth_range_m': [min_depth, max_depth],
                   'image_size': list(dataset[0].image.shape[:2]) if len(dataset) else None})
    if engine:
        report.update(engine_summary(engine))
    if args.data == 'scenes' and not args.data_root:
        report['scene_seed'] = args.scene_seed
    if args.worst:
        report['worst_frames'] = write_worst_pictures(result, dataset, predictor, config, args)
        print(f'worst frames: {args.worst_dir}')
    if args.json:
        directory = os.path.dirname(args.json)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(args.json, 'w') as handle:
            json.dump(report, handle, indent=2)
        print(f'metrics: {args.json}')
    if result.skipped:
        print(f'{PROG}: {len(result.skipped)} frame(s) could not be read and are left out of '
              f'the metrics: ' + ', '.join(str(s['index']) for s in result.skipped[:20])
              + (' ...' if len(result.skipped) > 20 else ''), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
