"""siamtrack benchmark: one-pass evaluation of trackers and baselines on a benchmark folder, with the got10k
toolkit's metrics, its result layout (reused on later runs), a JSON for machines and a report for people."""
from __future__ import annotations

import os
import shlex
import sys

from ..data.datasets import FORMATS
from ..errors import ConfigError, DatasetError
from ..trackers.opencv import NAMES as OPENCV_NAMES
from .options import add_backend_options, add_init_jitter, add_opencv_files, opencv_files, runs_of

HELP = "evaluate trackers one-pass on OTB / GOT-10k / LaSOT / UAV123 folders (toolkit metrics, JSON, report)"


def add_arguments(p):
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS))
    p.add_argument("--split", default=None, help="split name (the split column of INDEX.tsv, or the layout's own)")
    p.add_argument("--sequences", default=None, help="comma-separated sequence names (default: all)")
    p.add_argument("--trackers", default=None,
                   help=f"comma-separated zoo names, checkpoint paths or baselines ({', '.join(OPENCV_NAMES)}); "
                        "default: every shipped model present")
    p.add_argument("--workers", type=int, default=1, help="sequences tracked in parallel processes")
    p.add_argument("--json", default=None, metavar="FILE", help="write the scores as JSON")
    p.add_argument("--report", default=None, metavar="DIR", help="write report.md and plots")
    p.add_argument("--results", default="results", metavar="DIR",
                   help="per-frame results (got10k toolkit layout), reused unless --force (default: ./results)")
    p.add_argument("--force", action="store_true", help="track again even where results exist")
    p.add_argument("--shard", default=None, metavar="I/N", help="run only the I-th of N slices of the sequences")
    p.add_argument("--merge", default=None, metavar="DIR1,DIR2",
                   help="copy these shard result folders into --results before scoring")
    add_opencv_files(p)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] for our models")
    add_backend_options(p)
    p.add_argument("--max-frames", type=int, default=None, help="evaluate only the first N frames of each sequence")
    add_init_jitter(p, help="also track every sequence K more times (up to 12) from the first box shifted by 10 %% "
                            "or scaled by 0.8-1.2, as OTB's SRE does, and report the mean over the K + 1 runs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _split_list(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def parse_shard(text):
    try:
        i, n = (int(t) for t in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard wants I/N with whole numbers, got {text!r}") from None
    if not 1 <= i <= n:
        raise ConfigError(f"--shard {text}: I must be between 1 and N")
    return i, n


def run(args):
    from ..data.datasets import detect_format, open_dataset
    from ..device import pick_device
    from ..export import is_export_dir
    from ..runtime import resolve_backend
    from ..eval import results as R
    from ..eval.bench import TrackerSpec, run_tracker, score_runs, set_thread_budget
    from ..device import cpu_info, library_versions
    from ..eval.report import build_json, markdown_table, write_json, write_report
    from .. import zoo

    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if args.max_frames is not None and args.max_frames < 2:
        raise ConfigError("--max-frames must be at least 2")
    runs = runs_of(args)
    fmt = detect_format(args.root) if args.format == "auto" else args.format
    seqs = open_dataset(args.root, fmt, args.split, _split_list(args.sequences))
    if args.shard:
        i, n = parse_shard(args.shard)
        seqs = seqs[i - 1::n]
        if not seqs:
            raise DatasetError(f"shard {args.shard} holds no sequences ({n} shards for fewer sequences)")
    if args.merge:
        R.merge(_split_list(args.merge), args.results)

    names = _split_list(args.trackers)
    # merged folders named by no --trackers are results to score, not trackers to run (a checkpoint's folder is
    # named by its file stem, which names no file here)
    score_only = bool(args.merge) and not names
    if not names:
        names = R.trackers_in(args.results) if args.merge else [m["name"] for m in zoo.list_models() if m["present"]]
        if not names:
            raise ConfigError("no trackers to evaluate: pass --trackers (no shipped weights are present)")
    device = pick_device(args.device)

    def backend_of(name):
        # concrete names, so that the setup recorded beside the results says what ran; an export folder keeps
        # "auto" (the loader runs it at its own precision, and its files' digests are recorded)
        if is_export_dir(name):
            return {"backend": args.backend, "precision": args.precision}
        return dict(zip(("backend", "precision"), resolve_backend(args.backend, args.precision, device)))

    specs = [TrackerSpec(n, str(device), **backend_of(n), **opencv_files(args)) for n in names]
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two trackers would share one results folder: {', '.join(labels)}")

    threads = max(1, (os.cpu_count() or 1) // args.workers)
    set_thread_budget(threads)
    scores = {}
    for spec in specs:
        if not score_only:
            run_tracker(spec, seqs, args.results, args.workers, args.force, args.max_frames, progress=not args.quiet,
                        runs=runs)
        scores[spec.label] = score_runs(spec.label, seqs, args.results, args.max_frames, runs)

    n_frames = sum(len(s) if args.max_frames is None else min(len(s), args.max_frames) for s in seqs)
    dataset = {"root": str(args.root), "format": fmt, "split": args.split, "sequences": len(seqs),
               "frames": n_frames, "runs": runs}
    machine = {"device": str(device), "threads": threads, "cpu": cpu_info()["model"], "libraries": library_versions()}
    print(markdown_table(scores))
    if runs > 1:
        print(f"mean over {runs} runs (the plain one-pass run and {runs - 1} from a shifted or scaled first box); "
              "success AUC per run:")
        for label, sc in scores.items():
            print(f"  {label}: " + " ".join(f"{a:.3f}" for a in sc["run_auc"]))
    if args.json:
        write_json(args.json, build_json(dataset, machine, scores))
    if args.report:
        # The command line goes into the report only when this process was started as that command.
        argv = sys.argv[sys.argv.index("benchmark"):] if "benchmark" in sys.argv else []
        write_report(args.report, dataset, machine, scores,
                     command="siamtrack " + " ".join(shlex.quote(a) for a in argv) if argv else "")
    return 0
