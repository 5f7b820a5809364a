"""Writing one prediction as files: colour pictures for people, lossless data for machines."""
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from ..engine import InferenceEngine, Prediction
from ..engine.geometry import PinholeIntrinsics
from ..engine.visualize import colorize_normals
from .image_io import output_path, write_npy, write_png
from .panel import compose_panel
from .point_files import frame_points, write_pcd, write_ply
from .prediction_summary import class_histogram

# kind -> (file suffix after the stem, what it holds)
OUTPUT_KINDS: Dict[str, Tuple[str, str]] = {
    'depth': ('_depth.png', 'colourised depth over the model depth range (near red, far blue, '
                            'invalid black)'),
    'overlay': ('_overlay.png', 'segmentation colours blended over the image (--alpha)'),
    'labels': ('_labels.png', 'class ids, lossless mono8 PNG (16-bit above 255 classes)'),
    'depth_npy': ('_depth.npy', 'float32 depth in metres, NaN where invalid'),
    'confidence': ('_confidence.png', 'max softmax probability scaled to 0..255, mono8'),
    'normals': ('_normals.png', 'surface normals as RGB (three-task models only)'),
    'panel': ('_panel.png', 'input | overlay | depth side by side with a class legend'),
    'points_ply': ('_points.ply', 'labelled point cloud, binary PLY (x y z, colour, label, '
                                  'confidence; --focal-px for the camera)'),
    'points_pcd': ('_points.pcd', 'the same cloud as binary PCD (PCL x y z rgb label, '
                                  'confidence)'),
}
DEFAULT_OUTPUTS = ('depth', 'overlay', 'labels', 'depth_npy', 'normals', 'panel')
PANEL_LEGEND_CLASSES = 6
CONFIDENCE_SCALE = 255.0


def parse_output_kinds(text: str) -> Tuple[str, ...]:
    """Parse ``depth,labels`` / ``all`` / ``default``; raise ``ValueError`` naming valid kinds."""
    kinds = []
    for item in (part.strip() for part in text.split(',')):
        if not item:
            continue
        if item == 'all':
            kinds.extend(OUTPUT_KINDS)
        elif item == 'default':
            kinds.extend(DEFAULT_OUTPUTS)
        elif item in OUTPUT_KINDS:
            kinds.append(item)
        else:
            raise ValueError(f'unknown output {item!r}; choose from {", ".join(OUTPUT_KINDS)}, '
                             f'all or default')
    if not kinds:
        raise ValueError('no outputs selected')
    return tuple(dict.fromkeys(kinds))


def confidence_mono8(confidence: np.ndarray) -> np.ndarray:
    """Return confidence in [0, 1] as uint8 0..255 (rounded)."""
    return np.clip(np.rint(confidence * CONFIDENCE_SCALE), 0, 255).astype(np.uint8)


def panel_legend(labels: np.ndarray, engine: InferenceEngine) -> Sequence:
    """Return (name, colour, share) of the largest classes, for the panel's legend strip."""
    return [(entry['name'], tuple(int(c) for c in engine.colors[entry['id']]), entry['fraction'])
            for entry in class_histogram(labels, engine.config.class_names, PANEL_LEGEND_CLASSES)]


def write_prediction(out_dir: str, stem: str, image_rgb: np.ndarray, prediction: Prediction,
                     engine: InferenceEngine, kinds: Iterable[str],
                     intrinsics: Optional[PinholeIntrinsics] = None) -> Dict[str, str]:
    """Write the selected outputs of one image; return kind -> path of each file written.

    ``normals`` is skipped for models without a normals head; point files need
    ``intrinsics`` (K at the image size) and are skipped without.
    """
    kinds = tuple(kinds)
    written: Dict[str, str] = {}
    depth_rgb = None
    if 'depth' in kinds or 'panel' in kinds:
        depth_rgb = engine.colorize_depth(prediction.depth)

    def path(kind: str) -> str:
        return output_path(out_dir, stem, OUTPUT_KINDS[kind][0])

    if 'depth' in kinds:
        written['depth'] = write_png(path('depth'), depth_rgb)
    if 'overlay' in kinds:
        written['overlay'] = write_png(path('overlay'), prediction.overlay)
    if 'labels' in kinds:
        written['labels'] = write_png(path('labels'), prediction.labels)
    if 'depth_npy' in kinds:
        written['depth_npy'] = write_npy(path('depth_npy'),
                                         prediction.depth.astype(np.float32, copy=False))
    if 'confidence' in kinds:
        written['confidence'] = write_png(path('confidence'),
                                          confidence_mono8(prediction.confidence))
    if 'normals' in kinds and prediction.normals is not None:
        written['normals'] = write_png(path('normals'), colorize_normals(prediction.normals))
    if 'panel' in kinds:
        config = engine.config
        panel = compose_panel(image_rgb, prediction.overlay, depth_rgb,
                              panel_legend(prediction.labels, engine),
                              (config.min_depth_m, config.max_depth_m))
        written['panel'] = write_png(path('panel'), panel)
    if intrinsics is not None and ('points_ply' in kinds or 'points_pcd' in kinds):
        points = frame_points(prediction, intrinsics, image_rgb)
        if 'points_ply' in kinds:
            written['points_ply'] = write_ply(path('points_ply'), points)
        if 'points_pcd' in kinds:
            written['points_pcd'] = write_pcd(path('points_pcd'), points)
    return written
