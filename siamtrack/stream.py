"""The one frame loop: a frame source and a tracker in, one `Step` per frame out.

The tracker starts on the source's `init_index` frame (init_many with the initial boxes) and updates on every frame
after it. Every consumer reads the same steps: the writers of `siamtrack track` and `demo`, the one-pass benchmark
runner and the long-run check. The source is closed however the loop ends (normally, on an error, on Ctrl-C, or when
the consumer stops early and closes the generator).
"""
from __future__ import annotations

import sys
import time
from typing import NamedTuple, Optional

import numpy as np

from .crops import as_bgr_uint8
from .errors import BoxError, SourceError
from .trackers.base import TrackResult

BAD_FRAME_POLICIES = ("skip", "stop")


class Step(NamedTuple):
    index: int                       # frame index in the source
    frame: Optional[np.ndarray]      # HxWx3 uint8 BGR; None for a frame that could not be decoded (skipped)
    results: Optional[list]          # one TrackResult per target; None before the initial frame and when skipped
    seconds: float                   # in the tracker: init on the initial frame, update after it; 0 otherwise
    decode: float                    # waiting for the source to deliver the frame


class _OneTarget:
    """A tracker with only the one-target contract (`init(frame, box)`, `update(frame) -> TrackResult`, as got10k's
    trackers have) seen through the many-target one."""

    def __init__(self, tracker):
        self.tracker = tracker

    def init_many(self, frame, boxes):
        if len(boxes) != 1:
            raise BoxError(f"this tracker follows one target, got {len(boxes)} boxes")
        self.tracker.init(frame, boxes[0])
        return [TrackResult(box=np.asarray(boxes[0], dtype=np.float64), score=1.0)]

    def update_many(self, frame):
        return [self.tracker.update(frame)]


def track(tracker, source, init_boxes, on_bad_frame="skip", max_frames=None, select=None):
    """Yield a Step for every frame of `source` (up to `max_frames`). `select(frame) -> box` is called on the initial
    frame when given (interactive selection) and replaces `init_boxes`. A frame that cannot be decoded is skipped
    with a warning, or ends the run with `on_bad_frame="stop"`; the initial one always ends it."""
    many = tracker if hasattr(tracker, "update_many") else _OneTarget(tracker)
    started = False
    frames = iter(source)
    try:
        while True:
            t0 = time.perf_counter()
            sf = next(frames, None)
            decode = time.perf_counter() - t0
            if sf is None or (max_frames and sf.index >= max_frames):
                break
            if sf.image is None:
                if not started:
                    raise SourceError(f"the first frame cannot be decoded: {sf.error}")
                if on_bad_frame == "stop":
                    raise SourceError(f"stopping at a frame that cannot be decoded: {sf.error}")
                print(f"siamtrack: warning: skipping frame {sf.index} ({sf.error})", file=sys.stderr)
                yield Step(sf.index, None, None, 0.0, decode)
                continue
            frame = as_bgr_uint8(sf.image)
            results, seconds = None, 0.0
            if sf.index >= source.init_index:
                if not started and select is not None:
                    init_boxes = [select(frame)]
                t0 = time.perf_counter()
                results = many.update_many(frame) if started else many.init_many(frame, init_boxes)
                seconds = time.perf_counter() - t0
                started = True
            yield Step(sf.index, frame, results, seconds, decode)
    finally:
        source.close()
    if not started:
        raise SourceError(f"{source.description} has no frame to start on")
