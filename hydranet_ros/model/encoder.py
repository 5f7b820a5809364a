"""MobileNetV2 encoder returning the features the RefineNet decoder needs."""
from typing import List

import torch
from torch import nn

from .blocks import ConvBN, InvertedResidual

STEM_CHANNELS = 32
# expansion t, channels c, repeats n, stride s
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 backbone; ``forward`` returns the outputs of stages 2..7 (strides 4..32)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvBN(3, STEM_CHANNELS, 3, stride=2)
        stages = []
        in_channels = STEM_CHANNELS
        for expansion, channels, repeats, stride in MOBILENET_V2_SETTINGS:
            blocks = []
            for index in range(repeats):
                blocks.append(InvertedResidual(in_channels, channels, expansion,
                                               stride if index == 0 else 1))
                in_channels = channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.out_channels = tuple(s[1] for s in MOBILENET_V2_SETTINGS[1:])

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Return features at strides 4, 8, 16, 16, 32, 32 (24..320 channels)."""
        x = self.stages[0](self.stem(x))
        features = []
        for stage in self.stages[1:]:
            x = stage(x)
            features.append(x)
        return features
