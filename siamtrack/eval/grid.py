"""Grid search of a model's tracking constants on validation sequences: one-pass, or averaged over SRE starts.

Every combination runs the same model over the same sequences (the network is built once; only the tracker's
post-processing constants change), and the rows are sorted by success AUC, best first.
"""
from __future__ import annotations

import csv
import dataclasses
import itertools
import time
from pathlib import Path

from ..api import make_tracker
from ..errors import ConfigError, OutputError
from .runner import evaluate


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


def run_grid(model, cfg, device, sequences, grid, max_frames=None, progress=None, runs=1):
    """One row per combination of `grid`: its constants, success AUC, precision@20, fps, SR75, median size ratio;
    sorted by AUC, best first. With runs > 1 each number is the mean over the one-pass run and the first runs - 1
    SRE starts (runner.evaluate): on a few dozen sequences a one-pass AUC moves by 0.02-0.04 when a near tie
    between the target and a look-alike flips, which a change of constants does as easily as a better setting."""
    return run_combinations(model, cfg, device, sequences, combinations(grid), max_frames, progress, runs)


def run_combinations(model, cfg, device, sequences, combos, max_frames=None, progress=None, runs=1):
    """`run_grid` over a given list of {constant: value} settings. `progress(i, row, seconds)` after each."""
    rows = []
    for i, combo in enumerate(combos):
        run_cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, **combo))
        t0 = time.monotonic()
        res = evaluate(lambda: make_tracker(model, run_cfg, device), sequences, max_frames, runs)
        # box quality (SR at IoU 0.75) and size drift beside the AUC: constants that win AUC by letting boxes swell
        # show here
        rows.append({**combo, "auc": res["success_auc"], "precision_20": res["precision_20"], "fps": res["fps"],
                     "sr75": res["sr75"], "size_ratio": res["size_ratio"]})
        if progress:
            progress(i, rows[-1], time.monotonic() - t0)
    return sorted(rows, key=lambda r: -r["auc"])


def format_markdown(rows):
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(format_value(r[k]) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def format_value(v):
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def write_table(rows, path):
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows({k: format_value(v) for k, v in r.items()} for r in rows)
        else:
            path.write_text(format_markdown(rows))
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}") from None
