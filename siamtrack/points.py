"""Anchor-free box geometry (SiamBAN, Chen et al. 2020; NanoTrack): every response cell predicts the distances from
the crop point it looks at to the four sides of the target. Shared by the SiamBAN tracker, its training objective and
matching; no learning here.

Cell i of an R-cell response looks at search-crop pixel `search_size / 2 + (i - (R - 1) / 2) * stride`, in x and in
y (the same grid the RPN anchors sit on: see siamtrack/anchors.py). Cell (y, x) has flat index y * R + x, matching
the head's outputs cls (B, 2, R, R) and loc (B, 4, R, R).

The head's raw loc channels are (l, t, r, b) as log distances in units of the stride: distance = stride * exp(raw),
so a raw 0 is one cell and the regression works in the same log space at every target size.
"""
from __future__ import annotations

import numpy as np
import torch


def point_grid(response_size, stride, search_size):
    """(R * R, 2) crop points (x, y) the response cells look at, flat order y * R + x."""
    offsets = search_size / 2 + (np.arange(response_size) - (response_size - 1) / 2) * stride
    cy, cx = np.meshgrid(offsets, offsets, indexing="ij")
    return np.stack([cx.reshape(-1), cy.reshape(-1)], axis=1)


# exp() of a raw distance above this would be a box many times the crop: clamp so a wild output stays finite
MAX_LOG_DISTANCE = 6.0


def decode_ltrb(raw, points, stride):
    """cxcywh boxes from raw (..., 4) log distances (l, t, r, b) at crop `points` (..., 2) (broadcasting)."""
    lib = torch if isinstance(raw, torch.Tensor) else np
    d = lib.exp(lib.clip(raw, -MAX_LOG_DISTANCE, MAX_LOG_DISTANCE)) * stride
    left, top, right, bottom = d[..., 0], d[..., 1], d[..., 2], d[..., 3]
    return lib.stack([points[..., 0] + (right - left) / 2, points[..., 1] + (bottom - top) / 2,
                      left + right, top + bottom], -1)


def ltrb_distances(boxes, points):
    """Distances (l, t, r, b) from `points` (..., 2) to the sides of cxcywh `boxes` (...,4); negative outside."""
    lib = torch if isinstance(boxes, torch.Tensor) else np
    x1, y1 = boxes[..., 0] - boxes[..., 2] / 2, boxes[..., 1] - boxes[..., 3] / 2
    x2, y2 = boxes[..., 0] + boxes[..., 2] / 2, boxes[..., 1] + boxes[..., 3] / 2
    return lib.stack([points[..., 0] - x1, points[..., 1] - y1, x2 - points[..., 0], y2 - points[..., 1]], -1)


def in_ellipse(boxes, points, fraction):
    """(B, P) mask: point inside the ellipse centred on each cxcywh box (B, 4) with semi-axes fraction * (w, h)."""
    dx = (points[None, :, 0] - boxes[:, None, 0]) / (fraction * boxes[:, None, 2]).clamp(min=1e-6)
    dy = (points[None, :, 1] - boxes[:, None, 1]) / (fraction * boxes[:, None, 3]).clamp(min=1e-6)
    return dx * dx + dy * dy <= 1.0
