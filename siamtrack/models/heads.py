"""Heads: turn exemplar and search features into a response (SiamFC) or anchor scores and offsets (SiamRPN)."""
from __future__ import annotations

import torch
from torch import nn

from .correlation import xcorr_naive
from .registry import register_head


@register_head("xcorr")
class XCorrHead(nn.Module):
    """SiamFC head: response = scale * (z (*) x) + bias. The 0.001 scale keeps the initial responses in the range
    where the logistic loss is not saturated (Bertinetto et al. 2016); the bias is learned."""

    def __init__(self, scale=0.001):
        super().__init__()
        self.scale = scale
        self.bias = nn.Parameter(torch.zeros(1))

    def template(self, zf):
        return zf

    def forward(self, zf, xf):
        """zf: kernels from `template`, (1 or B, C, h, w); xf (B, C, H, W) -> (B, 1, H-h+1, W-w+1)."""
        return xcorr_naive(xf, zf) * self.scale + self.bias
