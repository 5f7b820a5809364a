"""HydraNet: one MobileNetV2 + Light-Weight RefineNet trunk, one head per task."""
from typing import Any, Dict

import torch
from torch import nn

from .config import HydraNetConfig
from .decoder import DECODER_CHANNELS, RefineNetDecoder
from .encoder import MobileNetV2Encoder
from .heads import TaskHead

NORMALS_CHANNELS = 3


def head_channels(config: HydraNetConfig) -> Dict[str, int]:
    """Return the output channels of every head, in the published state_dict order."""
    channels = {'depth': 1, 'segm': config.num_classes}
    if 'normals' in config.tasks:
        channels['normals'] = NORMALS_CHANNELS
    return channels


class HydraNet(nn.Module):
    """Joint semantic segmentation and depth (and optionally surface normals) network.

    ``forward`` takes a normalised float NCHW batch and returns raw head outputs at stride 4
    (rounded up): ``segm`` logits, ``depth`` in metres and, for three-task weights, ``normals``.
    """

    def __init__(self, config: HydraNetConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = MobileNetV2Encoder()
        self.decoder = RefineNetDecoder(self.encoder.out_channels)
        self.heads = nn.ModuleDict({task: TaskHead(DECODER_CHANNELS, channels)
                                    for task, channels in head_channels(config).items()})
        # set by load_hydranet: the checkpoint's file and its extra (e.g. the training state)
        self.checkpoint_path = ''
        self.checkpoint_extra: Dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Predict every task for a normalised NCHW batch."""
        shared = self.decoder(self.encoder(x))
        return {task: head(shared) for task, head in self.heads.items()}


def build_hydranet(config: HydraNetConfig) -> HydraNet:
    """Build an untrained HydraNet for ``config`` (in training mode, on the CPU)."""
    return HydraNet(config)
