"""`siamtrack tune`: grid search of a model's tracking constants on a validation split (siamtrack.eval.grid).

Tuning is for validation data: a split named like a test split is refused, so test numbers stay honest.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..data.datasets import FORMATS
from ..errors import ConfigError, OutputError
from ..eval.grid import combinations, format_markdown, format_value, parse_grid, run_grid, write_table
from .options import add_backend_options, add_init_jitter, runs_of

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
    add_init_jitter(p, help="score each setting over K + 1 runs: the one-pass run and the first K of OTB's SRE "
                            "starts (as benchmark --init-jitter); a one-pass AUC flips with near ties")
    p.add_argument("--out", default=None, metavar="FILE", help="write the table: .csv, or markdown for any other "
                                                               "suffix")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_backend_options(p)
    p.add_argument("--threads", type=int, default=None, help="torch threads")


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
    runs = runs_of(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.sequences.split(",") if n.strip()] if args.sequences else None
    sequences = open_dataset(args.data, args.format, args.split, names)
    model, cfg, _ = load_model(args.model, args.device, args.backend, args.precision)
    grid = parse_grid(args.grid, cfg.tracker)
    device = model.device
    total = len(combinations(grid))

    def progress(i, row, seconds):
        shown = ", ".join(f"{k}={format_value(v)}" for k, v in row.items())
        print(f"[{i + 1}/{total}] {shown} ({seconds:.0f} s)", file=sys.stderr, flush=True)

    rows = run_grid(model, cfg, device, sequences, grid, args.max_frames, progress, runs=runs)
    print(format_markdown(rows), end="")
    if args.out:
        write_table(rows, args.out)
    return 0
