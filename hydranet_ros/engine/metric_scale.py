"""Metric scale from a camera's intrinsics: depth rescaled from the training camera to another.

A monocular network's depth is metric only for the focal length it was trained with: a camera
with a focal length s times longer (in pixels, at the network's input) shows everything s times
larger, so the network reports it s times nearer. Metric3D (Yin et al., ICCV 2023) trains on a
canonical camera and multiplies depth by ``f / f_canonical`` at run time; here the canonical
camera is the model's training camera and

    scale = f_camera / f_training,

both in pixels of the network's input: the camera's focal length (the mean of fx and fy of the
published camera_info, at the output size) is converted to the network input size, the training
camera's is the one its training images had at the network input. For a model run at its
training size (the bundled model) this is the ratio of the two cameras' focal lengths per image
width. Measured with the bundled model on generated scenes rendered with 1.5x its training
focal length: the median depth came out 0.667x the truth, and AbsRel fell from 0.341 to 0.114
with the scale (0.090 on scenes of its own camera).

Where a model's training camera comes from, in order: ``config.notes['training_camera']``
(written by this project's presets for the published checkpoints, or by whoever saved the
checkpoint), else for a model trained by ``hydranet-train`` on generated scenes the scene
generator's camera at the recorded image size (the bundled model: 0.58 x 320 = 185.6 px at
96x320), else none (no scaling).
"""
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from ..data.scene_generator import FOCAL_LENGTH_PER_WIDTH
from ..model import HydraNetConfig

TRAINING_CAMERA_NOTE = 'training_camera'
SCENES_DATASET = 'scenes'
DEPTH_SCALE_CHOICES = ('intrinsics', 'none')
FOCAL_MISMATCH_WARN_FRACTION = 0.3  # warn when the focal lengths differ by more than 30%


@dataclass(frozen=True)
class TrainingCamera:
    """The focal length (pixels) of a model's training images at their size (height, width)."""

    focal_length_px: float
    image_size: Tuple[int, int]
    source: str = ''

    def describe(self) -> str:
        """Return e.g. '185.6 px at 96x320 (generated scenes)'."""
        height, width = self.image_size
        source = f' ({self.source})' if self.source else ''
        return f'{self.focal_length_px:.1f} px at {height}x{width}{source}'


def _from_note(note: Mapping[str, Any]) -> Optional[TrainingCamera]:
    try:
        focal = float(note['focal_length_px'])
        height, width = (int(v) for v in note['image_size'])
    except (KeyError, TypeError, ValueError):
        return None
    if focal <= 0.0 or height <= 0 or width <= 0:
        return None
    return TrainingCamera(focal, (height, width), str(note.get('source', '')))


def training_camera(config: HydraNetConfig) -> Optional[TrainingCamera]:
    """Return the camera a model was trained with, or None when it is not known."""
    notes = config.notes or {}
    note = notes.get(TRAINING_CAMERA_NOTE)
    if isinstance(note, Mapping):
        return _from_note(note)
    size = notes.get('image_size')
    if notes.get('dataset') == SCENES_DATASET and size:
        try:
            height, width = (int(v) for v in size)
        except (TypeError, ValueError):
            return None
        return TrainingCamera(FOCAL_LENGTH_PER_WIDTH * width, (height, width),
                              'generated scenes')
    return None


def camera_focal_at_input(fx_px: float, fy_px: float, image_size: Tuple[int, int],
                          network_size: Optional[Tuple[int, int]]) -> float:
    """Return the camera's mean focal length in pixels of the network input.

    ``fx_px``/``fy_px`` belong to images of ``image_size`` (height, width), which the network
    sees resized to ``network_size`` (None: at their own size).
    """
    height, width = image_size
    net_height, net_width = network_size or image_size
    return 0.5 * (fx_px * net_width / width + fy_px * net_height / height)


def training_focal_at_input(camera: TrainingCamera) -> float:
    """Return the training focal length in pixels of the network input during training."""
    return camera.focal_length_px


def intrinsics_scale(camera: Optional[TrainingCamera], fx_px: float, fy_px: float,
                     image_size: Tuple[int, int],
                     network_size: Optional[Tuple[int, int]]) -> float:
    """Return the factor that makes the network's depth metric for this camera (1 if unknown)."""
    if camera is None or fx_px <= 0.0 or fy_px <= 0.0:
        return 1.0
    return (camera_focal_at_input(fx_px, fy_px, image_size, network_size)
            / training_focal_at_input(camera))


def focal_mismatch(scale: float) -> bool:
    """Whether the focal lengths differ by more than ``FOCAL_MISMATCH_WARN_FRACTION``."""
    return abs(scale - 1.0) > FOCAL_MISMATCH_WARN_FRACTION
