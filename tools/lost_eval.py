"""Lost-target states and recovery, measured: one-pass evaluation on the val split with and without recovery, the
score distribution of good and failed frames, and how the states match the truth where the target leaves the frame.

    python tools/lost_eval.py --model siamrpn-lite --json lost.json
    python tools/lost_eval.py --model run/best.pth --set lost_below=0.2 uncertain_below=0.4 recover_above=0.6
    python tools/lost_eval.py --model run/best.pth --tune        # pick the thresholds on val (a few more passes)

Thresholds are tuned on `val` only. The four train sequences with `nan` ground truth (the only ones where the target
leaves the view) are measured, never tuned on: per sequence, the share of frames said lost while the target is gone,
and while it is visible. Runs one process with one thread unless told otherwise (the CPU is shared).
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

from siamtrack import boxes as B
from siamtrack.api import make_tracker
from siamtrack.data.datasets import open_dataset
from siamtrack.eval.grid import run_combinations
from siamtrack.eval.runner import frame_bound, run_sequence
from siamtrack.eval.summary import sequence_scores, summarize
from siamtrack.loader import load_model
from siamtrack.shared import shared_path
from siamtrack.trackers.base import LOST

DEFAULT_ROOT = shared_path("data", "sot")
ABSENT_SEQUENCES = ["uav10_car14", "uav10_group2_2", "uav10_group3_2", "uav10_person9"]
STATE_FIELDS = ("uncertain_below", "lost_below", "lost_patience", "recover_above")


def run_split(net, cfg, sequences, settings, max_frames=None):
    """One-pass run of every sequence with the tracker fields `settings`; per sequence gt, boxes, scores, states."""
    tcfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, **settings))
    out = {}
    for seq in sequences:
        res = run_sequence(make_tracker(net, tcfg, net.device), seq, max_frames)
        n = len(res["boxes"])
        res.update(gt=np.asarray(seq.boxes, dtype=np.float64)[:n], bound=frame_bound(seq))
        out[seq.name] = res
        updated = res["states"][res["init_frame"] + 1:]
        print(f"  {seq.name}: {int(np.sum(updated == LOST))} of {len(updated)} frames lost", flush=True)
    return out


def auc(runs):
    return summarize({name: sequence_scores(r["gt"], r["boxes"], r["times"], r["bound"])
                      for name, r in runs.items()})["success_auc"]


def tracked_frames(runs):
    """IoU, score, state and whether the target is visible, for every frame after each initialisation frame."""
    ious, scores, states, visible = [], [], [], []
    for r in runs.values():
        k = r["init_frame"] + 1
        gt, pred = r["gt"][k:], r["boxes"][k:]
        ok = B.is_valid(gt)
        iou = np.zeros(len(gt))
        iou[ok] = B.iou(gt[ok], pred[ok])
        ious.append(iou), scores.append(r["scores"][k:]), states.append(r["states"][k:]), visible.append(ok)
    return tuple(np.concatenate(v) for v in (ious, scores, states, visible))


def score_distribution(runs):
    iou, score, _, visible = tracked_frames(runs)
    fail, good = score[visible & (iou < 0.1)], score[visible & (iou > 0.5)]

    def stats(s):
        if not len(s):
            return {"frames": 0}
        q = np.quantile(s, [0.1, 0.25, 0.5, 0.75, 0.9])
        return {"frames": int(len(s)), **{f"q{int(p * 100)}": float(v) for p, v in zip((0.1, 0.25, 0.5, 0.75, 0.9), q)}}

    return {"iou_below_0.1": stats(fail), "iou_above_0.5": stats(good)}


def absent_report(runs):
    """Per sequence and pooled: share of frames said lost while the target is gone and while it is visible."""
    rows = {}
    for name, r in {**runs, "all": None}.items():
        _, _, states, visible = tracked_frames(runs if r is None else {name: r})
        lost = states == LOST
        rows[name] = {"absent_frames": int((~visible).sum()), "visible_frames": int(visible.sum()),
                      "lost_while_absent": float(lost[~visible].mean()) if (~visible).any() else None,
                      "lost_while_visible": float(lost[visible].mean()) if visible.any() else None}
    return rows


def default_grid(dist):
    """Candidates from the val scores of failed (IoU < 0.1) and good (IoU > 0.5) frames: lost below a low quantile of
    the failures' scores (a tracker on a distractor often scores as high as on the target), uncertain below what 90 %
    of good frames beat, recovered above a quantile of the good frames' scores."""
    fail, good = dist["iou_below_0.1"], dist["iou_above_0.5"]
    grid = []
    for lost_below, recover_above in itertools.product((fail["q10"], fail["q25"], fail["q50"]),
                                                       (good["q25"], good["q50"])):
        if recover_above <= lost_below:
            continue
        grid.append({"lost_below": round(lost_below, 3), "uncertain_below": round(max(lost_below, good["q10"]), 3),
                     "recover_above": round(recover_above, 3)})
    return grid


def parse_settings(pairs):
    out = {}
    for p in pairs:
        name, _, value = p.partition("=")
        if name not in STATE_FIELDS or not value:
            raise SystemExit(f"--set takes NAME=VALUE with NAME one of {', '.join(STATE_FIELDS)}; got {p!r}")
        out[name] = int(value) if name == "lost_patience" else float(value)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="zoo name or checkpoint path")
    p.add_argument("--root", default=DEFAULT_ROOT, required=DEFAULT_ROOT is None,
                   help="the sot folder with INDEX.tsv (default: the shared data's)")
    p.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="threshold fields (else the model's)")
    p.add_argument("--tune", action="store_true", help="choose thresholds on val from a small grid (one val pass each)")
    p.add_argument("--max-frames", type=int, help="only the first frames of each sequence (quick checks)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write everything measured here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    net, cfg, _ = load_model(args.model, "cpu", "torch", "fp32")
    val = open_dataset(args.root, split="val")
    absent = open_dataset(args.root, names=ABSENT_SEQUENCES)
    settings = {name: getattr(cfg.tracker, name) for name in STATE_FIELDS}
    settings.update(parse_settings(args.set))
    report = {"model": args.model, "max_frames": args.max_frames}

    print("val, without recovery", flush=True)
    plain = run_split(net, cfg, val, {**settings, "recovery": False}, args.max_frames)
    report["auc_without_recovery"] = auc(plain)
    report["val_scores"] = score_distribution(plain)
    print(json.dumps(report["val_scores"], indent=1), flush=True)

    if args.tune:
        grid = default_grid(report["val_scores"])
        if not grid:
            raise SystemExit("the val scores of good frames are not above those of failed frames: no thresholds "
                             "to tune (is the model trained?)")

        def progress(i, row, seconds):
            print(f"val, with recovery, {grid[i]}: AUC {row['auc']:.4f} ({seconds:.0f} s)", flush=True)

        rows = run_combinations(net, cfg, net.device, val, [{**settings, **c, "recovery": True} for c in grid],
                                args.max_frames, progress)
        report["tuning"] = [{**{k: row[k] for k in grid[0]}, "auc_with_recovery": row["auc"]} for row in rows]
        best = report["tuning"][0]
        settings.update({k: v for k, v in best.items() if k in STATE_FIELDS})
        report["auc_with_recovery"] = best["auc_with_recovery"]
    else:
        print(f"val, with recovery, {settings}", flush=True)
        report["auc_with_recovery"] = auc(run_split(net, cfg, val, {**settings, "recovery": True}, args.max_frames))
    report["settings"] = settings

    for recovery in (False, True):
        print(f"target-leaves-view sequences, recovery {recovery}", flush=True)
        runs = run_split(net, cfg, absent, {**settings, "recovery": recovery}, args.max_frames)
        report[f"absent_{'with' if recovery else 'without'}_recovery"] = absent_report(runs)

    print(f"\nthresholds {settings}")
    print(f"val success AUC: without recovery {report['auc_without_recovery']:.4f}, "
          f"with recovery {report['auc_with_recovery']:.4f}")
    d = report["val_scores"]
    print(f"val median score: IoU < 0.1 {d['iou_below_0.1'].get('q50', float('nan')):.3f} "
          f"({d['iou_below_0.1']['frames']} frames), IoU > 0.5 {d['iou_above_0.5'].get('q50', float('nan')):.3f} "
          f"({d['iou_above_0.5']['frames']} frames)")
    for key in ("absent_without_recovery", "absent_with_recovery"):
        a = report[key]["all"]
        print(f"{key}: lost while absent {a['lost_while_absent']}, lost while visible {a['lost_while_visible']} "
              f"({a['absent_frames']} absent / {a['visible_frames']} visible frames)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
