"""siamtrack track SOURCE --box x,y,w,h [--box ...] [--model NAME|PATH] [--output out.mp4] [--boxes out.txt] ..."""
from __future__ import annotations

import os
import re
import sys

import cv2
import numpy as np

from .. import boxes as B
from ..api import load_tracker
from ..data.sources import open_source
from ..errors import BoxError, SiamtrackError
from ..stream import BAD_FRAME_POLICIES, track
from ..trackers.opencv import is_opencv_name
from ..writers import BoxWriter, VideoWriter, check_output, record
from ..zoo import preferred_model
from .options import add_backend_options, add_opencv_files, opencv_files

HELP = "track one or more objects in a video file, a camera, an image folder or an OTB sequence folder"


def add_arguments(p):
    p.add_argument("source", help="video file, camera index (0), folder of images, or OTB sequence folder")
    p.add_argument("--box", action="append", default=[], metavar="x,y,w,h",
                   help="initial box on the first frame, 0-based pixels; repeat for several targets")
    p.add_argument("--select", action="store_true", help="drag the initial box on the first frame (needs a display)")
    p.add_argument("--model", default=None, help="model name (see `siamtrack models`), checkpoint path or OpenCV "
                   f"baseline (opencv-mil, opencv-nano, ...; default: the default shipped model, {preferred_model()})")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_backend_options(p)
    p.add_argument("--output", help="write an annotated mp4 here")
    p.add_argument("--boxes", help="write one line per frame here: x,y,w,h,score per target")
    p.add_argument("--states", action="store_true", help="add each target's state (tracking/uncertain/lost) "
                   "to the box file as a sixth field")
    p.add_argument("--show", action="store_true", help="show a live window (q or Esc quits; needs a display)")
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    p.add_argument("--on-bad-frame", choices=BAD_FRAME_POLICIES, default="skip",
                   help="a frame that cannot be decoded: skip it with a warning (default) or stop the run")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    add_opencv_files(p)


def check_display():
    """--show and --select need a screen and an OpenCV built with a GUI backend."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise SiamtrackError("--show and --select need a display, and there is none (DISPLAY is not set)")
    gui = re.search(r"GUI:\s*(\S+)", cv2.getBuildInformation())
    if gui and gui.group(1).upper() == "NONE":
        raise SiamtrackError("--show and --select need OpenCV with GUI support: "
                             "pip uninstall opencv-python-headless && pip install opencv-python")


def parse_boxes(texts):
    out = []
    for t in texts:
        try:
            out.append(B.parse_box(t))
        except ValueError as e:
            raise BoxError(str(e)) from None
    return out


def select_box(frame):
    box = cv2.selectROI("siamtrack: drag the target, then Enter", frame, showCrosshair=True)
    cv2.destroyAllWindows()
    if box[2] <= 0 or box[3] <= 0:
        raise BoxError("no box selected")
    return np.array(box, dtype=np.float64)


def run(args):
    if args.show or args.select:
        check_display()
    init_boxes = parse_boxes(args.box)
    for path in (args.output, args.boxes):
        if path:
            check_output(path, args.overwrite)
    source = open_source(args.source)
    if not init_boxes and not args.select:
        if source.init_box is None:
            source.close()
            raise BoxError("give the initial box with --box x,y,w,h (or --select)")
        init_boxes = [source.init_box]
    baseline = opencv_files(args) if is_opencv_name(args.model) else {}
    tracker = load_tracker(args.model, device=args.device, backend=args.backend, precision=args.precision,
                           **baseline)
    box_out = BoxWriter(args.boxes, args.overwrite, states=args.states) if args.boxes else None
    video_out = VideoWriter(args.output, source.fps, args.overwrite) if args.output else None
    total = len(source) or None
    if args.max_frames:
        total = min(total or args.max_frames, args.max_frames)
    steps = track(tracker, source, init_boxes, on_bad_frame=args.on_bad_frame, max_frames=args.max_frames,
                  select=select_box if args.select else None)
    stats = record(steps, max(1, len(init_boxes)), box_out=box_out, video_out=video_out, show=args.show, total=total)
    print(f"tracked {stats.frames} frames of {source.description}"
          + (f" ({stats.skipped} skipped)" if stats.skipped else "") + f" at {stats.fps:.1f} fps (update only)")
    for path in (args.output, args.boxes):
        if path:
            print(f"wrote {path}")
    return 0
