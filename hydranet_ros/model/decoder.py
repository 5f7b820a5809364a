"""Light-Weight RefineNet decoder with chained residual pooling."""
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import ChainedResidualPool, conv1x1

DECODER_CHANNELS = 256


def _upsample_like(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Bilinearly resize ``x`` to the spatial size of ``reference``."""
    return F.interpolate(x, size=reference.shape[-2:], mode='bilinear', align_corners=False)


class RefineNetDecoder(nn.Module):
    """Fuses encoder features from stride 32 down to stride 4 into one 256-channel map."""

    def __init__(self, encoder_channels: Sequence[int] = (24, 32, 64, 96, 160, 320)) -> None:
        super().__init__()
        c3, c4, c5, c6, c7, c8 = encoder_channels
        width = DECODER_CHANNELS
        self.reduce8 = conv1x1(c8, width)
        self.reduce7 = conv1x1(c7, width)
        self.reduce6 = conv1x1(c6, width)
        self.reduce5 = conv1x1(c5, width)
        self.reduce4 = conv1x1(c4, width)
        self.reduce3 = conv1x1(c3, width)
        self.crp4 = ChainedResidualPool(width)
        self.crp3 = ChainedResidualPool(width)
        self.crp2 = ChainedResidualPool(width)
        self.crp1 = ChainedResidualPool(width, depthwise=True)
        self.adapt4 = conv1x1(width, width)
        self.adapt3 = conv1x1(width, width)
        self.adapt2 = conv1x1(width, width)
        self.act = nn.ReLU6(inplace=False)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return the stride-4 decoder map from the six encoder features."""
        l3, l4, l5, l6, l7, l8 = features
        x = self.act(self.reduce8(l8) + self.reduce7(l7))
        x = _upsample_like(self.adapt4(self.crp4(x)), l6)
        x = self.act(self.reduce5(l5) + self.reduce6(l6) + x)
        x = _upsample_like(self.adapt3(self.crp3(x)), l4)
        x = self.act(x + self.reduce4(l4))
        x = _upsample_like(self.adapt2(self.crp2(x)), l3)
        x = self.act(self.reduce3(l3) + x)
        return self.crp1(x)
