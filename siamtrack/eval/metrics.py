"""One-pass tracking metrics, defined exactly as the got10k toolkit (0.1.3) computes them.

Inputs are (N, 4) arrays of 0-based (x, y, w, h) boxes, ground truth first. Frames whose ground truth is invalid
(NaN or w/h <= 0: target absent) are skipped, as the toolkit's UAV123 experiment skips NaN rows; a NaN prediction on
a valid frame is a failure at every threshold. The toolkit's details kept here on purpose:

- IoU divides by (union + machine eps) and is clipped to [0, 1]; success counts IoU strictly greater than each of
  the 21 thresholds linspace(0, 1, 21), and the AUC is the mean of that curve.
- Precision counts centre errors less than or equal to the threshold (the toolkit's curve runs over 0..50 px and
  reports its 20 px point).
- GOT-10k AO / SR leave out the initialisation frame, clip both boxes to the image when its size is known, and pool
  frames over a whole dataset (not a mean of per-sequence means): see `pooled_ao_sr`.

The toolkit does not ship normalised precision; it follows TrackingNet / LaSOT: the centre offset divided by the
ground-truth width and height, so that 0.2 means a fifth of the target's size.
"""
from __future__ import annotations

import numpy as np

from .. import boxes as B

THRESHOLDS_IOU = np.linspace(0, 1, 21)
THRESHOLDS_CE = np.arange(0, 51, dtype=np.float64)


def _pair(gt, pred):
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth has {len(gt)} boxes but the prediction has {len(pred)}")
    return gt, pred


def _valid(gt, pred):
    """Ground truth and prediction restricted to the frames with a valid ground-truth box."""
    gt, pred = _pair(gt, pred)
    keep = B.is_valid(gt)
    return gt[keep], pred[keep]


def toolkit_iou(gt, pred, bound=None):
    """IoU as got10k's rect_iou: eps in the denominator, clipped to [0, 1], NaN where a box is NaN.

    `bound` = (width, height) clips both boxes to the image first (GOT-10k's evaluation does this).
    """
    gt, pred = _pair(gt, pred)
    if bound is not None:
        gt, pred = _clip_to(gt, bound), _clip_to(pred, bound)
    x1 = np.maximum(gt[:, 0], pred[:, 0])
    y1 = np.maximum(gt[:, 1], pred[:, 1])
    x2 = np.minimum(gt[:, 0] + gt[:, 2], pred[:, 0] + pred[:, 2])
    y2 = np.minimum(gt[:, 1] + gt[:, 3], pred[:, 1] + pred[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = gt[:, 2] * gt[:, 3] + pred[:, 2] * pred[:, 3] - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def _clip_to(b, bound):
    w, h = float(bound[0]), float(bound[1])
    out = b.copy()
    out[:, 0] = np.clip(b[:, 0], 0, w)
    out[:, 1] = np.clip(b[:, 1], 0, h)
    out[:, 2] = np.clip(b[:, 2], 0, w - out[:, 0])
    out[:, 3] = np.clip(b[:, 3], 0, h - out[:, 1])
    return out


def _fraction(values, thresholds, op):
    """Fraction of frames where op(value, threshold) holds, per threshold; NaN values never pass. No frames -> 0."""
    if len(values) == 0:
        return np.zeros(len(thresholds))
    with np.errstate(invalid="ignore"):
        return np.mean(op(values[:, None], thresholds[None, :]), axis=0)


def success_curve(gt, pred) -> np.ndarray:
    """(21,) fraction of valid frames with IoU > t for t in THRESHOLDS_IOU."""
    gt, pred = _valid(gt, pred)
    return _fraction(toolkit_iou(gt, pred), THRESHOLDS_IOU, np.greater)


def success_auc(gt, pred) -> float:
    return float(np.mean(success_curve(gt, pred)))


def precision_curve(gt, pred) -> np.ndarray:
    """(51,) fraction of valid frames with centre error <= t pixels, t = 0..50."""
    gt, pred = _valid(gt, pred)
    return _fraction(B.center_error(gt, pred), THRESHOLDS_CE, np.less_equal)


def precision_at(gt, pred, threshold=20.0) -> float:
    gt, pred = _valid(gt, pred)
    return float(_fraction(B.center_error(gt, pred), np.array([float(threshold)]), np.less_equal)[0])


def normalized_center_error(gt, pred) -> np.ndarray:
    """Centre offset in units of the ground-truth width (x) and height (y), as a Euclidean length."""
    gt, pred = _pair(gt, pred)
    d = (B.xywh_to_cxcywh(pred)[:, :2] - B.xywh_to_cxcywh(gt)[:, :2]) / gt[:, 2:]
    return np.sqrt(np.sum(d ** 2, axis=1))


def norm_precision(gt, pred, threshold=0.2) -> float:
    gt, pred = _valid(gt, pred)
    return float(_fraction(normalized_center_error(gt, pred), np.array([float(threshold)]), np.less_equal)[0])


def got10k_ious(gt, pred, bound=None) -> np.ndarray:
    """The IoUs GOT-10k averages: valid frames after the first valid one (the initialisation frame)."""
    gt, pred = _pair(gt, pred)
    keep = B.is_valid(gt)
    first = np.flatnonzero(keep)
    if len(first):
        keep[first[0]] = False
    return toolkit_iou(gt[keep], pred[keep], bound)


def size_ratios(gt, pred) -> np.ndarray:
    """Per frame, predicted over true box side, sqrt(area_pred / area_gt): frames after the initialisation frame
    whose ground truth is valid and whose prediction is a finite box. 1 is right; above it the box has swollen."""
    gt, pred = _pair(gt, pred)
    keep = B.is_valid(gt)
    first = np.flatnonzero(keep)
    if len(first):
        keep[first[0]] = False
    with np.errstate(invalid="ignore"):
        keep &= np.all(np.isfinite(pred), axis=1) & (pred[:, 2] > 0) & (pred[:, 3] > 0)
    return np.sqrt(pred[keep, 2] * pred[keep, 3] / (gt[keep, 2] * gt[keep, 3]))


def size_ratio(gt, pred) -> float:
    """Median of `size_ratios`; NaN when no frame qualifies."""
    r = size_ratios(gt, pred)
    return float(np.median(r)) if len(r) else float("nan")


def _ao_sr_of(ious):
    if len(ious) == 0:
        return 0.0, 0.0, 0.0
    with np.errstate(invalid="ignore"):
        ious = np.nan_to_num(ious, nan=0.0)
        return float(np.mean(ious)), float(np.mean(ious > 0.5)), float(np.mean(ious > 0.75))


def ao_sr(gt, pred, bound=None):
    """GOT-10k average overlap and success rates at IoU 0.5 and 0.75 -> (ao, sr50, sr75)."""
    return _ao_sr_of(got10k_ious(gt, pred, bound))


def pooled_ao_sr(per_sequence_ious):
    """Dataset-level AO / SR the GOT-10k way: every frame of every sequence weighs the same."""
    ious = [np.asarray(i, dtype=np.float64) for i in per_sequence_ious]
    return _ao_sr_of(np.concatenate(ious) if ious else np.zeros(0))
