"""Class names, colours and label conventions of the datasets this package reads."""
from ..model.presets import (KITTI6_CLASS_COLORS, KITTI6_CLASS_NAMES, KITTI_MAX_DEPTH_M,
                             NYUD40_CLASS_COLORS, NYUD40_CLASS_NAMES, NYUD_MAX_DEPTH_M)

__all__ = [
    'BUILDING', 'CAR', 'IGNORE_INDEX', 'KITTI6_CLASS_COLORS', 'KITTI6_CLASS_NAMES',
    'KITTI_DEPTH_SCALE', 'KITTI_MAX_DEPTH_M', 'NYUD40_CLASS_COLORS', 'NYUD40_CLASS_NAMES',
    'NYUD_DEPTH_SCALE', 'NYUD_MAX_DEPTH_M', 'ROAD', 'SIDEWALK', 'SKY', 'VEGETATION',
]

IGNORE_INDEX = 255
"""Label value that marks a pixel without a class; it contributes no loss and no metric."""

SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, CAR = range(6)
"""KITTI-6 class ids, in the logit order of the published KITTI checkpoint."""

NYUD_DEPTH_SCALE = 5000.0
"""NYUDv2 depth PNGs store metres times this factor (uint16, 0 = no measurement)."""

KITTI_DEPTH_SCALE = 256.0
"""KITTI depth PNGs store metres times this factor (uint16, 0 = no measurement)."""
