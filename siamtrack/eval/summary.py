"""Per-sequence scores and their dataset-level means, in the shape the benchmark JSON uses.

Success and precision are averaged over sequences (the toolkit's OTB way); AO / SR pool frames over the dataset (the
toolkit's GOT-10k way); fps is frames over total update() time, so long sequences weigh more than short ones.
"""
from __future__ import annotations

import numpy as np

from . import metrics as M


def first_valid(gt) -> int:
    """Index of the initialisation frame (first valid ground truth), or -1 when there is none."""
    idx = np.flatnonzero(M.B.is_valid(np.asarray(gt, dtype=np.float64).reshape(-1, 4)))
    return int(idx[0]) if len(idx) else -1


def tracked_time(times, gt):
    """(number of update() calls, their total seconds): the frames after the initialisation frame."""
    k = first_valid(gt)
    if k < 0:
        return 0, 0.0
    t = np.asarray(times, dtype=np.float64)[k + 1:]
    return len(t), float(np.nansum(t))


def sequence_scores(gt, pred, times, bound=None, origin=0.0) -> dict:
    """Everything one sequence contributes: the per-sequence JSON entry plus the curves and IoUs the means need.

    gt and pred are in the coordinates of the result file (`origin` 1 for the 1-based OTB / LaSOT / UAV123 files,
    0 otherwise), so that centre errors are computed from the very numbers the toolkit would read. As the toolkit
    does, frame 0 scores the ground truth itself: its prediction is the given box, not a tracking result. GOT-10k's
    clipping to the image (`bound` = width, height) works in 0-based pixels.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.array(pred, dtype=np.float64, copy=True)
    if len(pred):
        pred[0] = gt[0]
    n_upd, secs = tracked_time(times, gt)
    shift = np.array([origin, origin, 0.0, 0.0])
    return {
        "success_auc": M.success_auc(gt, pred),
        "precision_20": M.precision_at(gt, pred, 20.0),
        "norm_precision": M.norm_precision(gt, pred, 0.2),
        "fps": n_upd / secs if secs > 0 else 0.0,
        "frames": int(len(gt)),
        "size_ratio": _finite_or_none(M.size_ratio(gt, pred)),
        "_success_curve": M.success_curve(gt, pred),
        "_precision_curve": M.precision_curve(gt, pred),
        "_got10k_ious": M.got10k_ious(gt - shift, pred - shift, bound),
        "_updates": n_upd,
        "_seconds": secs,
    }


def _finite_or_none(v):
    # JSON has no NaN: a sequence with no frame to measure gets null
    return float(v) if np.isfinite(v) else None


PER_SEQUENCE_KEYS = ("success_auc", "precision_20", "fps", "frames", "size_ratio")


def summarize(per_sequence: dict) -> dict:
    """Dataset-level scores from {name: sequence_scores(...)}; private (underscore) fields stay out of per_sequence."""
    seqs = list(per_sequence.values())
    if not seqs:
        raise ValueError("no sequences to summarise")
    succ = np.mean([s["_success_curve"] for s in seqs], axis=0)
    prec = np.mean([s["_precision_curve"] for s in seqs], axis=0)
    ao, sr50, sr75 = M.pooled_ao_sr([s["_got10k_ious"] for s in seqs])
    # Box size drift: the median over sequences of each sequence's median side ratio, and the worst sequence.
    ratios = np.array([s["size_ratio"] for s in seqs if s["size_ratio"] is not None], dtype=np.float64)
    updates = sum(s["_updates"] for s in seqs)
    seconds = sum(s["_seconds"] for s in seqs)
    return {
        "success_auc": float(np.mean(succ)),
        "precision_20": float(prec[20]),
        "norm_precision": float(np.mean([s["norm_precision"] for s in seqs])),
        "ao": ao, "sr50": sr50, "sr75": sr75,
        "fps": updates / seconds if seconds > 0 else 0.0,
        "frames": int(sum(s["frames"] for s in seqs)),
        "size_ratio": float(np.median(ratios)) if len(ratios) else None,
        "size_ratio_max": float(np.max(ratios)) if len(ratios) else None,
        "per_sequence": {name: {k: s[k] for k in PER_SEQUENCE_KEYS} for name, s in per_sequence.items()},
        "success_curve": succ.tolist(),
        "precision_curve": prec.tolist(),
    }


def mean_of_runs(each: list) -> dict:
    """Dataset-level score records of the same tracker's runs (`summarize` outputs) -> one record, every number (dataset
    level, per sequence, the curves) the mean over the runs, plus `run_auc`: each run's success AUC."""
    return {**_mean(each), "run_auc": [e["success_auc"] for e in each]}


def _mean(values):
    """Mean of same-shaped score records: dicts key by key, lists (curves) element-wise, floats; anything else (frame
    counts, a None size ratio) is the first run's."""
    first = values[0]
    if isinstance(first, dict):
        return {k: _mean([v[k] for v in values]) for k in first}
    if isinstance(first, list):
        return np.mean(values, axis=0).tolist()
    if all(isinstance(v, float) for v in values):
        return float(np.mean(values))
    return first
