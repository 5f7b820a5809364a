"""The HydraNet network (pure PyTorch, no ROS): config, modules, checkpoints and presets."""
from .checkpoint import CheckpointError, infer_config, load_hydranet, read_checkpoint_file, \
    save_hydranet
from .config import HydraNetConfig, IMAGENET_MEAN, IMAGENET_STD
from .key_mapping import local_to_upstream, upstream_to_local
from .network import HydraNet, build_hydranet
from .presets import PRESETS, get_preset

__all__ = [
    'CheckpointError', 'HydraNet', 'HydraNetConfig', 'IMAGENET_MEAN', 'IMAGENET_STD', 'PRESETS',
    'build_hydranet', 'get_preset', 'infer_config', 'load_hydranet', 'local_to_upstream',
    'read_checkpoint_file', 'save_hydranet', 'upstream_to_local',
]
