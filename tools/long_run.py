"""Long-run check: track a generated stream for many frames; resident memory must stay flat and the speed steady.

    python tools/long_run.py --model siamrpn-lite --frames 10000
    python tools/long_run.py --config experiments/siamrpn_lite.yaml --frames 10000    # random weights

Frames come from siamtrack.data.synthetic.MovingSquare, rendered on demand, so the stream itself holds no memory.
The frames go through the package's frame loop (siamtrack.stream), as `siamtrack track` runs them. Resident memory
is read after the warm-up frames and at the end; fps is of update() alone, per block of frames.
tests/test_long_run.py runs the same `long_run` on a shorter stream.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter

import numpy as np
import torch

from siamtrack.data.sources import IndexedSource
from siamtrack.data.synthetic import MovingSquare
from siamtrack.stream import track


def rss_mb():
    """Resident set size of this process in MB (psutil when installed, else /proc); None where neither exists."""
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2 ** 20
    except ImportError:
        pass
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def random_init_tracker(config_path, seed=0, **tracker_settings):
    """A tracker over a random-init model of `config_path` (no weight download), through the torch backend;
    `tracker_settings` override fields of the config's TrackerConfig."""
    from siamtrack.api import make_tracker
    from siamtrack.loader import load_model
    net, cfg, _ = load_model(config_path, "cpu", "torch", "fp32", random_init=True, seed=seed)
    return make_tracker(net, dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, **tracker_settings)),
                        net.device)


def long_run(tracker, frames, warmup=200, block=1000, seed=0, size=40):
    """Track `frames` frames of a MovingSquare stream. Returns boxes (all frames), rss after warm-up and at the end,
    fps per block and the count of each state."""
    square = MovingSquare(seed=seed, size=size)
    source = IndexedSource(square.frame, frames, description="MovingSquare")
    # every per-frame output is preallocated, so what the run keeps cannot show up as growth
    boxes = np.zeros((frames, 4))
    busy = np.zeros(frames)
    states = Counter()
    rss_warm = None
    for step in track(tracker, source, [square.box(0)]):
        i, res = step.index, step.results[0]
        boxes[i] = res.box
        if i:
            busy[i] = step.seconds
            states[res.state] += 1
        if i == warmup:
            rss_warm = rss_mb()
    rss_end = rss_mb()
    fps = [float(len(b) / b.sum()) for b in (busy[s:s + block] for s in range(1, frames, block))]
    return {"boxes": boxes, "rss_warm_mb": rss_warm, "rss_end_mb": rss_end,
            "growth_mb": None if rss_warm is None or rss_end is None else rss_end - rss_warm,
            "fps_per_block": fps, "states": dict(states)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="zoo name or checkpoint path")
    src.add_argument("--config", help="experiment YAML: random-init weights")
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--block", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the summary here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.model:
        from siamtrack.api import load_tracker
        tracker = load_tracker(args.model, device="cpu")
    else:
        tracker = random_init_tracker(args.config)
    out = long_run(tracker, args.frames, args.warmup, args.block)
    out.pop("boxes")
    out.update(frames=args.frames, threads=args.threads, source=args.model or args.config)
    for i, f in enumerate(out["fps_per_block"]):
        print(f"block {i + 1:3d}: {f:7.1f} fps")
    fps = np.array(out["fps_per_block"])
    print(f"rss after warm-up {out['rss_warm_mb']:.1f} MB, at the end {out['rss_end_mb']:.1f} MB, "
          f"growth {out['growth_mb']:+.1f} MB (limit 50)")
    print(f"fps min {fps.min():.1f} / median {np.median(fps):.1f} / max {fps.max():.1f}; states {out['states']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0 if out["growth_mb"] is not None and out["growth_mb"] < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
