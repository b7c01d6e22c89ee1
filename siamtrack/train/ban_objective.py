"""Anchor-free training objective (SiamBAN, Chen et al. 2020).

Labels come from two ellipses centred on the target: cells whose crop point lies inside the one with semi-axes
(w/4, h/4) are positive, those outside the one with semi-axes (w/2, h/2) negative, the ring between is ignored; the
cell nearest the centre is positive whenever its point is inside the box, so small targets still have one. Negative
pairs have no positives, and the cells on the other object (inside its outer ellipse) weigh DISTRACTOR_WEIGHT times
a plain background cell: that distractor is what the classifier must learn to reject (the RPN objective samples
those anchors first for the same reason).

Loss = cross-entropy with positives and negatives weighted half each, plus LOC_WEIGHT x (1 - GIoU) of the positive
cells' decoded boxes against the target (SiamBAN uses IoU loss; GIoU also moves boxes that do not overlap).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import boxes as B
from ..points import decode_ltrb, in_ellipse, point_grid
from .rpn_objective import _numpy, _unwrap

LOC_WEIGHT = 1.0
# ~5 distractor cells of 121 at x8 make about a quarter of a negative pair's background term, the share the RPN
# objective's 16 of 64 sampled anchors give them
DISTRACTOR_WEIGHT = 8.0
POSITIVE_FRACTION = 0.25
NEGATIVE_FRACTION = 0.5


class BANObjective:
    """`obj(output, box, negative) -> (loss, {name: float})`; output = model(z, x) = (cls (B, 2, R, R), loc (B, 4,
    R, R)), box (B, 4) x, y, w, h in search-crop pixels, negative (B,) 1 for negative pairs."""

    def __init__(self, cfg, model):
        self.stride = _unwrap(model).stride
        self.search_size = cfg.train.search_size
        self._points = {}

    def points(self, response_size, device):
        key = (response_size, str(device))
        if key not in self._points:
            grid = point_grid(response_size, self.stride, self.search_size)
            self._points[key] = torch.as_tensor(grid, dtype=torch.float32, device=device)
        return self._points[key]

    def __call__(self, output, box, negative):
        cls, loc = output
        b, _, r, _ = cls.shape
        points = self.points(r, cls.device)
        target = torch.as_tensor(B.xywh_to_cxcywh(_numpy(box)), dtype=torch.float32, device=cls.device)
        negative = torch.as_tensor(_numpy(negative), device=cls.device).reshape(-1).bool()
        with torch.no_grad():
            pos, weight = label_points(points, target, negative)
        logits = cls.float().reshape(b, 2, -1).transpose(1, 2)                       # (B, A, 2)
        ce = F.cross_entropy(logits.reshape(-1, 2), pos.long().reshape(-1), reduction="none").reshape(b, -1)
        neg = weight > 0
        cls_pos = ce[pos].mean() if pos.any() else ce.sum() * 0
        cls_neg = (ce * weight).sum() / weight.sum() if neg.any() else ce.sum() * 0
        cls_loss = 0.5 * cls_pos + 0.5 * cls_neg
        if pos.any():
            raw = loc.float().reshape(b, 4, -1).transpose(1, 2)                     # (B, A, 4)
            pred = decode_ltrb(raw, points[None], self.stride)[pos]
            goal = target[:, None, :].expand(-1, points.shape[0], -1)[pos]
            loc_loss = (1.0 - giou(pred, goal)).mean()
        else:
            loc_loss = loc.sum() * 0
        loss = cls_loss + LOC_WEIGHT * loc_loss
        return loss, {"loss": float(loss.detach()), "cls": float(cls_loss.detach()), "loc": float(loc_loss.detach()),
                      "positives": float(pos.sum()) / b}


def label_points(points, boxes, negative):
    """-> positives (B, A) bool and background weights (B, A) float (0 on positives and ignored cells).

    points (A, 2) crop points, boxes (B, 4) cxcywh targets in crop pixels (the other object's box for negative
    pairs), negative (B,) bool."""
    inner = in_ellipse(boxes, points, POSITIVE_FRACTION)
    outer = in_ellipse(boxes, points, NEGATIVE_FRACTION)
    d2 = ((points[None] - boxes[:, None, :2]) ** 2).sum(-1)
    nearest = d2.argmin(dim=1)
    half = boxes[:, None, 2:] / 2
    inside = ((points[None] - boxes[:, None, :2]).abs() <= half).all(-1)
    pos = inner.clone()
    rows = torch.arange(len(boxes), device=boxes.device)
    pos[rows, nearest] |= inside[rows, nearest]
    pos &= ~negative[:, None]
    background = torch.where(negative[:, None], torch.ones_like(outer), ~outer & ~pos)
    weight = background.float()
    weight = torch.where(negative[:, None] & outer, weight * DISTRACTOR_WEIGHT, weight)
    return pos, weight


def giou(a, b):
    """Generalised IoU of matching cxcywh boxes a, b (N, 4) -> (N,)."""
    a_lo, a_hi = a[:, :2] - a[:, 2:] / 2, a[:, :2] + a[:, 2:] / 2
    b_lo, b_hi = b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2
    wh = (torch.minimum(a_hi, b_hi) - torch.maximum(a_lo, b_lo)).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    iou = inter / union.clamp(min=1e-9)
    hull = (torch.maximum(a_hi, b_hi) - torch.minimum(a_lo, b_lo)).clamp(min=0)
    hull_area = (hull[:, 0] * hull[:, 1]).clamp(min=1e-9)
    return iou - (hull_area - union) / hull_area
