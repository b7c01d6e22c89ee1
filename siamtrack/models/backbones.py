"""Backbones. Each takes a (N, 3, H, W) float RGB tensor with values 0..255 and applies its own input
normalisation, so that crops need no model-specific preprocessing. Attributes: `stride` (total stride of the output
grid) and `out_channels`."""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_backbone


def conv_bn_relu(cin, cout, k, stride=1, groups=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, stride, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


@register_backbone("alexnet")
class AlexNet(nn.Module):
    """SiamFC's AlexNet (Bertinetto et al. 2016): no padding, total stride 8; 127 -> 6x6x256, 255 -> 22x22x256.

    Input is raw 0..255 RGB, as in the original SiamFC, so there is no normalisation step.
    """

    stride = 8
    out_channels = 256

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(3, 96, 11, 2), nn.MaxPool2d(3, 2),
            *conv_bn_relu(96, 256, 5, groups=2), nn.MaxPool2d(3, 2),
            *conv_bn_relu(256, 384, 3),
            *conv_bn_relu(384, 384, 3, groups=2),
            nn.Conv2d(384, 256, 3, groups=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
