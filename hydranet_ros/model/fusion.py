"""Inference-time graph simplifications that keep the network's outputs (up to rounding)."""
import copy

import torch
from torch import nn

from .blocks import ConvBN


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Return an eval-mode copy of ``model`` with each ConvBN's batch norm folded into its conv.

    Uses the running statistics, so the copy is only valid for inference.
    """
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if not isinstance(module, ConvBN) or isinstance(module[1], nn.Identity):
            continue
        conv, norm = module[0], module[1]
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                          stride=conv.stride, padding=conv.padding, groups=conv.groups,
                          bias=True).to(conv.weight.device, conv.weight.dtype)
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        fused.bias.copy_(norm.bias - norm.running_mean * scale)
        module[0] = fused
        module[1] = nn.Identity()
    return folded
