"""Box formats and geometry.

Public boxes are (x, y, w, h): 0-based pixel coordinates, (x, y) the top-left corner. A pixel with integer index i
covers [i, i + 1), so a box (0, 0, W, H) covers a W x H frame exactly. Trackers keep centre + size internally:
cx = x + w / 2, cy = y + h / 2. All functions accept a single box of shape (4,) or an array of shape (N, 4).
"""
from __future__ import annotations

import numpy as np


def xywh_to_cxcywh(b):
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([b[..., :2] + b[..., 2:] / 2, b[..., 2:]], axis=-1)


def cxcywh_to_xywh(b):
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., 2:]], axis=-1)


def xywh_to_xyxy(b):
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_xywh(b):
    b = np.asarray(b, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def is_valid(b):
    """True where a box is finite with positive width and height (absent-target lines are NaN)."""
    b = np.asarray(b, dtype=np.float64)
    return np.all(np.isfinite(b), axis=-1) & (b[..., 2] > 0) & (b[..., 3] > 0)


def iou(a, b):
    """IoU of (x, y, w, h) boxes, element-wise with broadcasting. Invalid boxes give 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ax2, ay2 = a[..., 0] + a[..., 2], a[..., 1] + a[..., 3]
    bx2, by2 = b[..., 0] + b[..., 2], b[..., 1] + b[..., 3]
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return np.where(is_valid(a) & is_valid(b), out, 0.0)


def center_error(a, b):
    """Euclidean distance between box centres, in pixels."""
    ca = xywh_to_cxcywh(a)[..., :2]
    cb = xywh_to_cxcywh(b)[..., :2]
    return np.sqrt(np.sum((ca - cb) ** 2, axis=-1))


def clip_xywh(b, width, height, min_size=1.0):
    """Clip a box to the frame [0, width) x [0, height), keeping at least `min_size` pixels of width and height."""
    b = xywh_to_xyxy(b)
    x1 = np.clip(b[..., 0], 0, width - min_size)
    y1 = np.clip(b[..., 1], 0, height - min_size)
    x2 = np.clip(b[..., 2], x1 + min_size, width)
    y2 = np.clip(b[..., 3], y1 + min_size, height)
    return xyxy_to_xywh(np.stack([x1, y1, x2, y2], axis=-1))


def parse_box(text):
    """Parse 'x,y,w,h' (commas, spaces or tabs) into a float array of 4; raises ValueError on anything else."""
    parts = [p for p in text.replace("\t", ",").replace(" ", ",").split(",") if p]
    if len(parts) != 4:
        raise ValueError(f"a box needs 4 numbers x,y,w,h, got {text!r}")
    return np.array([float(p) for p in parts], dtype=np.float64)


def jittered(b, dx=0.0, dy=0.0, scale=1.0):
    """x, y, w, h box moved by (dx * w, dy * h) and its sides scaled by `scale` about its centre (OTB's SRE
    perturbations of the first box)."""
    x, y, w, h = (float(v) for v in b)
    cx, cy = x + w / 2 + dx * w, y + h / 2 + dy * h
    return np.array([cx - w * scale / 2, cy - h * scale / 2, w * scale, h * scale])
