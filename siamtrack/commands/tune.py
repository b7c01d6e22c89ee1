"""`siamtrack tune`: grid search of a model's tracking constants on a validation split, one-pass.

Every combination of the grid runs the same model over the same sequences (the network is built once; only the
tracker's post-processing constants change), and the table is sorted by success AUC. Tuning is for validation data:
a split named like a test split is refused, so test numbers stay honest.
"""
from __future__ import annotations

import csv
import dataclasses
import itertools
import sys
import time
from pathlib import Path

from ..data.datasets import FORMATS
from ..errors import ConfigError, OutputError
from ..runtime import BACKENDS

HELP = "grid-search tracking constants (penalty_k, window_influence, size_lr, ...) on a validation split"

DEFAULT_GRID = ["penalty_k=0.04,0.1,0.2", "window_influence=0.4,0.45", "size_lr=0.3,0.5"]


def add_arguments(p):
    p.add_argument("--model", required=True, help="zoo name or checkpoint path")
    p.add_argument("--data", required=True, metavar="ROOT", help="dataset folder (OTB, GOT-10k, LaSOT or UAV123)")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    p.add_argument("--split", default="val", help="split to tune on (default: val)")
    p.add_argument("--sequences", default=None, help="comma-separated sequence names (default: all of the split)")
    p.add_argument("--grid", nargs="+", default=DEFAULT_GRID, metavar="KEY=V1,V2",
                   help="tracker constants and their values (default: %(default)s)")
    p.add_argument("--max-frames", type=int, default=None, help="track only the first N frames of each sequence")
    p.add_argument("--out", default=None, metavar="FILE", help="write the table: .csv, or markdown for any other "
                                                               "suffix")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="inference backend (see `siamtrack speed`); the constants do not depend on it")
    p.add_argument("--threads", type=int, default=None, help="torch threads")


def parse_grid(items, tracker_cfg):
    """['key=v1,v2', ...] -> {key: [floats]} for numeric fields of the tracker config."""
    fields = {f.name: f for f in dataclasses.fields(tracker_cfg)}
    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise ConfigError(f"--grid wants KEY=V1,V2,..., got {item!r}")
        current = getattr(tracker_cfg, key, None)
        if key not in fields or isinstance(current, bool) or not isinstance(current, (int, float)):
            numeric = sorted(k for k in fields if isinstance(getattr(tracker_cfg, k), (int, float))
                             and not isinstance(getattr(tracker_cfg, k), bool))
            raise ConfigError(f"--grid: {key!r} is not a numeric tracker constant; known: {', '.join(numeric)}")
        try:
            grid[key] = [type(current)(float(v)) if isinstance(current, int) else float(v)
                         for v in values.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--grid: {item!r} has a value that is not a number") from None
    return grid


def combinations(grid):
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def run_grid(model, cfg, device, sequences, grid, max_frames=None, progress=None):
    """One row per combination: its constants, success AUC, precision@20, fps; sorted by AUC, best first."""
    from ..api import make_tracker
    from ..eval.runner import evaluate

    rows = []
    for i, combo in enumerate(combinations(grid)):
        run_cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, **combo))
        t0 = time.monotonic()
        res = evaluate(lambda: make_tracker(model, run_cfg, device), sequences, max_frames)
        rows.append({**combo, "auc": res["success_auc"], "precision_20": res["precision_20"], "fps": res["fps"]})
        if progress:
            progress(i, rows[-1], time.monotonic() - t0)
    return sorted(rows, key=lambda r: -r["auc"])


def format_markdown(rows):
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[k]) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v):
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def write_table(rows, path):
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows({k: _fmt(v) for k, v in r.items()} for r in rows)
        else:
            path.write_text(format_markdown(rows))
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}") from None


def run(args) -> int:
    import torch

    from ..data.datasets import open_dataset
    from ..loader import load_model

    if "test" in args.split.lower():
        raise ConfigError(f"refusing to tune on split {args.split!r}: tune on validation data, report on test data")
    if args.out and Path(args.out).exists() and not args.overwrite:
        raise OutputError(f"{args.out} exists (use --overwrite to replace it)")
    if args.max_frames is not None and args.max_frames < 2:
        raise ConfigError("--max-frames must be at least 2")
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.sequences.split(",") if n.strip()] if args.sequences else None
    sequences = open_dataset(args.data, args.format, args.split, names)
    model, cfg, _ = load_model(args.model, args.device, args.backend)
    grid = parse_grid(args.grid, cfg.tracker)
    device = model.device
    total = len(combinations(grid))

    def progress(i, row, seconds):
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in row.items())
        print(f"[{i + 1}/{total}] {shown} ({seconds:.0f} s)", file=sys.stderr, flush=True)

    rows = run_grid(model, cfg, device, sequences, grid, args.max_frames, progress)
    print(format_markdown(rows), end="")
    if args.out:
        write_table(rows, args.out)
    return 0
