"""Light-Weight RefineNet decoder with chained residual pooling."""
from typing import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import ChainedResidualPool, conv1x1
from .encoder import EncoderFeatures

DECODER_CHANNELS = 256


def _upsample_like(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Bilinearly resize ``x`` to the spatial size of ``reference``."""
    return F.interpolate(x, size=reference.shape[-2:], mode='bilinear', align_corners=False)


class RefineNetDecoder(nn.Module):
    """Fuses encoder features from stride 32 down to stride 4 into one 256-channel map.

    ``encoder_channels`` maps each :class:`EncoderFeatures` field to its channel count. Module
    names follow the published weights, so checkpoints load by name: ``reduceN`` reads the output
    of the published ``layerN`` (``layer1`` is the stem; ``reduce3``..``reduce8`` read
    ``stride4``..``stride32_deep``); ``crp4``..``crp1`` and ``adapt4``..``adapt2`` run from
    stride 32 down to stride 4.
    """

    def __init__(self, encoder_channels: Mapping[str, int]) -> None:
        super().__init__()
        width = DECODER_CHANNELS
        self.reduce8 = conv1x1(encoder_channels['stride32_deep'], width)
        self.reduce7 = conv1x1(encoder_channels['stride32'], width)
        self.reduce6 = conv1x1(encoder_channels['stride16_deep'], width)
        self.reduce5 = conv1x1(encoder_channels['stride16'], width)
        self.reduce4 = conv1x1(encoder_channels['stride8'], width)
        self.reduce3 = conv1x1(encoder_channels['stride4'], width)
        self.crp4 = ChainedResidualPool(width)
        self.crp3 = ChainedResidualPool(width)
        self.crp2 = ChainedResidualPool(width)
        self.crp1 = ChainedResidualPool(width, depthwise=True)
        self.adapt4 = conv1x1(width, width)
        self.adapt3 = conv1x1(width, width)
        self.adapt2 = conv1x1(width, width)
        self.act = nn.ReLU6(inplace=False)

    def forward(self, features: EncoderFeatures) -> torch.Tensor:
        """Return the stride-4 decoder map from the encoder's features."""
        x = self.act(self.reduce8(features.stride32_deep) + self.reduce7(features.stride32))
        x = _upsample_like(self.adapt4(self.crp4(x)), features.stride16_deep)
        x = self.act(self.reduce5(features.stride16) + self.reduce6(features.stride16_deep) + x)
        x = _upsample_like(self.adapt3(self.crp3(x)), features.stride8)
        x = self.act(x + self.reduce4(features.stride8))
        x = _upsample_like(self.adapt2(self.crp2(x)), features.stride4)
        x = self.act(self.reduce3(features.stride4) + x)
        return self.crp1(x)
