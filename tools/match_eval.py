"""One-shot matching on a dataset split: top-1 success, mean IoU and present/absent ROC AUC per model.

    python tools/match_eval.py --root ../sot-all --split val --json match_val.json

Protocol: siamtrack/eval/matching.py. Each model in --models is a zoo name or checkpoint; `opencv` is the
cv2.matchTemplate baseline. Measurements use --threads threads (torch and onnxruntime).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from siamtrack.data.datasets import open_dataset
from siamtrack.eval.matching import FRACTIONS, evaluate, fit_calibration, plan, summarise
from siamtrack.match import IDENTITY, MatchOptions, make_matcher
from siamtrack.zoo import list_models


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--models", nargs="+", default=None,
                   help="zoo names, checkpoints or `opencv` (default: every shipped model and opencv)")
    p.add_argument("--max-seqs", type=int, default=None, help="only the first N sequences (quick runs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--scales", default=None, help="comma-separated scales (default: siamtrack.match's)")
    p.add_argument("--tile-step", type=float, default=None)
    p.add_argument("--fit-calibration", action="store_true",
                   help="score with raw (uncalibrated) scores and print each model's fitted Calibration")
    p.add_argument("--json", help="write the summary and every query's record here")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    if args.json and Path(args.json).exists() and not args.overwrite:
        sys.exit(f"{args.json} exists (use --overwrite)")
    torch.set_num_threads(args.threads)
    models = args.models or [m["name"] for m in list_models() if m["present"]] + ["opencv"]
    # --fit-calibration fits on raw scores; otherwise each model's shipped calibration (siamtrack.match.CALIBRATIONS)
    raw = IDENTITY if args.fit_calibration else None
    opts = MatchOptions(top_k=5, tile_step=args.tile_step, calibration=raw)
    if args.scales:
        opts = replace(opts, scales=tuple(float(s) for s in args.scales.split(",")))
    seqs = open_dataset(args.root, split=args.split)[:args.max_seqs]
    n_queries = sum(len(q) for _, _, q in plan(seqs))
    options = {k: str(v) if k == "calibration" else v for k, v in vars(opts).items()}
    out = {"root": args.root, "split": args.split, "sequences": len(seqs), "fractions": list(FRACTIONS),
           "threads": args.threads, "options": options, "results": {}}
    print(f"{'model':<16} {'top1':>6} {'mIoU':>6} {'AUC':>6} {'s/img':>6}")
    for name in models:
        matcher = make_matcher("opencv" if name == "opencv" else "siamese", None if name == "opencv" else name,
                               device=args.device, options=opts)
        start = time.perf_counter()
        with tqdm(total=n_queries, desc=name, unit="img", file=sys.stderr, leave=False) as bar:
            records = evaluate(matcher, seqs, progress=bar)
        secs = (time.perf_counter() - start) / max(1, len(records))
        summary = {**summarise(records), "seconds_per_image": secs}
        out["results"][name] = {"summary": summary, "records": records}
        print(f"{name:<16} {summary['top1_success']:6.3f} {summary['mean_iou']:6.3f} {summary['auc']:6.3f} "
              f"{secs:6.2f}", flush=True)
        if args.fit_calibration:
            slope, bias = fit_calibration(records)
            summary["calibration"] = {"slope": slope, "bias": bias}
            print(f"    {name!r}: Calibration(slope={slope:.4f}, bias={bias:.4f}),", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
