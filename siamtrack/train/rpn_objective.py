"""RPN training objective (SiamRPN / SiamRPN++, Li et al. 2018 / 2019).

Per pair, anchors are labelled by IoU with the target box (> 0.6 positive, < 0.3 negative, at most 16 positives in
64 samples; negative pairs get no positives). Loss = cross-entropy on the sampled anchors, positives and negatives
weighted half each so that pairs with few positives still teach the target class, plus 1.2 x L1 (or smooth-L1,
`train.loc_loss`) on the positives' (dx, dy, dw, dh).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import boxes as B
from ..anchors import anchor_grid, anchor_shapes, check_anchor_count, encode, iou_cxcywh
from ..errors import ConfigError

LOC_WEIGHT = 1.2
LOC_LOSSES = {"l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss}


class RPNObjective:
    """`obj(output, box, negative) -> (loss, {name: float})`; output = model(z, x) = (cls, loc), box (B, 4)
    x, y, w, h in search-crop pixels, negative (B,) 1 for negative pairs."""

    def __init__(self, cfg, model, generator=None):
        self.shapes = anchor_shapes(cfg.tracker.anchor_ratios, cfg.tracker.anchor_size)
        self.stride = _unwrap(model).stride
        self.search_size = cfg.train.search_size
        self.generator = generator
        if cfg.train.loc_loss not in LOC_LOSSES:
            raise ConfigError(f"train.loc_loss must be one of {sorted(LOC_LOSSES)}, not {cfg.train.loc_loss!r}")
        self.loc_loss = LOC_LOSSES[cfg.train.loc_loss]
        self._anchors = {}

    def anchors(self, response_size, device):
        key = (response_size, str(device))
        if key not in self._anchors:
            grid = anchor_grid(self.shapes, response_size, self.stride, self.search_size)
            self._anchors[key] = torch.as_tensor(grid, dtype=torch.float32, device=device)
        return self._anchors[key]

    def __call__(self, output, box, negative):
        cls, loc = output
        b, _, r, _ = cls.shape
        check_anchor_count(cls, loc, len(self.shapes))
        anchors = self.anchors(r, cls.device)
        target = torch.as_tensor(B.xywh_to_cxcywh(_numpy(box)), dtype=torch.float32, device=cls.device)
        negative = torch.as_tensor(_numpy(negative), device=cls.device).reshape(-1)
        with torch.no_grad():
            labels = label_anchors(anchors, target, negative, generator=self.generator)
        # (B, 2, k, R, R) -> (B, A, 2) with A in the anchor order of anchors.py
        logits = cls.float().reshape(b, 2, -1).transpose(1, 2)
        deltas = loc.float().reshape(b, 4, -1).transpose(1, 2)
        pos, neg = labels == 1, labels == 0
        ce = F.cross_entropy(logits.reshape(-1, 2), labels.clamp(min=0).reshape(-1), reduction="none").reshape(b, -1)
        cls_pos = ce[pos].mean() if pos.any() else ce.sum() * 0
        cls_neg = ce[neg].mean() if neg.any() else ce.sum() * 0
        cls_loss = 0.5 * cls_pos + 0.5 * cls_neg
        if pos.any():
            n = anchors.shape[0]
            goal = encode(target[:, None, :].expand(-1, n, -1)[pos], anchors[None].expand(b, -1, -1)[pos])
            loc_loss = self.loc_loss(deltas[pos], goal, reduction="sum") / pos.sum()
        else:
            loc_loss = deltas.sum() * 0
        loss = cls_loss + LOC_WEIGHT * loc_loss
        return loss, {"loss": float(loss.detach()), "cls": float(cls_loss.detach()), "loc": float(loc_loss.detach()),
                      "positives": float(pos.sum()) / b}


def _unwrap(model):
    # DistributedDataParallel keeps the SiameseNet in .module
    return getattr(model, "module", model)


def _numpy(t):
    return t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else t


def label_anchors(anchors, boxes, negative, pos_iou=0.6, neg_iou=0.3, num_samples=64, max_pos=16,
                  generator=None):
    """Sampled anchor labels per pair: 1 positive, 0 negative, -1 ignored. -> (B, A) long tensor.

    anchors (A, 4) and boxes (B, 4) are cxcywh tensors in search-crop pixels; `negative` (B,) marks pairs whose
    search crop does not hold the exemplar's object: those get no positives, and their box is the other object's.
    Besides the IoU > pos_iou anchors, the best anchor of a positive pair counts as positive when its IoU is above
    neg_iou, so thin or odd-shaped targets still teach the regression. At most `max_pos` positives are kept and
    negatives fill up to `num_samples`. A negative pair samples the anchors on the other object first (up to
    `max_pos` of them): that distractor is what the classifier must learn to reject, and uniform sampling would
    mostly pick plain background.
    """
    iou = iou_cxcywh(anchors, boxes)
    negative = negative.bool()
    pos = (iou > pos_iou) & ~negative[:, None]
    best = iou.argmax(dim=1)
    best_ok = (iou.gather(1, best[:, None])[:, 0] > neg_iou) & ~negative
    pos[best_ok, best[best_ok]] = True
    neg = (iou < neg_iou) | negative[:, None]
    neg &= ~pos
    labels = torch.full(iou.shape, -1, dtype=torch.long, device=iou.device)
    # Random priorities; keeping the top-n of each kind is a uniform sample without replacement.
    prio = torch.rand(iou.shape, generator=generator, device=iou.device)
    pos_keep = _keep_top(torch.where(pos, prio, -1.0), max_pos)
    labels[pos_keep] = 1
    n_neg = num_samples - pos_keep.sum(dim=1, keepdim=True)
    on_distractor = (iou > neg_iou) & negative[:, None]
    hard = _keep_top(torch.where(on_distractor, prio, -1.0), max_pos)
    # Priorities above 1 put the chosen distractor anchors ahead of every background anchor.
    labels[_keep_top(torch.where(neg, prio + 2.0 * hard, -1.0), n_neg)] = 0
    return labels


def _keep_top(prio, n):
    """Mask of the n highest non-negative priorities per row (n an int or a (B, 1) tensor)."""
    order = prio.argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(prio.shape[1], device=prio.device).expand_as(order))
    return (rank < n) & (prio >= 0)
