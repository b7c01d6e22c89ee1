"""RPN heads (SiamRPN, Li et al. 2018; SiamRPN++, Li et al. 2019): per anchor, 2 class logits (background,
target) and 4 box offsets. Outputs: cls (B, 2k, R, R) viewed as (B, 2, k, R, R), loc (B, 4k, R, R) viewed as
(B, 4, k, R, R); see siamtrack/anchors.py for the anchor order.

The anchors' shapes live in the tracker config (`anchor_ratios`, `anchor_size`), which the tracker and the training
objective share; a head only knows how many anchors it predicts per cell (`num_anchors`, k).
"""
from __future__ import annotations

import torch
from torch import nn

from .correlation import xcorr_depthwise, xcorr_upchannel
from .registry import register_head


def _conv_bn_relu(cin, cout, k):
    return nn.Sequential(nn.Conv2d(cin, cout, k, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _DepthwiseBranch(nn.Module):
    """3x3 conv + BN + ReLU on each side, per-channel correlation, then 1x1 convs to `out_channels`."""

    def __init__(self, in_channels, channels, out_channels):
        super().__init__()
        self.kernel = _conv_bn_relu(in_channels, channels, 3)
        self.search = _conv_bn_relu(in_channels, channels, 3)
        self.out = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                 nn.ReLU(inplace=True), nn.Conv2d(channels, out_channels, 1))

    def forward(self, kernel, xf):
        return self.out(xcorr_depthwise(self.search(xf), kernel))


@register_head("rpn_dw")
class DepthwiseRPN(nn.Module):
    """Depthwise cross-correlation RPN (SiamRPN++): light, and every op exports to ONNX."""

    def __init__(self, in_channels=256, channels=256, num_anchors=5):
        super().__init__()
        self.k = num_anchors
        self.cls = _DepthwiseBranch(in_channels, channels, 2 * self.k)
        self.loc = _DepthwiseBranch(in_channels, channels, 4 * self.k)

    def template(self, zf):
        return self.cls.kernel(zf), self.loc.kernel(zf)

    def forward(self, kernels, xf):
        return self.cls(kernels[0], xf), self.loc(kernels[1], xf)


@register_head("rpn_up")
class UpChannelRPN(nn.Module):
    """Up-channel RPN (original SiamRPN): the exemplar branch grows into a bank of 2k and 4k full kernels."""

    def __init__(self, in_channels=256, channels=256, num_anchors=5):
        super().__init__()
        self.k = num_anchors
        self.channels = channels
        self.cls_kernel = nn.Conv2d(in_channels, channels * 2 * self.k, 3)
        self.loc_kernel = nn.Conv2d(in_channels, channels * 4 * self.k, 3)
        self.cls_search = nn.Conv2d(in_channels, channels, 3)
        self.loc_search = nn.Conv2d(in_channels, channels, 3)
        # The correlation's scale is arbitrary; a learned 1x1 conv calibrates the offsets (as the original does).
        self.loc_adjust = nn.Conv2d(4 * self.k, 4 * self.k, 1)

    def template(self, zf):
        return self.cls_kernel(zf), self.loc_kernel(zf)

    def forward(self, kernels, xf):
        # Each output sums channels x h x w products: dividing by the square root of that count keeps the initial
        # logits near unit scale, where a from-scratch backbone does not blow the loss up in its first steps.
        norm = (self.channels * kernels[0].shape[-2] * kernels[0].shape[-1]) ** -0.5
        cls = xcorr_upchannel(self.cls_search(xf), kernels[0], 2 * self.k) * norm
        loc = xcorr_upchannel(self.loc_search(xf), kernels[1], 4 * self.k) * norm
        return cls, self.loc_adjust(loc)


def _conv3_bn_relu(cin, cout):
    # padded, so the response keeps the search features' grid (and its centring; siamtrack/anchors.py)
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@register_head("rpn_pw")
class PixelwiseRPN(nn.Module):
    """Pixel-wise correlation RPN (as Alpha-Refine, SiamGAT and NanoTrack v2 correlate): every exemplar cell's feature
    vector is correlated with every search cell, giving one similarity map per exemplar cell (n = h * w channels,
    49 for a 7x7 exemplar). A depthwise correlation sums over the exemplar's cells, so its head cannot tell which part
    of the exemplar matched where and infers the box from what objects look like (a boxed face grows onto the head);
    here the maps say which exemplar cells, the target's or the context's, match at each place. The maps and the
    search features go through two padded 3x3 convolutions per branch: the response keeps the search grid (17 x 17
    for a 255 crop at stride 16) rather than shrinking by the exemplar's size."""

    def __init__(self, in_channels=64, channels=64, num_anchors=5, exemplar_cells=49):
        super().__init__()
        self.k = num_anchors
        self.kernel = nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.search = nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.scale = channels ** -0.5
        fused = exemplar_cells + channels
        self.cls = nn.Sequential(_conv3_bn_relu(fused, channels), _conv3_bn_relu(channels, channels),
                                 nn.Conv2d(channels, 2 * self.k, 1))
        self.loc = nn.Sequential(_conv3_bn_relu(fused, channels), _conv3_bn_relu(channels, channels),
                                 nn.Conv2d(channels, 4 * self.k, 1))

    def template(self, zf):
        """(K, C, h, w) exemplar features -> (K, h * w, C): one row per exemplar cell."""
        return self.kernel(zf).flatten(2).transpose(1, 2)

    def forward(self, kernel, xf):
        xs = self.search(xf)
        b, c, h, w = xs.shape
        # (K, n, C) @ (b, C, h * w): one exemplar (K = 1) broadcasts over a batch of search crops
        corr = torch.matmul(kernel, xs.reshape(b, c, h * w)).reshape(b, -1, h, w) * self.scale
        fused = torch.cat([corr, xs], dim=1)
        return self.cls(fused), self.loc(fused)
