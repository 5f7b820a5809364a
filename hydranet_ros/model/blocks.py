"""Building blocks shared by the encoder, decoder and heads."""
import torch
from torch import nn

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def conv1x1(in_channels: int, out_channels: int, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """Return a 1x1 convolution."""
    return nn.Conv2d(in_channels, out_channels, 1, bias=bias, groups=groups)


def conv3x3(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    """Return a 3x3 convolution that keeps the spatial size."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


class ConvBN(nn.Sequential):
    """Convolution without bias, batch norm and optionally ReLU6 (children 0, 1[, 2])."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, activation: bool = True) -> None:
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                      padding=kernel_size // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM),
        ]
        if activation:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, 3x3 depthwise, linear 1x1 projection.

    Unlike torchvision, the expansion convolution exists even when the expansion factor is 1,
    as in the published HydraNet weights.
    """

    def __init__(self, in_channels: int, out_channels: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = ConvBN(in_channels, hidden, 1)
        self.depthwise = ConvBN(hidden, hidden, 3, stride=stride, groups=hidden)
        self.project = ConvBN(hidden, out_channels, 1, activation=False)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        out = self.project(self.depthwise(self.expand(x)))
        return out + x if self.use_residual else out


class SeparableMaxPool5(nn.Module):
    """5x5 max-pool, stride 1, padding 2, computed as 1x5 then 5x1 (bit-identical, fewer ops)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = nn.MaxPool2d((1, 5), stride=1, padding=(0, 2))
        self.cols = nn.MaxPool2d((5, 1), stride=1, padding=(2, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool a 5x5 neighbourhood."""
        return self.cols(self.rows(x))


class ChainedResidualPool(nn.Module):
    """Light-Weight RefineNet chained residual pooling: ``top = conv(pool(top)); x = x + top``."""

    def __init__(self, channels: int, stages: int = 4, depthwise: bool = False) -> None:
        super().__init__()
        groups = channels if depthwise else 1
        self.pool = SeparableMaxPool5()
        self.convs = nn.ModuleList(conv1x1(channels, channels, groups=groups)
                                   for _ in range(stages))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add each pooled and convolved stage to a running sum."""
        top = x
        for conv in self.convs:
            top = conv(self.pool(top))
            x = x + top
        return x
