"""Benchmark outputs: the JSON contract other tools read, a markdown table, and OTB-style plots."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import OutputError
from .metrics import THRESHOLDS_CE, THRESHOLDS_IOU

# The JSON keys are a contract (issue 5): nothing more, nothing less.
TRACKER_KEYS = ("success_auc", "precision_20", "norm_precision", "ao", "sr50", "sr75", "fps", "frames",
                "size_ratio", "size_ratio_max", "per_sequence")
DATASET_KEYS = ("root", "format", "split", "sequences", "frames", "runs")
MACHINE_KEYS = ("device", "threads", "cpu", "libraries")


def build_json(dataset: dict, machine: dict, trackers: dict) -> dict:
    return {"dataset": {k: dataset[k] for k in DATASET_KEYS},
            "machine": {k: machine[k] for k in MACHINE_KEYS},
            "trackers": {name: {k: s[k] for k in TRACKER_KEYS} for name, s in trackers.items()}}


def write_json(path, payload):
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def ranked(trackers: dict) -> list:
    return sorted(trackers, key=lambda n: -trackers[n]["success_auc"])


def _ratio(v):
    return "-" if v is None else f"{v:.2f}"


def markdown_table(trackers: dict) -> str:
    lines = ["| Tracker | AUC | P@20 | norm. P | AO | SR50 | SR75 | size ratio (worst) | fps | decode ms/frame | frames |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in ranked(trackers):
        s = trackers[n]
        decode = s.get("decode_ms")
        lines.append(f"| {n} | {s['success_auc']:.3f} | {s['precision_20']:.3f} | {s['norm_precision']:.3f} | "
                     f"{s['ao']:.3f} | {s['sr50']:.3f} | {s['sr75']:.3f} | "
                     f"{_ratio(s.get('size_ratio'))} ({_ratio(s.get('size_ratio_max'))}) | "
                     f"{s['fps']:.1f} | "
                     f"{'-' if decode is None else f'{decode:.2f}'} | {s['frames']} |")
    return "\n".join(lines)


def write_report(out_dir, dataset: dict, machine: dict, trackers: dict, command: str = ""):
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create report folder {out}: {e.strerror or e}") from None
    text = [f"# One-pass evaluation on {dataset['root']}", "",
            f"Format {dataset['format']}, split {dataset['split'] or '(all)'}: {dataset['sequences']} sequences, "
            f"{dataset['frames']} frames. Machine: {machine['cpu']}, device {machine['device']}, "
            f"{machine['threads']} threads per worker; "
            + ", ".join(f"{k} {v}" for k, v in machine["libraries"].items() if v) + ".", ""]
    if command:
        text += ["```", command, "```", ""]
    text += [markdown_table(trackers), "",
             "AUC: mean success over IoU thresholds 0, 0.05, ..., 1 (IoU > t), averaged over sequences; P@20: share "
             "of frames with centre error <= 20 px; AO / SR: GOT-10k average overlap and success rates, frames "
             "pooled; fps: frames / total update() time, decoding excluded (shown apart).", "",
             "![success](success.png) ![precision](precision.png)", "", "![per sequence](per_sequence.png)", ""]
    (out / "report.md").write_text("\n".join(text))
    _plots(out, trackers)


def _plots(out, trackers):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = ranked(trackers)
    styles = ["-", "--", "-.", ":"]
    for fname, key, xs, score, title, xlabel in (
            ("success.png", "success_curve", THRESHOLDS_IOU, "success_auc", "Success plots of OPE",
             "Overlap threshold"),
            ("precision.png", "precision_curve", THRESHOLDS_CE, "precision_20", "Precision plots of OPE",
             "Location error threshold (px)")):
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        for i, n in enumerate(sorted(order, key=lambda n: -trackers[n][score])):
            ax.plot(xs, trackers[n][key], styles[(i // 10) % len(styles)], linewidth=1.8,
                    label=f"{n} [{trackers[n][score]:.3f}]")
        ax.set(xlabel=xlabel, ylabel="Success rate" if key == "success_curve" else "Precision",
               xlim=(xs[0], xs[-1]), ylim=(0, 1), title=title)
        ax.grid(True, alpha=0.4)
        ax.legend(loc="lower left" if key == "success_curve" else "lower right", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)

    seqs = sorted({s for n in order for s in trackers[n]["per_sequence"]})
    width = 0.8 / max(1, len(order))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(seqs) * max(1, len(order)) ** 0.5 + 2), 4.5))
    x = np.arange(len(seqs))
    for i, n in enumerate(order):
        per = trackers[n]["per_sequence"]
        ax.bar(x + (i - (len(order) - 1) / 2) * width, [per.get(s, {}).get("success_auc", 0.0) for s in seqs],
               width, label=f"{n} [{trackers[n]['success_auc']:.3f}]")
    ax.set_xticks(x)
    ax.set_xticklabels(seqs, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="Success AUC", ylim=(0, 1), title="Per-sequence success AUC")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "per_sequence.png", dpi=120)
    plt.close(fig)
