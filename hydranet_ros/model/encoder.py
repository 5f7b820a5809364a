"""MobileNetV2 encoder returning, by output stride, the features the RefineNet decoder needs."""
from typing import Dict, NamedTuple

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


class EncoderFeatures(NamedTuple):
    """The outputs of MobileNetV2 stages 2..7, named by output stride.

    Strides 16 and 32 each end two stages (the second keeps the stride): ``stride16`` and
    ``stride32`` are the first of the pair, ``stride16_deep`` and ``stride32_deep`` the second.
    """

    stride4: torch.Tensor
    stride8: torch.Tensor
    stride16: torch.Tensor
    stride16_deep: torch.Tensor
    stride32: torch.Tensor
    stride32_deep: torch.Tensor


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 backbone; ``forward`` returns :class:`EncoderFeatures` (strides 4..32)."""

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
        # channels of each feature, by EncoderFeatures field name
        self.out_channels: Dict[str, int] = dict(zip(
            EncoderFeatures._fields, (row[1] for row in MOBILENET_V2_SETTINGS[1:])))

    def forward(self, x: torch.Tensor) -> EncoderFeatures:
        """Return the features at strides 4, 8, 16, 16, 32, 32 (24..320 channels)."""
        x = self.stages[0](self.stem(x))
        features = []
        for stage in self.stages[1:]:
            x = stage(x)
            features.append(x)
        return EncoderFeatures(*features)
