"""SiamRPN tracking loop (Li et al. 2018) with its original post-processing.

Per frame and target: one search crop at the current scale (one batched forward pass for all targets), a softmax
score per anchor, anchor boxes decoded with the predicted offsets, a penalty on size and aspect-ratio change, a
cosine window for small motion, and the best anchor moves the centre fully and the size by a damped step whose rate
is the penalised score of that anchor. With `box_topk` k > 1 the box it moves to is the score-weighted mean of the k
best candidates' boxes rather than the best one's (the rate still the best one's). With `grow_rate` g < 1 a side
that grows moves at g times that rate.
"""
from __future__ import annotations

import numpy as np
import torch

from ..crops import exemplar_size
from ..anchors import anchor_grid, anchor_shapes, check_anchor_count, decode
from ..errors import ConfigError
from .base import Tracker


def _change(r):
    return np.maximum(r, 1.0 / r)


def _padded_size(w, h):
    # The context-padded side the penalty compares, as the exemplar crop uses: sqrt((w + p)(h + p)), p = (w + h) / 2
    p = (w + h) / 2
    return np.sqrt((w + p) * (h + p))


class SiamRPNTracker(Tracker):
    name = "siamrpn"

    def __init__(self, model, cfg, device, crop_on_device=None):
        super().__init__(model, cfg, device, crop_on_device)
        if not 0 <= cfg.aspect_prior <= 1:
            raise ConfigError(f"tracker: aspect_prior must be within [0, 1], got {cfg.aspect_prior}")
        if not 0 < cfg.grow_rate <= 1:
            raise ConfigError(f"tracker: grow_rate must be within (0, 1], got {cfg.grow_rate}")
        if int(cfg.box_topk) != cfg.box_topk or cfg.box_topk < 1:
            raise ConfigError(f"tracker: box_topk must be a whole number >= 1, got {cfg.box_topk}")
        self.anchor_shapes = anchor_shapes(cfg.anchor_ratios, cfg.anchor_size)
        self.stride = model.stride
        self._grid = {}

    def _geometry(self, response_size):
        """What the A candidates of an R x R response decode against (`_cells`) and their Hann window (A,)."""
        if response_size not in self._grid:
            cells = self._cells(response_size)
            hann = np.outer(np.hanning(response_size), np.hanning(response_size)).reshape(-1)
            self._grid[response_size] = (cells, np.tile(hann, len(cells) // len(hann)))
        return self._grid[response_size]

    # The head's layout; the anchor-free tracker (siamban.py) overrides these three.
    def _cells(self, response_size):
        """Anchors (A, 4) cxcywh in search-crop pixels, A = k * R * R."""
        return anchor_grid(self.anchor_shapes, response_size, self.stride, self.cfg.search_size)

    def _check_head(self, cls, loc):
        check_anchor_count(cls, loc, len(self.anchor_shapes))

    def _decode(self, raw, cells):
        """raw (K, A, 4) offsets -> (K, A, 4) cxcywh boxes in crop pixels."""
        return decode(raw, cells[None])

    @torch.inference_mode()
    def _init(self, frame, boxes):
        t = self.cfg
        self.centers = boxes[:, :2] + boxes[:, 2:] / 2
        self.sizes = boxes[:, 2:].copy()
        self.first_aspect = self.sizes[:, 0] / self.sizes[:, 1]
        self.pad = self._frame_mean(frame)
        z_sz = np.array([exemplar_size(w, h, t.context_amount) for w, h in self.sizes])
        z = self._crop(self._prepare_frame(frame), self.centers, z_sz, t.exemplar_size, self.pad)
        self.kernels = self.model.template(z)

    @torch.inference_mode()
    def _update(self, frame):
        t = self.cfg
        h, w = frame.shape[:2]
        z_sz = np.array([exemplar_size(bw, bh, t.context_amount) for bw, bh in self.sizes])
        x_sz = z_sz * t.search_size / t.exemplar_size
        x = self._crop(self._prepare_frame(frame), self.centers, x_sz, t.search_size, self.pad)
        score, boxes, r = self.candidates(self.model.track(x, self.kernels))
        return self._postprocess(score, boxes, x_sz, r, w, h)

    def candidates(self, output):
        """The head's output for K search crops -> target probabilities (K, A), boxes (K, A, 4) cxcywh in crop
        pixels, and the response size R: one candidate per anchor and cell."""
        cls, loc = output
        self._check_head(cls, loc)
        k, r = cls.shape[0], cls.shape[-1]
        # In numpy from here: a torch op on tensors this small wakes torch's thread pool, which then spins and
        # slowed the next frame's onnxruntime call by 0.35 ms (session 13).
        cls = cls.float().cpu().numpy().astype(np.float64).reshape(k, 2, -1)
        score = 1.0 / (1.0 + np.exp(cls[:, 0] - cls[:, 1]))   # the softmax's second class, (K, A)
        raw = loc.float().cpu().numpy().astype(np.float64).reshape(k, 4, -1).transpose(0, 2, 1)  # (K, A, 4)
        cells, _ = self._geometry(r)
        return score, self._decode(raw, cells), r

    def _postprocess(self, score, boxes, x_sz, response_size, width, height):
        """score (K, A) target probabilities, boxes (K, A, 4) cxcywh in crop pixels, x_sz (K,) search side in frame
        pixels."""
        t = self.cfg
        _, hann = self._geometry(response_size)
        scale = (x_sz / t.search_size)[:, None]                     # frame pixels per crop pixel
        pw, ph = boxes[..., 2] * scale, boxes[..., 3] * scale
        cw, ch = self.sizes[:, 0:1], self.sizes[:, 1:2]
        s_c = _change(_padded_size(pw, ph) / _padded_size(cw, ch))
        a = t.aspect_prior
        aspect = (cw / ch) ** (1 - a) * self.first_aspect[:, None] ** a
        r_c = _change(aspect / (pw / ph))
        penalty = np.exp(-(r_c * s_c - 1) * t.penalty_k)
        pscore = penalty * score * (1 - t.window_influence) + hann[None] * t.window_influence
        best = np.argmax(pscore, axis=1)
        rows = np.arange(len(best))
        lr = penalty[rows, best] * score[rows, best] * t.size_lr
        box = self._top_box(pscore, boxes, best)                   # (K, 4) cxcywh in crop pixels
        disp = (box[:, :2] - t.search_size / 2) * scale
        self.centers = self.centers + disp
        self.centers[:, 0] = np.clip(self.centers[:, 0], 0, width)
        self.centers[:, 1] = np.clip(self.centers[:, 1], 0, height)
        bw, bh = box[:, 2] * scale[:, 0], box[:, 3] * scale[:, 0]
        lr_w = np.where(bw > cw[:, 0], lr * t.grow_rate, lr)
        lr_h = np.where(bh > ch[:, 0], lr * t.grow_rate, lr)
        new_w = cw[:, 0] * (1 - lr_w) + bw * lr_w
        new_h = ch[:, 0] * (1 - lr_h) + bh * lr_h
        # Never smaller than min_size (a box that shrinks to nothing cannot recover) nor larger than the frame.
        self.sizes = np.stack([np.clip(new_w, t.min_size, max(t.min_size, width)),
                               np.clip(new_h, t.min_size, max(t.min_size, height))], axis=1)
        return score[rows, best]

    def _top_box(self, pscore, boxes, best):
        """The new box (K, 4) in crop pixels: the best candidate's, or with box_topk k > 1 the mean of the k best
        candidates' boxes weighted by their penalised score (the update rate still comes from the best alone)."""
        k = min(int(self.cfg.box_topk), pscore.shape[1])
        if k == 1:
            return boxes[np.arange(len(best)), best]
        out = np.empty((len(best), 4))
        for i in range(len(best)):     # per target: half the time of the batched numpy form for K = 1
            top = np.argpartition(pscore[i], -k)[-k:]
            w = pscore[i, top]
            out[i] = w @ boxes[i, top] / w.sum()
        return out

    def _peaks(self, output):
        """Global search while lost: the best candidate's score and its centre, no penalty or window."""
        score, boxes, _ = self.candidates(output)
        best = np.argmax(score, axis=1)
        rows = np.arange(len(best))
        return score[rows, best], boxes[rows, best, :2]
