"""siamtrack speed [--model NAME|PATH] [--backend B] [--precision P] [--threads N] [--targets K] [--frames N]
[--compare opencv-nano[,NAME...]] [--json FILE] [--frame-size WxH]

Parses the options, runs `siamtrack.eval.speed.measure` and prints its report; see that module for what is timed.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import zoo
from ..errors import OutputError
from ..shared import shared_path
from ..eval.speed import SpeedOptions, measure, parse_size
from .options import add_backend_options, add_opencv_files, opencv_files

# The documented JSON record; the run's context (frames, source, frame size) is printed, not stored. With --compare
# the record also has "compare" {NAME: {ms, fps, ratio, rounds: [{ours_ms, ms}]}}, "cpu" {model, flags} and
# "libraries" {name: version}.
JSON_KEYS = ("model", "backend", "precision", "threads", "targets", "fps", "ms", "gflops_per_frame", "achieved_gflops",
             "gemm_gflops")
COMPARE_KEYS = ("compare", "cpu", "libraries")

HELP = "measure tracking speed: per-stage milliseconds, fps, GFLOPs per frame, the GEMM limit, and peers side by side"


def add_arguments(p):
    p.add_argument("--model", default=None, help="model name, checkpoint path, or (onnxruntime) an export folder "
                   "(default: the default shipped model, as `siamtrack track` picks it)")
    p.add_argument("--random-init", action="store_true",
                   help="time the model of --model's config (a zoo name or a YAML) with random weights: speed does "
                        "not depend on the weights")
    add_backend_options(p)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's current setting)")
    p.add_argument("--targets", type=int, default=1, help="targets tracked at once (one batched forward pass)")
    p.add_argument("--frames", type=int, default=50, help="timed frames")
    p.add_argument("--warmup", type=int, default=5, help="untimed frames first")
    p.add_argument("--frame-size", default=None, metavar="WxH",
                   help="use generated WxH frames with a fixed-size target instead of a real sequence")
    p.add_argument("--sequence", default=None, help="name of the shared sequence to play (default: first val one)")
    p.add_argument("--compare", default=None, metavar="NAME[,NAME]",
                   help="also time these trackers (benchmark names: opencv-nano, opencv-mil, a zoo model, a "
                        "checkpoint) on the same frames with the same threads, and report our speed as a ratio")
    p.add_argument("--rounds", type=int, default=3,
                   help="time ours and each --compare tracker this many times, alternating; report the median round")
    add_opencv_files(p)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", default=None, help="write the results here as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")


def shared_sot_root():
    """The shared tracking sequences (data/sot), whose first val sequence is timed, or None."""
    sot = shared_path("data", "sot")
    return sot if sot is not None and (sot / "INDEX.tsv").is_file() else None


def options(args) -> SpeedOptions:
    compare = tuple(n.strip() for n in (args.compare or "").split(",") if n.strip())
    return SpeedOptions(model=args.model or zoo.default_model(), backend=args.backend, precision=args.precision,
                        random_init=args.random_init, threads=args.threads, targets=args.targets,
                        frames=args.frames, warmup=args.warmup,
                        frame_size=parse_size(args.frame_size) if args.frame_size else None,
                        sequence=args.sequence, device=args.device, compare=compare, rounds=args.rounds,
                        **opencv_files(args))


def report(r) -> str:
    ms = r["ms"]
    limit = r["gemm_gflops"].get(r["precision"], r["gemm_gflops"]["fp32"])
    floor_ms = 1000 * r["gflops_per_frame"] / limit
    lines = [f"{r['model']}  backend {r['backend']} {r['precision']}  threads {r['threads']}  targets {r['targets']}  "
             f"frames {r['frames']} of {r['source']} ({r['frame_size']}, cpu {r['cpu_capability']})",
             f"  per frame (median): crop {ms['crop']:.2f} ms  backbone {ms['backbone']:.2f} ms  "
             f"head {ms['head']:.2f} ms  post {ms['post']:.2f} ms  total {ms['total']:.2f} ms",
             f"  {r['fps']:.1f} fps ({r['fps'] * r['targets']:.1f} target-frames/s)",
             f"  {r['gflops_per_frame']:.2f} GFLOPs per frame, achieved {r['achieved_gflops']:.1f} GFLOP/s",
             "  GEMM " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in r["gemm_gflops"].items()),
             f"  floor {floor_ms:.1f} ms/frame at the {r['precision'] if r['precision'] in r['gemm_gflops'] else 'fp32'}"
             f" GEMM rate: {ms['total'] / floor_ms:.2f} x the limit"]
    for name, peer in r.get("compare", {}).items():
        lines.append(f"  vs {name}: {peer['ms']:.2f} ms ({peer['fps']:.1f} fps) on the same frames: "
                     f"ours is {peer['ratio']:.2f}x its speed (median of {len(peer['rounds'])} alternating rounds: "
                     + ", ".join(f"{r['ours_ms']:.2f}/{r['ms']:.2f}" for r in peer["rounds"]) + " ms)")
    if "cpu" in r:
        lines.append(f"  cpu: {r['cpu']['model']} ({' '.join(r['cpu']['flags']) or 'no AVX2'})")
        lines.append("  libraries: " + ", ".join(f"{k} {v}" for k, v in r["libraries"].items() if v))
    return "\n".join(lines)


def run(args) -> int:
    if args.json and Path(args.json).exists() and not args.overwrite:
        raise OutputError(f"{args.json} exists (use --overwrite to replace it)")
    result = measure(options(args), shared_sot_root())
    print(report(result))
    if args.json:
        keys = JSON_KEYS + tuple(k for k in COMPARE_KEYS if k in result)
        try:
            Path(args.json).write_text(json.dumps({k: result[k] for k in keys}, indent=1))
        except OSError as e:
            raise OutputError(f"cannot write {args.json}: {e.strerror}") from None
    return 0
