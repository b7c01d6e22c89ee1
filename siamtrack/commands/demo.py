"""siamtrack demo: track the sample clip that ships with the package and report fps and mean IoU."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import boxes as B
from ..api import load_tracker
from ..data.sources import open_source
from ..stream import track
from ..writers import VideoWriter, record
from ..zoo import default_model, preferred_model

HELP = "track the bundled sample clip with the default shipped model; writes an annotated mp4"

DEMO_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo"


def add_arguments(p):
    p.add_argument("--model", default=None,
                   help=f"model name or checkpoint path (default: the default shipped model, {preferred_model()})")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--output", default=None, help="annotated mp4 to write (default: siamtrack-demo.mp4 here, "
                   "numbered so nothing is overwritten)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def free_name(path: Path) -> Path:
    n = 2
    out = path
    while out.exists():
        out = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return out


def run(args):
    gt = np.loadtxt(DEMO_DIR / "groundtruth.txt", delimiter=",", dtype=np.float64)
    model = args.model or default_model()
    output = Path(args.output) if args.output else free_name(Path("siamtrack-demo.mp4"))
    source = open_source(DEMO_DIR / "demo.mp4")
    tracker = load_tracker(model, device=args.device)
    video = VideoWriter(output, source.fps, overwrite=args.overwrite)
    stats = record(track(tracker, source, [gt[0]]), video_out=video, total=len(source) or None, keep_results=True)
    pred = np.stack([r[0].box for r in stats.results])
    miou = float(np.mean(B.iou(pred[1:], gt[1:len(pred)])))
    print(f"model: {model}")
    print(f"wrote {output}")
    print(f"frames: {stats.frames}, fps: {stats.fps:.1f} (update only, {tracker.device.type})")
    print(f"mean IoU against the sample's ground truth: {miou:.3f}")
    return 0
