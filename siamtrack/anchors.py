"""RPN anchor geometry (SiamRPN, Li et al. 2018): anchor shapes, the grid over a response map, the box encoding
and decoding, and anchor-box IoU. Shared by the SiamRPN tracker and its training objective; no learning here.

Geometry: the backbones keep their feature grids centred on the crop (valid convolutions in AlexNet, one grey pixel
of border in EfficientNet-Lite0), the exemplar kernel is centred on the exemplar crop, and the head's convolutions
and correlations are valid. So the middle response cell looks at the search-crop centre and cell i of an R-cell
response looks at `search_size / 2 + (i - (R - 1) / 2) * stride` (continuous crop pixels), in x and in y.

Layout: anchor a at response cell (y, x) has flat index (a * R + y) * R + x, matching the head's outputs viewed as
cls (B, 2, k, R, R) and loc (B, 4, k, R, R).
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import ConfigError

DEFAULT_RATIOS = (0.33, 0.5, 1.0, 2.0, 3.0)


def anchor_shapes(ratios=DEFAULT_RATIOS, size=64.0):
    """(k, 2) widths and heights: area size^2, height / width = ratio."""
    r = np.asarray(ratios, dtype=np.float64)
    w = size / np.sqrt(r)
    return np.stack([w, w * r], axis=1)


def check_anchor_count(cls, loc, k):
    """The head's channels must match the configured anchors: 2k class logits and 4k offsets."""
    if cls.shape[1] != 2 * k or loc.shape[1] != 4 * k:
        raise ConfigError(f"the RPN head predicts {cls.shape[1] // 2} anchors per cell but the tracker config "
                          f"lists {k} anchor_ratios")


def anchor_grid(shapes, response_size, stride, search_size):
    """(k * R * R, 4) anchors (cx, cy, w, h) in search-crop pixels, flat order as in the module docstring."""
    shapes = np.asarray(shapes, dtype=np.float64)
    k, r = len(shapes), response_size
    offsets = search_size / 2 + (np.arange(r) - (r - 1) / 2) * stride
    cy, cx = np.meshgrid(offsets, offsets, indexing="ij")
    out = np.empty((k, r, r, 4))
    out[..., 0] = cx[None]
    out[..., 1] = cy[None]
    out[..., 2] = shapes[:, 0, None, None]
    out[..., 3] = shapes[:, 1, None, None]
    return out.reshape(-1, 4)


def encode(boxes, anchors):
    """Regression targets (dx, dy, dw, dh) of cxcywh `boxes` against cxcywh `anchors` (broadcasting)."""
    lib = torch if isinstance(boxes, torch.Tensor) else np
    return lib.stack([(boxes[..., 0] - anchors[..., 0]) / anchors[..., 2],
                      (boxes[..., 1] - anchors[..., 1]) / anchors[..., 3],
                      lib.log(boxes[..., 2] / anchors[..., 2]),
                      lib.log(boxes[..., 3] / anchors[..., 3])], -1)


def decode(deltas, anchors):
    """Inverse of `encode`: cxcywh boxes from (dx, dy, dw, dh)."""
    lib = torch if isinstance(deltas, torch.Tensor) else np
    return lib.stack([anchors[..., 0] + deltas[..., 0] * anchors[..., 2],
                      anchors[..., 1] + deltas[..., 1] * anchors[..., 3],
                      anchors[..., 2] * lib.exp(deltas[..., 2]),
                      anchors[..., 3] * lib.exp(deltas[..., 3])], -1)


def iou_cxcywh(anchors, boxes):
    """IoU of every anchor (A, 4) with every box (B, 4), both cxcywh tensors -> (B, A)."""
    a_lo, a_hi = anchors[:, :2] - anchors[:, 2:] / 2, anchors[:, :2] + anchors[:, 2:] / 2
    b_lo, b_hi = boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2
    wh = (torch.minimum(a_hi[None], b_hi[:, None]) - torch.maximum(a_lo[None], b_lo[:, None])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = (anchors[:, 2] * anchors[:, 3])[None] + (boxes[:, 2] * boxes[:, 3])[:, None] - inter
    return inter / union.clamp(min=1e-9)
