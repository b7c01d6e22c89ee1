"""One-pass evaluation (OPE): initialise on the first frame with a valid box, then only update(), never re-initialise.

Frames before the initialisation frame get a NaN box (their ground truth is invalid, so no metric counts them) and
are not read. The initialisation frame gets the ground-truth box, as the got10k toolkit records it. `times[i]` is the
seconds of the tracker call on frame i (init() on the initialisation frame, update() after it) and `decode[i]` the
seconds spent reading frame i, kept apart so that speed measures the tracker, not the JPEG decoder.
"""
from __future__ import annotations

import numpy as np

from .. import boxes as B
from ..data.sources import IndexedSource
from ..stream import track
from .summary import first_valid, mean_of_runs, sequence_scores, summarize

# OTB's spatial robustness evaluation (Wu et al. 2013): the first box shifted by 10 % of its size in 8 directions,
# then scaled by 0.8, 0.9, 1.1 and 1.2. (dx, dy, scale); `--init-jitter K` adds the first K as runs.
SRE_JITTERS = ((-0.1, -0.1, 1.0), (0.0, -0.1, 1.0), (0.1, -0.1, 1.0), (-0.1, 0.0, 1.0), (0.1, 0.0, 1.0),
               (-0.1, 0.1, 1.0), (0.0, 0.1, 1.0), (0.1, 0.1, 1.0), (0.0, 0.0, 0.8), (0.0, 0.0, 0.9),
               (0.0, 0.0, 1.1), (0.0, 0.0, 1.2))


def sre_jitter(run):
    """The first-box jitter of run `run`: None for run 0 (the plain one-pass run), else SRE_JITTERS[run - 1]."""
    return None if run == 0 else SRE_JITTERS[run - 1]


def run_sequence(tracker, seq, max_frames=None, jitter=None) -> dict:
    """-> boxes (N, 4), scores, states, times, decode (N,) and init_frame (-1: nothing to track). `jitter` (dx, dy,
    scale): initialise on the ground-truth box moved and scaled so (siamtrack.boxes.jittered), as OTB's SRE does."""
    n = len(seq) if max_frames is None else min(len(seq), int(max_frames))
    gt = np.asarray(seq.boxes, dtype=np.float64)[:n]
    out = {"boxes": np.full((n, 4), np.nan), "scores": np.full(n, np.nan), "states": np.full(n, "", dtype=object),
           "times": np.zeros(n), "decode": np.zeros(n)}
    k = first_valid(gt)
    out["init_frame"] = k
    if k < 0:
        return out
    first = gt[k] if jitter is None else B.jittered(gt[k], *jitter)
    for step in track(tracker, IndexedSource(seq.frame, n, start=k, description=seq.name), [first]):
        i, res = step.index, step.results[0]
        out["boxes"][i] = np.asarray(res.box, dtype=np.float64).reshape(4)
        out["scores"][i] = float(res.score)
        out["states"][i] = res.state
        out["times"][i] = step.seconds
        out["decode"][i] = step.decode
    return out


def frame_bound(seq):
    """(width, height) of the sequence's frames, for GOT-10k's clipping of boxes to the image."""
    h, w = seq.frame(0).shape[:2]
    return w, h


def evaluate(make_tracker, sequences, max_frames=None, runs=1) -> dict:
    """Run a fresh tracker from `make_tracker()` over each sequence; dataset-level and per-sequence scores. With
    runs > 1, also from the first runs - 1 SRE starts: every number the mean over the runs, as `siamtrack benchmark
    --init-jitter` scores them (`run_auc`: each run's success AUC)."""
    each = []
    for run in range(runs):
        per_seq = {}
        for seq in sequences:
            res = run_sequence(make_tracker(), seq, max_frames, jitter=sre_jitter(run))
            gt = np.asarray(seq.boxes, dtype=np.float64)[:len(res["boxes"])]
            per_seq[seq.name] = sequence_scores(gt, res["boxes"], res["times"], frame_bound(seq))
        each.append(summarize(per_seq))
    return mean_of_runs(each)
