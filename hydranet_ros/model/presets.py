"""Presets for the four published HydraNet checkpoints: classes, colours and depth ranges.

Class names: the standard NYUDv2-40 list (Gupta et al., CVPR 2013) and, for KITTI-6, the CamVid
names matching the upstream colours. Colours: the upstream colormaps (NYUDv2 class k uses PASCAL
VOC palette row k + 1; KITTI class k uses row k).

Training cameras (``notes['training_camera']``: focal length in pixels at an image size), used to
rescale depth to another camera's focal length:

* NYUDv2: the Kinect colour camera of NYU Depth V2 (Silberman, Hoiem, Kohli and Fergus, "Indoor
  Segmentation and Support Inference from RGBD Images", ECCV 2012), fx = 518.8579 px
  (fy = 519.4696 px) at 640x480, as the dataset's toolbox gives it (``camera_params.m``).
* KITTI: the left colour camera (camera 2) of the KITTI raw recordings of 2011-09-26 (Geiger,
  Lenz, Stiller and Urtasun, "Vision meets Robotics: The KITTI Dataset", IJRR 2013),
  rectified fx = fy = 721.5377 px at 1242x375 (``P_rect_02`` and ``S_rect_02`` of
  ``calib_cam_to_cam.txt``).
* The joint NYUDv2 + KITTI model was trained on both cameras at once: it records none.
"""
from typing import Any, Dict, Optional, Tuple

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
NYUD_FOCAL_LENGTH_PX = 518.8579  # Kinect colour camera fx, NYU Depth V2 toolbox camera_params.m
NYUD_IMAGE_SIZE = (480, 640)
KITTI_FOCAL_LENGTH_PX = 721.5377  # KITTI raw 2011_09_26 calib_cam_to_cam.txt, P_rect_02
KITTI_IMAGE_SIZE = (375, 1242)  # S_rect_02
TRAINING_CAMERA_NOTE = 'training_camera'


def training_camera_note(focal_length_px: float, image_size: Tuple[int, int],
                         source: str) -> Dict[str, Any]:
    """Return the checkpoint note of a training camera: focal length (px) at an image size."""
    return {'focal_length_px': float(focal_length_px), 'image_size': list(image_size),
            'source': source}


NYUD_CAMERA = training_camera_note(NYUD_FOCAL_LENGTH_PX, NYUD_IMAGE_SIZE,
                                   'NYU Depth V2 Kinect colour camera (camera_params.m)')
KITTI_CAMERA = training_camera_note(KITTI_FOCAL_LENGTH_PX, KITTI_IMAGE_SIZE,
                                    'KITTI raw 2011_09_26 camera 2 (P_rect_02)')


def _preset(name: str, names: tuple, colors: tuple, max_depth_m: float,
            tasks: tuple = ('segm', 'depth'), source: str = '',
            camera: Optional[Dict[str, Any]] = None) -> HydraNetConfig:
    notes: Dict[str, Any] = {'published_checkpoint': source}
    if camera is not None:
        notes[TRAINING_CAMERA_NOTE] = dict(camera)
    return HydraNetConfig(num_classes=len(names), tasks=tasks, class_names=names,
                          class_colors=colors, max_depth_m=max_depth_m, preset=name,
                          notes=notes)


PRESETS: Dict[str, HydraNetConfig] = {
    'nyud40': _preset('nyud40', NYUD40_CLASS_NAMES, NYUD40_CLASS_COLORS, NYUD_MAX_DEPTH_M,
                      source='ExpNYUD_joint.ckpt', camera=NYUD_CAMERA),
    'kitti6': _preset('kitti6', KITTI6_CLASS_NAMES, KITTI6_CLASS_COLORS, KITTI_MAX_DEPTH_M,
                      source='ExpKITTI_joint.ckpt', camera=KITTI_CAMERA),
    'nyud_kitti46': _preset('nyud_kitti46', NYUD40_CLASS_NAMES + KITTI6_CLASS_NAMES,
                            NYUD40_CLASS_COLORS + KITTI6_CLASS_COLORS, KITTI_MAX_DEPTH_M,
                            source='ExpNYUDKITTI_joint.ckpt'),
    'nyud40_three': _preset('nyud40_three', NYUD40_CLASS_NAMES, NYUD40_CLASS_COLORS,
                            NYUD_MAX_DEPTH_M, tasks=('segm', 'depth', 'normals'),
                            source='ExpNYUD_three.ckpt', camera=NYUD_CAMERA),
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
