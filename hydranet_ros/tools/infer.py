"""hydranet-infer: depth and segmentation of image files, written as pictures, data and a summary.

Examples: ``hydranet-infer photo.jpg --out results`` or
``hydranet-infer images/ --recursive --out results --outputs labels,depth_npy --quiet`` or
``hydranet-infer frame.png --focal-px 721.5 --outputs points_ply,points_pcd`` (a labelled cloud).
Depth follows the node's rules: sky and unlabelled pixels NaN, rescaled by ``--focal-px``.
"""
import argparse
import json
import logging
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

from tqdm import tqdm

from ..engine import ImageFormatError, InferenceEngine
from .depth_options import add_depth_arguments, ToolDepthRules
from .engine_options import add_engine_arguments, engine_from_args, engine_line, \
    engine_summary, EXIT_OK, EXIT_SOME_FAILED, ToolError
from .errors import add_debug_argument, file_problem, tool_main
from .image_io import add_pixel_limit_arguments, find_images, ImageJob, ImageReadError, \
    megapixels, pixel_limit_from_args, PixelLimit, read_image
from .point_files import PointFileError
from .prediction_files import DEFAULT_OUTPUTS, OUTPUT_KINDS, parse_output_kinds, \
    write_prediction
from .prediction_summary import summarize_prediction

PROG = 'hydranet-infer'
DEFAULT_OUT_DIR = 'hydranet_output'
SUMMARY_NAME = 'summary.json'
LOGGER = logging.getLogger(PROG)


def output_kinds(text: str):
    """Parse --outputs for argparse."""
    try:
        return parse_output_kinds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (every option has help)."""
    kinds = '\n'.join(f'  {kind:<11} <name>{suffix}: {meaning}'
                      for kind, (suffix, meaning) in OUTPUT_KINDS.items())
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Predict metric depth and semantic labels for image files.',
        epilog=f'outputs (--outputs):\n{kinds}\n\nexit status: 0 all images done, '
               f'1 some images failed (each named on stderr and in the summary, the others '
               f'written), 2 bad usage or input (an option, a missing input, an unusable '
               f'model), found before any image is processed')
    parser.add_argument('inputs', nargs='+', metavar='IMAGE_OR_FOLDER',
                        help='image files and/or folders of images (PNG, JPEG, TIFF, WebP, ...)')
    parser.add_argument('-o', '--out', default=DEFAULT_OUT_DIR, metavar='DIR',
                        help='output folder (created; default: %(default)s)')
    parser.add_argument('-r', '--recursive', action='store_true',
                        help='search folders recursively; sub-folders are mirrored in --out')
    parser.add_argument('--outputs', type=output_kinds, default=DEFAULT_OUTPUTS,
                        metavar='LIST',
                        help='comma-separated outputs to write, or all / default (default: '
                             f'{",".join(DEFAULT_OUTPUTS)}; normals only for three-task models)')
    parser.add_argument('--summary', metavar='PATH',
                        help=f'summary JSON path (default: DIR/{SUMMARY_NAME})')
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='print only errors (no progress bar or per-image lines)')
    add_engine_arguments(parser)
    add_depth_arguments(parser)
    add_pixel_limit_arguments(parser)
    add_debug_argument(parser)
    return parser


def model_description(engine: InferenceEngine, model_arg: Optional[str]) -> Dict:
    """Return what the summary says about the model and how it ran."""
    config = engine.config
    description = {
        'model': model_arg or 'bundled default',
        'preset': config.preset,
        'tasks': list(config.tasks),
        'class_names': list(config.class_names),
        'depth_range_m': [config.min_depth_m, config.max_depth_m],
    }
    description.update(engine_summary(engine))
    return description


def process_image(engine: InferenceEngine, job: ImageJob, out_dir: str,
                  kinds: Sequence[str], rules: Optional[ToolDepthRules] = None,
                  limit: Optional[PixelLimit] = None) -> Dict:
    """Infer one image, apply the depth rules and write its files; return its summary entry.

    A picture over ``limit`` is shrunk first (noted in the entry as ``shrunk_from``).
    """
    loaded = read_image(job.path, limit)
    image = loaded.rgb
    started = time.perf_counter()
    prediction = engine.infer(image)
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    intrinsics = None
    scale = 1.0
    if rules is not None:
        scale = rules.scale(image.shape[:2])
        rules.apply(prediction)
        intrinsics = rules.intrinsics(image.shape[:2])
    files = write_prediction(out_dir, job.stem, image, prediction, engine, kinds, intrinsics)
    entry = {'input': job.path, 'name': job.stem, 'ms': round(elapsed_ms, 3),
             'depth_scale': round(scale, 6)}
    entry.update(summarize_prediction(prediction, engine.config.class_names))
    if loaded.original_size is not None:
        entry['shrunk_from'] = list(loaded.original_size)
    entry['outputs'] = {kind: os.path.relpath(path, out_dir) for kind, path in files.items()}
    return entry


def check_paths(args: argparse.Namespace) -> None:
    """Raise ``ToolError`` for an input that does not exist or an output that is a file."""
    for given in args.inputs:
        if not os.path.exists(given):
            raise ToolError(file_problem(given, 'no such file or folder', 'check the path'))
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ToolError(file_problem(args.out, 'exists and is not a folder',
                                     'pass another --out'))


def shrink_note(job: ImageJob, entry: Dict, limit: PixelLimit) -> str:
    """Return the note printed for a picture that was shrunk to fit the pixel limit."""
    height, width = entry['shrunk_from']
    return (f'note: {job.path} is {height}x{width} px ({megapixels(height, width)}), more than '
            f'--max-input-pixels {limit.max_pixels}: processed at {entry["height"]}x'
            f'{entry["width"]} px; raise --max-input-pixels to keep its size')


def run(args: argparse.Namespace) -> int:
    """Process every input; return the exit status."""
    check_paths(args)
    limit = pixel_limit_from_args(args)
    jobs = find_images(args.inputs, args.recursive, exclude_dir=args.out)
    if not jobs:
        raise ToolError(f'no images found in {", ".join(args.inputs)}'
                        + ('' if args.recursive else ' (use --recursive for sub-folders)'))
    engine = engine_from_args(args)
    if not args.quiet:
        print(f'model {args.model or "bundled default"}: {engine_line(engine)}')
    if 'normals' in args.outputs and args.outputs != DEFAULT_OUTPUTS \
            and 'normals' not in engine.config.tasks:
        LOGGER.warning('no normals written: this model predicts %s only',
                       ', '.join(engine.config.tasks))
    os.makedirs(args.out, exist_ok=True)
    rules = ToolDepthRules(args, engine)
    results: List[Dict] = []
    failures: List[Dict] = []
    started = time.perf_counter()
    show_progress = not args.quiet and len(jobs) > 1
    for job in tqdm(jobs, desc=PROG, unit='image', disable=not show_progress, file=sys.stderr):
        try:
            entry = process_image(engine, job, args.out, args.outputs, rules, limit)
        except PointFileError as error:
            raise ToolError(str(error)) from error
        except (ImageReadError, ImageFormatError, OSError, MemoryError) as error:
            reason = 'ran out of memory; lower --max-input-pixels' \
                if isinstance(error, MemoryError) else str(error)
            failures.append({'input': job.path, 'error': reason})
            tqdm.write(f'{PROG}: skipped {job.path}: {reason}', file=sys.stderr)
            continue
        results.append(entry)
        if 'shrunk_from' in entry:
            tqdm.write(f'{PROG}: {shrink_note(job, entry, limit)}', file=sys.stderr)
        if not args.quiet and not show_progress:
            print(f'{job.path}: {entry["height"]}x{entry["width"]} px in {entry["ms"]:.0f} ms '
                  f'-> {os.path.join(args.out, job.stem)}_*')
    total_s = time.perf_counter() - started
    summary = model_description(engine, args.model)
    summary['depth_rules'] = {'invalid_depth_classes': list(args.invalid_depth_classes),
                              'min_confidence': args.min_confidence,
                              'depth_scale': args.depth_scale,
                              'focal_px': list(args.focal_px) if args.focal_px else None}
    summary.update({
        'images': results,
        'failed': failures,
        'totals': {'processed': len(results), 'failed': len(failures),
                   'seconds': round(total_s, 3),
                   'mean_ms': round(sum(r['ms'] for r in results) / len(results), 3)
                   if results else None},
    })
    summary_path = args.summary or os.path.join(args.out, SUMMARY_NAME)
    os.makedirs(os.path.dirname(os.path.abspath(summary_path)), exist_ok=True)
    with open(summary_path, 'w', encoding='utf-8') as stream:
        json.dump(summary, stream, indent=2)
    if not args.quiet:
        print(f'{len(results)} image(s) written to {args.out} in {total_s:.1f} s; '
              f'summary: {summary_path}')
    if failures:
        print(f'{PROG}: {len(failures)} of {len(jobs)} image(s) failed: '
              + ', '.join(f['input'] for f in failures), file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


@tool_main(PROG)
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``hydranet-infer``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format=f'{PROG}: %(message)s')
    try:
        return run(args)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: a requested end, not a failure
        print(f'{PROG}: interrupted; the files written so far are kept', file=sys.stderr)
        return 0


if __name__ == '__main__':
    sys.exit(main())
