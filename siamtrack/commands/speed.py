"""siamtrack speed --model NAME|PATH [--backend torch|onnxruntime] [--precision fp32|bf16] [--threads N] [--targets K]
[--frames N] [--json FILE] [--frame-size WxH]

Times `update()` frame by frame after a warm-up, with the stages measured inside the same calls: the tracker's crop
step and the backend's track step are wrapped with timers, so crop + network + post-processing add up to the
measured update; the backbone is then timed alone on the same crops (head = network - backbone). Decoding is done
before timing. The model's GFLOPs per frame are counted with FlopCounterMode on the same batch of crops, and the
machine's GEMM rate is measured in the same run, so the report says how far the tracker is from the hardware limit.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..api import make_tracker
from ..errors import ConfigError, OutputError, SiamtrackError
from ..loader import load_model
from ..runtime import BACKENDS, PRECISIONS, native_bf16_supported
from ..shared import shared_path

# The documented JSON record; the run's context (frames, source, frame size) is printed, not stored.
JSON_KEYS = ("model", "backend", "precision", "threads", "targets", "fps", "ms", "gflops_per_frame", "achieved_gflops",
             "gemm_gflops")

HELP = "measure tracking speed: per-stage milliseconds, fps, GFLOPs per frame and the distance to the GEMM limit"


def add_arguments(p):
    p.add_argument("--model", required=True, help="model name, checkpoint path, or (onnxruntime) an export folder")
    p.add_argument("--random-init", action="store_true",
                   help="time the model of --model's config (a zoo name or a YAML) with random weights: speed does "
                        "not depend on the weights")
    p.add_argument("--backend", choices=BACKENDS, default="torch")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's current setting)")
    p.add_argument("--targets", type=int, default=1, help="targets tracked at once (one batched forward pass)")
    p.add_argument("--frames", type=int, default=50, help="timed frames")
    p.add_argument("--warmup", type=int, default=5, help="untimed frames first")
    p.add_argument("--frame-size", default=None, metavar="WxH",
                   help="use generated WxH frames with a fixed-size target instead of a real sequence")
    p.add_argument("--sequence", default=None, help="name of the shared sequence to play (default: first val one)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", default=None, help="write the results here as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")


# -- frames --------------------------------------------------------------------------------------------------------

def shared_sot_root():
    """../shared/data/sot beside the source checkout (or $SIAMTRACK_SHARED/data/sot), or None."""
    sot = shared_path("data", "sot")
    return sot if sot is not None and (sot / "INDEX.tsv").is_file() else None


def parse_size(text):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--frame-size must look like 1920x1080, got {text!r}") from None
    if w < 64 or h < 64:
        raise ConfigError(f"--frame-size {text}: frames must be at least 64x64")
    return w, h


def generated_frames(n, width, height, target=(48, 64), seed=0):
    """A textured background with a textured box drifting across it; the target size does not depend on the frame
    size, so runs at different frame sizes compare like for like."""
    rng = np.random.default_rng(seed)
    bg = cv2.resize(rng.integers(0, 256, (max(height // 16, 2), max(width // 16, 2), 3), dtype=np.uint8),
                    (width, height), interpolation=cv2.INTER_LINEAR)
    tw, th = target
    patch = rng.integers(0, 256, (th, tw, 3), dtype=np.uint8)
    frames, boxes = [], []
    for i in range(n):
        x = int((width - tw) / 2 + (width / 6) * np.sin(i / 15))
        y = int((height - th) / 2 + (height / 6) * np.cos(i / 20))
        f = bg.copy()
        f[y:y + th, x:x + tw] = patch
        frames.append(f)
        boxes.append((x, y, tw, th))
    return frames, np.array(boxes, dtype=np.float64), f"generated {width}x{height}"


def real_frames(n, sot, name=None):
    from ..data.datasets import open_dataset
    seqs = open_dataset(sot, split=None if name else "val", names=[name] if name else None)
    if not seqs:
        raise ConfigError(f"no sequence {name!r} in {sot}")
    seq = seqs[0]
    first = int(np.argmax(seq.valid))
    idx = [first + i % (len(seq) - first) for i in range(n)]  # loop short sequences
    return [seq.frame(i) for i in idx], seq.boxes[idx], f"{seq.name} ({seq.meta.get('dataset', 'otb')})"


def initial_boxes(box, k, width, height):
    """K boxes: the given one and copies shifted around it, kept inside the frame (speed does not depend on which)."""
    out = []
    for i in range(k):
        dx, dy = 9 * (i % 4) - 13, 9 * (i // 4 % 4) - 13
        x = float(np.clip(box[0] + (dx if i else 0), 0, width - box[2]))
        y = float(np.clip(box[1] + (dy if i else 0), 0, height - box[3]))
        out.append((x, y, box[2], box[3]))
    return out


# -- measurement ---------------------------------------------------------------------------------------------------

class GemmProbe:
    """One n x n x n matrix product per call, as GFLOP/s: the dense-math limit of this machine at this thread count.
    The speed command samples it between frames, so that the limit and the tracker see the same machine load (the
    CPUs may be shared), and reports the median."""

    def __init__(self, dtype, n=1024):
        self.a = torch.randn(n, n).to(dtype)
        self.b = torch.randn(n, n).to(dtype)
        self.flops = 2 * n ** 3
        torch.mm(self.a, self.b)
        self.samples = []

    def sample(self):
        t0 = time.perf_counter()
        torch.mm(self.a, self.b)
        self.samples.append(self.flops / (time.perf_counter() - t0) / 1e9)

    def median(self):
        return float(np.median(self.samples))


def count_gflops(model, z, x):
    """FLOPs (2 x multiply-adds, as FlopCounterMode counts them) of one frame's track step on crops `x`."""
    with torch.inference_mode():
        kernels = model.template(z)
        with FlopCounterMode(display=False) as counter:
            model.track(x, kernels)
    return counter.get_total_flops() / 1e9


class _Timed:
    """Wraps a callable; records the wall time of each call and keeps its first argument (the crops)."""

    def __init__(self, fn):
        self.fn, self.seconds, self.last_arg = fn, 0.0, None

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = self.fn(*args, **kwargs)
        self.seconds += time.perf_counter() - t0
        self.last_arg = args[0] if args else None
        return out


class _TimedBackend:
    """The backend as the tracker sees it, with `track` timed."""

    def __init__(self, backend):
        self.track = _Timed(backend.track)
        self.template = backend.template
        self.embed = backend.embed
        self.stride = backend.stride
        self.device = backend.device


def _load(args, device):
    model, cfg, _ = load_model(args.model, device, args.backend, args.precision, random_init=args.random_init)
    return model, cfg


def measure(args):
    from ..device import pick_device
    from ..models import build_model
    if args.frames < 1 or args.warmup < 0 or args.targets < 1:
        raise ConfigError("--frames and --targets must be at least 1, --warmup at least 0")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    device = pick_device(args.device)
    backend, cfg = _load(args, device)
    # The timed step is K targets being tracked: the whole-frame search a lost target starts would add a varying
    # number of crops per frame (and the extra targets of --targets, placed beside the real one, often sit on
    # background and get lost), so recovery is off here; `siamtrack benchmark` measures speed with it.
    cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, recovery=False))
    n = args.warmup + args.frames + 1
    sot = shared_sot_root()
    if args.frame_size or sot is None:
        w, h = parse_size(args.frame_size) if args.frame_size else (640, 360)
        frames, gt, source = generated_frames(n, w, h)
    else:
        frames, gt, source = real_frames(n, sot, args.sequence)
    height, width = frames[0].shape[:2]

    timed = _TimedBackend(backend)
    tracker = make_tracker(timed, cfg, device)
    tracker._crop = crop = _Timed(tracker._crop)
    tracker.init_many(frames[0], initial_boxes(gt[0], args.targets, width, height))
    probes = {"fp32": GemmProbe(torch.float32)}
    if native_bf16_supported("cpu"):
        probes["bf16"] = GemmProbe(torch.bfloat16)
    rows = []
    for i, frame in enumerate(frames[1:]):
        crop.seconds = timed.track.seconds = 0.0
        t0 = time.perf_counter()
        tracker.update_many(frame)
        total = time.perf_counter() - t0
        x = _last_crops(timed)
        t1 = time.perf_counter()
        backend.embed(x)
        backbone = time.perf_counter() - t1
        if i >= args.warmup:
            for probe in probes.values():
                probe.sample()
            net = timed.track.seconds
            rows.append((crop.seconds, min(backbone, net), max(net - backbone, 0.0),
                         max(total - crop.seconds - net, 0.0), total))
    ms = {k: 1000 * float(np.median([r[j] for r in rows]))
          for j, k in enumerate(("crop", "backbone", "head", "post", "total"))}

    # FLOPs depend on the architecture only: count them on a fresh fp32 copy whatever the backend runs.
    z = torch.zeros(args.targets, 3, cfg.tracker.exemplar_size, cfg.tracker.exemplar_size)
    gflops = count_gflops(build_model(cfg.model).eval(), z, x.float().cpu().contiguous())
    gemm = {k: p.median() for k, p in probes.items()}
    fps = 1000.0 / ms["total"]
    return {"model": args.model, "backend": backend.name, "precision": backend.precision, "threads": threads,
            "targets": args.targets, "fps": fps, "ms": ms, "gflops_per_frame": gflops,
            "achieved_gflops": gflops * fps, "gemm_gflops": gemm,
            "frames": args.frames, "frame_size": f"{width}x{height}", "source": source,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _last_crops(timed):
    x = timed.track.last_arg
    if x is None:
        raise SiamtrackError("the tracker did not call its model's track(); cannot time it")
    return x


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
    return "\n".join(lines)


def run(args) -> int:
    if args.json and Path(args.json).exists() and not args.overwrite:
        raise OutputError(f"{args.json} exists (use --overwrite to replace it)")
    result = measure(args)
    print(report(result))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps({k: result[k] for k in JSON_KEYS}, indent=1))
        except OSError as e:
            raise OutputError(f"cannot write {args.json}: {e.strerror}") from None
    return 0
