"""SiamFC's balanced logistic loss and the labels it is computed against."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def siamfc_labels(boxes, response_size, stride, search_size, radius):
    """(B, 4) target boxes (x, y, w, h) in search-crop pixels -> (B, 1, R, R) float labels.

    Response cell (u, v) looks at crop point (S / 2 + (u - (R - 1) / 2) * stride, same for v): label 1 where that
    point is within `radius` crop pixels of the target centre, which moves with the shift augmentation, else 0.
    """
    boxes = boxes.float()
    offsets = (torch.arange(response_size, dtype=torch.float32, device=boxes.device) - (response_size - 1) / 2)
    pos = search_size / 2 + offsets * stride  # (R,)
    cx = boxes[:, 0] + boxes[:, 2] / 2
    cy = boxes[:, 1] + boxes[:, 3] / 2
    dx = pos[None, None, :] - cx[:, None, None]
    dy = pos[None, :, None] - cy[:, None, None]
    return ((dx ** 2 + dy ** 2) <= radius ** 2).float().unsqueeze(1)


def balanced_logistic_loss(logits, labels):
    """Mean over the batch of the logistic loss with positives and negatives each weighted to half of a sample.

    A sample with no positive cell (a negative pair, or a target shifted outside the grid) gives its whole weight to
    its negatives.
    """
    logits = logits.float()
    pos = labels
    neg = 1.0 - labels
    n_pos = pos.flatten(1).sum(1).view(-1, 1, 1, 1)
    n_neg = neg.flatten(1).sum(1).view(-1, 1, 1, 1)
    w_pos = torch.where(n_pos > 0, 0.5 / n_pos.clamp(min=1), torch.zeros_like(n_pos))
    w_neg = torch.where(n_pos > 0, 0.5, 1.0) / n_neg.clamp(min=1)
    weights = pos * w_pos + neg * w_neg
    per_cell = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return (per_cell * weights).flatten(1).sum(1).mean()
