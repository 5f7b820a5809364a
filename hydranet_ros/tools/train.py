"""hydranet-train: train HydraNet (segmentation + metric depth) on generated or real data.

Examples:
  hydranet-train --data scenes --data-root /tmp/scenes --generate 8000 --out runs/street
  hydranet-train --data nyud --data-root ~/data/nyud --out runs/nyud --crop 400x400
  hydranet-train --resume --out runs/street
See docs/training.md.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import yaml

from hydranet_ros.data.datasets import DATASET_KINDS, open_dataset
from hydranet_ros.data.scene_store import write_scene_split
from hydranet_ros.data.tensor_dataset import TensorDataset
from hydranet_ros.data.transforms import training_transform
from hydranet_ros.model import HydraNetConfig, build_hydranet, load_hydranet, save_hydranet
from hydranet_ros.tools.engine_options import positive_int, ToolError
from hydranet_ros.tools.errors import add_debug_argument, tool_main
from hydranet_ros.tools.image_io import non_negative_int
from hydranet_ros.tools.sizes import SizeOrTwoNumbers
from hydranet_ros.training.losses import DEPTH_LOSSES, valid_depth_mask
from hydranet_ros.training.schedule import SCHEDULES
from hydranet_ros.training.task_weighting import build_task_weighting
from hydranet_ros.training.trainer import (BEST_CHECKPOINT, LAST_CHECKPOINT, MONITORED_METRICS,
                                           Trainer, TrainSettings)

PROG = 'hydranet-train'
DEFAULT_SCENE_SIZE = (96, 320)
DEPTH_BIAS_SAMPLES = 64


def build_parser():
    """Return the argument parser (every flag documented)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = parser.add_argument_group('data')
    data.add_argument('--data', choices=DATASET_KINDS, default='scenes',
                      help='dataset layout: generated street scenes, NYUDv2, KITTI or a generic '
                           'folder (see docs/training.md)')
    data.add_argument('--data-root', default=None,
                      help='dataset directory (for scenes: holds train/ and val/ splits)')
    data.add_argument('--train-split', default='train', help='training split name')
    data.add_argument('--val-split', default='val', help='validation split name ("" for none)')
    data.add_argument('--depth-scale', type=float, default=None,
                      help='depth PNG value per metre (default: 5000 nyud, 256 kitti, 1000 '
                           'folder)')
    data.add_argument('--generate', type=non_negative_int, default=0, metavar='N',
                      help='scenes only: first render N training frames (and --val-frames) '
                           'into --data-root')
    data.add_argument('--val-frames', type=non_negative_int, default=200,
                      help='scenes only: validation frames rendered with --generate')
    data.add_argument('--scene-seed', type=int, default=0,
                      help='scenes only: generator seed of the training split (validation uses '
                           'seed + 1)')
    data.add_argument('--height', type=positive_int, default=DEFAULT_SCENE_SIZE[0],
                      help='scenes only: rendered image height in pixels')
    data.add_argument('--width', type=positive_int, default=DEFAULT_SCENE_SIZE[1],
                      help='scenes only: rendered image width in pixels')
    data.add_argument('--workers', type=positive_int, default=2,
                      help='processes rendering scenes with --generate')
    data.add_argument('--limit-train', type=positive_int, default=None,
                      help='use only the first N training samples')
    data.add_argument('--limit-val', type=positive_int, default=None,
                      help='use only the first N validation samples')
    augment = parser.add_argument_group('augmentation')
    augment.add_argument('--crop', action=SizeOrTwoNumbers, default=None,
                         help='random crop size HEIGHTxWIDTH, e.g. 400x400 (pads with '
                              'ignore/unknown when smaller; the old form H W is still read)')
    augment.add_argument('--scale', type=float, nargs=2, default=(1.0, 1.0),
                         metavar=('MIN', 'MAX'), help='random zoom range (1 1 disables)')
    augment.add_argument('--no-metric-zoom', action='store_true',
                         help='do not divide depth by the zoom factor when scaling')
    augment.add_argument('--no-flip', action='store_true', help='disable horizontal flips')
    augment.add_argument('--color-jitter', type=float, default=0.2,
                         help='brightness/contrast/saturation jitter strength (0 disables)')
    model = parser.add_argument_group('model')
    model.add_argument('--init', default=None,
                       help='start from these weights (published or project checkpoint)')
    model.add_argument('--max-depth', type=float, default=None,
                       help='largest valid depth in metres (default: 80 street, 10 indoor)')
    model.add_argument('--min-depth', type=float, default=0.0,
                       help='smallest valid depth in metres')
    model.add_argument('--no-depth-bias-init', action='store_true',
                       help='keep the depth head bias at 0 instead of the median training depth')
    optim = parser.add_argument_group('optimisation')
    optim.add_argument('--epochs', type=positive_int, default=10, help='number of epochs')
    optim.add_argument('--batch-size', type=positive_int, default=8,
                       help='images per optimiser step')
    optim.add_argument('--optimizer', choices=('adamw', 'sgd'), default='adamw',
                       help='optimiser')
    optim.add_argument('--encoder-lr', type=float, default=1e-3,
                       help='peak learning rate of the encoder')
    optim.add_argument('--decoder-lr', type=float, default=2e-3,
                       help='peak learning rate of the decoder and heads')
    optim.add_argument('--weight-decay', type=float, default=1e-4, help='weight decay')
    optim.add_argument('--schedule', choices=SCHEDULES, default='cosine',
                       help='learning-rate decay after warm-up')
    optim.add_argument('--warmup-steps', type=int, default=200,
                       help='linear warm-up length in optimiser steps')
    optim.add_argument('--grad-clip', type=float, default=5.0,
                       help='clip the gradient norm to this (0 disables)')
    loss = parser.add_argument_group('losses')
    loss.add_argument('--depth-loss', choices=DEPTH_LOSSES, default='berhu',
                      help='depth loss on valid pixels')
    loss.add_argument('--task-weighting', choices=('fixed', 'uncertainty'), default='fixed',
                      help='fixed weights or learned homoscedastic uncertainty')
    loss.add_argument('--segm-weight', type=float, default=1.0,
                      help='segmentation loss weight (fixed weighting)')
    loss.add_argument('--depth-weight', type=float, default=1.0,
                      help='depth loss weight (fixed weighting)')
    run = parser.add_argument_group('run')
    run.add_argument('--out', default='runs/hydranet',
                     help='output directory: checkpoints, logs, plots')
    run.add_argument('--resume', action='store_true',
                     help='continue from OUT/last.pt (same arguments)')
    run.add_argument('--monitor', choices=sorted(MONITORED_METRICS), default='score',
                     help='validation metric that selects best.pt and drives early stopping')
    run.add_argument('--patience', type=non_negative_int, default=0,
                     help='early stopping after this many evaluations without improvement '
                          '(0: never)')
    run.add_argument('--eval-every', type=positive_int, default=1, help='validate every N epochs')
    run.add_argument('--checkpoint-every', type=non_negative_int, default=200,
                     help='also write last.pt every N optimiser steps (0: only per epoch)')
    run.add_argument('--log-every', type=positive_int, default=20, help='log losses every N steps')
    run.add_argument('--max-minutes', type=float, default=0.0,
                     help='stop (with a resumable last.pt) after this much wall time (0: no '
                          'limit)')
    run.add_argument('--max-steps', type=non_negative_int, default=0,
                     help='stop (with a resumable last.pt) after this many optimiser steps in '
                          'all (0: no limit)')
    run.add_argument('--threads', type=positive_int, default=None,
                     help='torch CPU threads (default: torch decides)')
    run.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda')
    run.add_argument('--seed', type=int, default=0,
                     help='seed of weights, sample order and augmentation')
    run.add_argument('--half-copy', default=None, metavar='PATH',
                     help='after training, also write best.pt with fp16 weights to PATH')
    run.add_argument('--dry-run', action='store_true',
                     help='build everything, run one training step, write last.pt and exit')
    add_debug_argument(parser)
    return parser


def open_data(args, split, limit, seed):
    """Open one split of the dataset; raise ``ToolError`` saying what is wrong with it."""
    try:
        return open_dataset(args.data, args.data_root, split, limit, height=args.height,
                            width=args.width, seed=seed, depth_scale=args.depth_scale)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as error:
        raise ToolError(f'{error}; check --data-root and the split names (docs/training.md '
                        f'describes the {args.data} layout)') from error


def _generate(args):
    for split, seed, count in ((args.train_split, args.scene_seed, args.generate),
                               (args.val_split, args.scene_seed + 1, args.val_frames)):
        if not split or count <= 0:
            continue
        root = os.path.join(args.data_root, split)
        print(f'rendering {count} scenes (seed {seed}, {args.height}x{args.width}) into {root}')
        start = time.perf_counter()
        write_scene_split(root, count, seed, args.height, args.width, args.workers)
        seconds = time.perf_counter() - start
        print(f'  {count / seconds:.1f} frames/s')


def _model_config(args, train_source):
    names = tuple(train_source.class_names)
    max_depth = args.max_depth or train_source.max_depth_m
    image_size = list(args.crop) if args.crop else list(train_source[0].image.shape[:2])
    notes = {'trained_with': 'hydranet-train', 'dataset': args.data, 'image_size': image_size}
    return HydraNetConfig(num_classes=len(names), tasks=('segm', 'depth'), class_names=names,
                          class_colors=tuple(train_source.class_colors),
                          min_depth_m=args.min_depth, max_depth_m=max_depth, notes=notes)


def _init_depth_bias(model, dataset, config):
    depths = []
    for index in np.linspace(0, len(dataset) - 1, min(DEPTH_BIAS_SAMPLES, len(dataset))):
        item = dataset[int(index)]
        valid = valid_depth_mask(item['depth'], config.min_depth_m, config.max_depth_m)
        depths.append(item['depth'][valid])
    values = torch.cat(depths) if depths else torch.empty(0)
    if values.numel():
        median = float(values.median())
        with torch.no_grad():
            model.heads['depth'].out.bias.fill_(median)
        print(f'depth head bias initialised to the median training depth, {median:.2f} m')


@tool_main(PROG)
def main(argv=None):
    """Parse arguments and train."""
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.generate:
        if not args.data_root or args.data != 'scenes':
            raise ToolError('--generate needs --data scenes and --data-root')
        _generate(args)
    train_source = open_data(args, args.train_split, args.limit_train, args.scene_seed)
    val_source = (open_data(args, args.val_split, args.limit_val, args.scene_seed + 1)
                  if args.val_split else None)
    if args.init:
        model = load_hydranet(args.init)
        config = model.config
        if config.num_classes != len(train_source.class_names):
            raise ToolError(f'--init {args.init}: the checkpoint has {config.num_classes} '
                            f'classes, the data {len(train_source.class_names)}; pass a '
                            f'checkpoint of the same classes or leave --init out')
    else:
        config = _model_config(args, train_source)
        model = build_hydranet(config)
    model.train()
    transform = training_transform(args.crop, args.scale, not args.no_flip, args.color_jitter,
                                   not args.no_metric_zoom)
    train_set = TensorDataset(train_source, transform, args.seed, config.mean, config.std)
    if not args.init and not args.resume and not args.no_depth_bias_init:
        _init_depth_bias(model, train_set, config)
    settings = TrainSettings(
        epochs=args.epochs, batch_size=args.batch_size, encoder_lr=args.encoder_lr,
        decoder_lr=args.decoder_lr, weight_decay=args.weight_decay, optimizer=args.optimizer,
        schedule=args.schedule, warmup_steps=args.warmup_steps, depth_loss=args.depth_loss,
        grad_clip=args.grad_clip, monitor=args.monitor, patience=args.patience,
        eval_every=args.eval_every, checkpoint_every_steps=args.checkpoint_every,
        log_every_steps=args.log_every, max_minutes=args.max_minutes,
        max_steps=args.max_steps, seed=args.seed,
        notes={'command': 'hydranet-train ' + ' '.join(argv if argv is not None
                                                       else sys.argv[1:]),
               'train_samples': len(train_source),
               'image_size': list(args.crop) if args.crop
               else list(train_source[0].image.shape[:2]),
               'val_samples': len(val_source) if val_source is not None else 0,
               'task_weighting': args.task_weighting})
    weighting = build_task_weighting(args.task_weighting, config.tasks[:2],
                                     {'segm': args.segm_weight, 'depth': args.depth_weight})
    trainer = Trainer(model, weighting, train_set, val_source, settings, args.out, args.device)
    if args.resume:
        last = os.path.join(args.out, LAST_CHECKPOINT)
        if not os.path.exists(last):
            raise ToolError(f'--resume: {last} does not exist; run without --resume first, or '
                            f'pass the --out of an earlier run')
        trainer.resume(last)
        print(f'resumed at epoch {trainer.epoch}, step {trainer.step_in_epoch} of '
              f'{trainer.steps_per_epoch} ({trainer.global_step} steps done)')
    print(f'{len(train_source)} training samples, {trainer.steps_per_epoch} steps per epoch, '
          f'{settings.epochs} epochs, output {args.out}')
    reason = trainer.fit(dry_run=args.dry_run)
    if args.dry_run:
        trainer.save(LAST_CHECKPOINT, with_state=True)
    summary = {'stopped': reason, 'epochs': trainer.epoch, 'steps': trainer.global_step,
               'train_minutes': trainer.train_seconds / 60.0,
               'images_per_second': trainer.images_seen / max(trainer.train_seconds, 1e-9),
               'best_' + settings.monitor: trainer.stopper.best,
               'best_epoch': trainer.stopper.best_epoch}
    print(json.dumps(summary, indent=1))
    if args.half_copy and not args.dry_run:
        best = load_hydranet(os.path.join(args.out, BEST_CHECKPOINT))
        save_hydranet(best, args.half_copy, extra=best.checkpoint_extra, half=True)
        print(f'fp16 copy of the best checkpoint: {args.half_copy}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
