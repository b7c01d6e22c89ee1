"""The cross-correlation variants used by Siamese heads. Shapes: exemplar features z (B, C, h, w), search features
x (B, C, H, W) with the same B; output (B, ., H - h + 1, W - w + 1)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def xcorr_naive(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Full correlation: one output channel per pair (SiamFC)."""
    b, c, h, w = x.shape
    if z.shape[0] == 1:
        # All search crops share one exemplar (the scales of a single target): one plain conv.
        return F.conv2d(x, z)
    out = F.conv2d(x.reshape(1, b * c, h, w), z, groups=b)
    return out.reshape(b, 1, out.shape[-2], out.shape[-1])


def xcorr_depthwise(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Per-channel correlation (SiamRPN++): C output channels per pair."""
    b, c, h, w = x.shape
    kernel = z.reshape(z.shape[0] * c, 1, z.shape[2], z.shape[3])
    if z.shape[0] == 1 and b > 1:
        kernel = kernel.repeat(b, 1, 1, 1)
    out = F.conv2d(x.reshape(1, b * c, h, w), kernel, groups=b * c)
    return out.reshape(b, c, out.shape[-2], out.shape[-1])


def xcorr_upchannel(x: torch.Tensor, z: torch.Tensor, out_channels: int) -> torch.Tensor:
    """Up-channel correlation (original SiamRPN): z carries out_channels * C channels, reshaped into a kernel bank."""
    b, c, h, w = x.shape
    kernel = z.reshape(z.shape[0] * out_channels, c, z.shape[2], z.shape[3])
    if z.shape[0] == 1 and b > 1:
        kernel = kernel.repeat(b, 1, 1, 1)
    out = F.conv2d(x.reshape(1, b * c, h, w), kernel, groups=b)
    return out.reshape(b, out_channels, out.shape[-2], out.shape[-1])
