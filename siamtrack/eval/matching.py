"""The one-shot matching protocol of tools/match_eval.py, on any sequence dataset (siamtrack.data.datasets).

Per sequence: the first frame with a valid box is the template; the frames at 25, 50, 75 and 100 % of the sequence
(the nearest valid one where the ground truth there is NaN or empty) are queries that hold the object; as many frames
from other sequences (sequence i + 1 + j for the j-th query, at the same fractions) are queries that do not. Metrics:
top-1 success (IoU of the best match > 0.5) and the mean IoU of the best match over present queries, and the ROC AUC
of the best match's score, present against absent (1.0: every present image scores above every absent one).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import boxes as B

FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def nearest_valid(valid, index):
    """The valid frame index nearest `index` (the earlier one on a tie), or None when none is valid."""
    ok = np.flatnonzero(valid)
    if not len(ok):
        return None
    return int(ok[np.argmin(np.abs(ok - index) * 2 + (ok > index))])


def query_frames(seq, fractions=FRACTIONS):
    """Frame indices at the fractions of `seq` with a valid box (fraction 1.0 is the last frame)."""
    n = len(seq)
    return [nearest_valid(seq.valid, int(round(f * (n - 1)))) for f in fractions]


@dataclass
class Query:
    sequence: str          # the template's sequence
    image_of: str          # the sequence the query frame comes from
    frame: int
    present: bool
    truth: np.ndarray      # (4,) ground-truth box, NaN when absent


def plan(seqs, fractions=FRACTIONS):
    """[(template sequence, template frame, [Query, ...])] for every sequence with a valid box."""
    out = []
    for i, s in enumerate(seqs):
        first = nearest_valid(s.valid, 0)
        if first is None:
            continue
        queries = [Query(s.name, s.name, f, True, s.boxes[f]) for f in query_frames(s, fractions) if f is not None]
        for j, frac in enumerate(fractions):
            other = seqs[(i + 1 + j) % len(seqs)]
            if other is s:
                continue
            f = int(round(frac * (len(other) - 1)))
            queries.append(Query(s.name, other.name, f, False, np.full(4, np.nan)))
        out.append((s, first, queries))
    return out


def roc_auc(positive, negative):
    """Probability that a random positive scores above a random negative, ties counting half (Mann-Whitney U)."""
    pos, neg = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None]).sum()
    ties = (pos[:, None] == neg[None]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def evaluate(matcher, seqs, fractions=FRACTIONS, progress=None):
    """Run `matcher` (set_template / find) over the protocol -> list of per-query records (plain dicts)."""
    by_name = {s.name: s for s in seqs}
    records = []
    for seq, first, queries in plan(seqs, fractions):
        matcher.set_template(seq.frame(first), seq.boxes[first])
        for q in queries:
            matches = matcher.find(by_name[q.image_of].frame(q.frame))
            best = matches[0] if matches else None
            records.append({
                "sequence": q.sequence, "image_of": q.image_of, "frame": q.frame, "present": q.present,
                "iou": float(B.iou(best.box, q.truth)) if (best is not None and q.present) else 0.0,
                "scores": [m.score for m in matches],
                "box": best.box.tolist() if best is not None else None,
                # the exemplar's score on its own template: what a calibration may compare the scores with
                "reference": getattr(matcher, "reference_score", None),
            })
            if progress is not None:
                progress.update(1)
    return records


def summarise(records):
    """Top-1 success, mean IoU (present queries) and ROC AUC of the best score (present vs absent)."""
    present = [r for r in records if r["present"]]
    absent = [r for r in records if not r["present"]]
    best = lambda rs: [r["scores"][0] if r["scores"] else 0.0 for r in rs]   # noqa: E731
    ious = np.array([r["iou"] for r in present])
    return {"present": len(present), "absent": len(absent),
            "top1_success": float(np.mean(ious > 0.5)) if len(ious) else float("nan"),
            "mean_iou": float(np.mean(ious)) if len(ious) else float("nan"),
            "auc": roc_auc(best(present), best(absent))}


def fit_calibration(records, iterations=50):
    """(slope, bias) of the logistic fit P(present) = sigmoid(slope * logit(best raw score) + bias), by Newton's
    method; `records` must hold raw (uncalibrated) scores."""
    p = np.clip([r["scores"][0] if r["scores"] else 0.0 for r in records], 1e-6, 1 - 1e-6)
    x = np.stack([np.log(p) - np.log1p(-p), np.ones(len(p))], axis=1)
    y = np.array([r["present"] for r in records], dtype=np.float64)
    w = np.zeros(2)
    for _ in range(iterations):
        q = 1.0 / (1.0 + np.exp(-x @ w))
        # a little ridge (1e-3) keeps the step finite when the two classes separate completely
        hess = x.T @ (x * (q * (1 - q))[:, None]) + 1e-3 * np.eye(2)
        w -= np.linalg.solve(hess, x.T @ (q - y) + 1e-3 * w)
    return float(w[0]), float(w[1])
