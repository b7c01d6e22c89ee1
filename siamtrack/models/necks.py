"""Necks between backbone and head."""
from __future__ import annotations

from torch import nn

from .registry import register_neck


@register_neck("adjust")
class AdjustLayer(nn.Module):
    """1x1 conv + BN that maps backbone channels to the head's width; optionally crops the exemplar feature map to
    its centre `crop` x `crop` cells (SiamRPN++ does this to drop padding-affected borders)."""

    def __init__(self, in_channels, out_channels, crop=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.crop = crop

    def forward(self, x, is_template=False):
        x = self.bn(self.conv(x))
        if is_template and self.crop and x.shape[-1] > self.crop:
            lo = (x.shape[-1] - self.crop) // 2
            x = x[:, :, lo:lo + self.crop, lo:lo + self.crop]
        return x
