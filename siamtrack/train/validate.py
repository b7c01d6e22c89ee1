"""Epoch-end validation: one-pass tracking over the first frames of each validation sequence."""
from __future__ import annotations

import numpy as np
import torch

from ..api import make_tracker
from ..eval.metrics import precision_at, success_auc
from ..eval.runner import run_sequence


def validate(model, cfg, sequences, device, max_frames=None, bf16=False) -> dict:
    """Mean success AUC and precision@20 over `sequences` (per sequence first, then the mean)."""
    was_training = model.training
    model.eval()
    aucs, precs, frames = [], [], 0
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for seq in sequences:
                tracker = make_tracker(model, cfg, device)
                res = run_sequence(tracker, seq, max_frames)
                gt = np.asarray(seq.boxes, dtype=np.float64)[:len(res["boxes"])]
                aucs.append(success_auc(gt, res["boxes"]))
                precs.append(precision_at(gt, res["boxes"], 20))
                frames += len(gt)
    finally:
        model.kernels = None  # the tracker's template must not outlive validation
        model.train(was_training)
    return {"auc": float(np.mean(aucs)), "precision20": float(np.mean(precs)), "sequences": len(sequences),
            "frames": frames, "per_sequence_auc": [float(a) for a in aucs]}
