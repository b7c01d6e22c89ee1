"""One-pass evaluation (OPE): initialise on the first frame with a valid box, then only update(), never re-initialise.

Frames before the initialisation frame get a NaN box (their ground truth is invalid, so no metric counts them). The
initialisation frame gets the ground-truth box, as the got10k toolkit records it. `times[i]` is the seconds of the
tracker call on frame i (init() on the initialisation frame, update() after it) and `decode[i]` the seconds spent
reading frame i, kept apart so that speed measures the tracker, not the JPEG decoder.
"""
from __future__ import annotations

import time

import numpy as np

from .summary import first_valid, sequence_scores, summarize


def run_sequence(tracker, seq, max_frames=None) -> dict:
    n = len(seq) if max_frames is None else min(len(seq), int(max_frames))
    gt = np.asarray(seq.boxes, dtype=np.float64)[:n]
    out = {"boxes": np.full((n, 4), np.nan), "scores": np.full(n, np.nan),
           "times": np.zeros(n), "decode": np.zeros(n)}
    k = first_valid(gt)
    out["init_frame"] = k
    if k < 0:
        return out
    for i in range(k, n):
        t0 = time.perf_counter()
        frame = seq.frame(i)
        t1 = time.perf_counter()
        if i == k:
            tracker.init(frame, gt[k])
            box, score = gt[k], 1.0
        else:
            res = tracker.update(frame)
            box, score = res.box, res.score
        t2 = time.perf_counter()
        out["boxes"][i] = np.asarray(box, dtype=np.float64).reshape(4)
        out["scores"][i] = float(score)
        out["decode"][i] = t1 - t0
        out["times"][i] = t2 - t1
    return out


def frame_bound(seq):
    """(width, height) of the sequence's frames, for GOT-10k's clipping of boxes to the image."""
    h, w = seq.frame(0).shape[:2]
    return w, h


def evaluate(make_tracker, sequences, max_frames=None) -> dict:
    """Run a fresh tracker from `make_tracker()` over each sequence; dataset-level and per-sequence scores."""
    per_seq = {}
    for seq in sequences:
        res = run_sequence(make_tracker(), seq, max_frames)
        gt = np.asarray(seq.boxes, dtype=np.float64)[:len(res["boxes"])]
        per_seq[seq.name] = sequence_scores(gt, res["boxes"], res["times"], frame_bound(seq))
    return summarize(per_seq)
