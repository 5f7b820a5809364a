"""Presets for the four published HydraNet checkpoints: classes, colours and depth ranges.

Class names: the standard NYUDv2-40 list (Gupta et al., CVPR 2013) and, for KITTI-6, the CamVid
names matching the upstream colours. Colours: the upstream colormaps (NYUDv2 class k uses PASCAL
VOC palette row k + 1; KITTI class k uses row k).
"""
from typing import Dict, Optional

from .config import HydraNetConfig

NYUD40_CLASS_NAMES = (
    'wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door', 'window', 'bookshelf',
    'picture', 'counter', 'blinds', 'desk', 'shelves', 'curtain', 'dresser', 'pillow', 'mirror',
    'floor mat', 'clothes', 'ceiling', 'books', 'refrigerator', 'television', 'paper', 'towel',
    'shower curtain', 'box', 'whiteboard', 'person', 'night stand', 'toilet', 'sink', 'lamp',
    'bathtub', 'bag', 'other structure', 'other furniture', 'other prop',
)
NYUD40_CLASS_COLORS = (
    (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128),
    (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0), (192, 128, 0), (64, 0, 128),
    (192, 0, 128), (64, 128, 128), (192, 128, 128), (0, 64, 0), (128, 64, 0), (0, 192, 0),
    (128, 192, 0), (0, 64, 128), (128, 64, 128), (0, 192, 128), (128, 192, 128), (64, 64, 0),
    (192, 64, 0), (64, 192, 0), (192, 192, 0), (64, 64, 128), (192, 64, 128), (64, 192, 128),
    (192, 192, 128), (0, 0, 64), (128, 0, 64), (0, 128, 64), (128, 128, 64), (0, 0, 192),
    (128, 0, 192), (0, 128, 192), (128, 128, 192), (64, 0, 64),
)
KITTI6_CLASS_NAMES = (
    'sky', 'building', 'road', 'sidewalk', 'vegetation', 'car',
)
KITTI6_CLASS_COLORS = (
    (128, 128, 128), (128, 0, 0), (128, 64, 128), (0, 0, 192), (128, 128, 0), (64, 0, 128),
)
NYUD_MAX_DEPTH_M = 10.0
KITTI_MAX_DEPTH_M = 80.0


def _preset(name: str, names: tuple, colors: tuple, max_depth_m: float,
            tasks: tuple = ('segm', 'depth'), source: str = '') -> HydraNetConfig:
    return HydraNetConfig(num_classes=len(names), tasks=tasks, class_names=names,
                          class_colors=colors, max_depth_m=max_depth_m, preset=name,
                          notes={'published_checkpoint': source})


PRESETS: Dict[str, HydraNetConfig] = {
    'nyud40': _preset('nyud40', NYUD40_CLASS_NAMES, NYUD40_CLASS_COLORS, NYUD_MAX_DEPTH_M,
                      source='ExpNYUD_joint.ckpt'),
    'kitti6': _preset('kitti6', KITTI6_CLASS_NAMES, KITTI6_CLASS_COLORS, KITTI_MAX_DEPTH_M,
                      source='ExpKITTI_joint.ckpt'),
    'nyud_kitti46': _preset('nyud_kitti46', NYUD40_CLASS_NAMES + KITTI6_CLASS_NAMES,
                            NYUD40_CLASS_COLORS + KITTI6_CLASS_COLORS, KITTI_MAX_DEPTH_M,
                            source='ExpNYUDKITTI_joint.ckpt'),
    'nyud40_three': _preset('nyud40_three', NYUD40_CLASS_NAMES, NYUD40_CLASS_COLORS,
                            NYUD_MAX_DEPTH_M, tasks=('segm', 'depth', 'normals'),
                            source='ExpNYUD_three.ckpt'),
}


def get_preset(name: str) -> HydraNetConfig:
    """Return a fresh copy of the named preset; raise ``ValueError`` naming the known ones."""
    if name not in PRESETS:
        raise ValueError(f'unknown preset {name!r}; known presets: {", ".join(PRESETS)}')
    return HydraNetConfig.from_dict(PRESETS[name].to_dict())


def guess_preset(num_classes: int, tasks: tuple) -> Optional[str]:
    """Return the published preset with this many classes and these tasks, if any."""
    for name, config in PRESETS.items():
        if config.num_classes == num_classes and set(config.tasks) == set(tasks):
            return name
    return None
