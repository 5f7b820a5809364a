"""Per-task prediction heads."""
import torch
from torch import nn

from .blocks import conv1x1, conv3x3


class TaskHead(nn.Module):
    """Depthwise 1x1 convolution, ReLU6, then a 3x3 convolution to the task's channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pre = conv1x1(in_channels, in_channels, groups=in_channels)
        self.act = nn.ReLU6(inplace=True)
        self.out = conv3x3(in_channels, out_channels, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the raw task output."""
        return self.out(self.act(self.pre(x)))
