"""The tracking loop over a frame source: init on the first frame, update on the rest, feed the writers.

Shared by `siamtrack track` and `siamtrack demo`. Writers are closed (finalised and renamed) however the loop ends:
normally, on an error, on Ctrl-C, or when a camera stops delivering.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from .crops import as_bgr_uint8
from .errors import SourceError
from .trackers.base import TrackResult
from .writers import draw


@dataclass
class StreamStats:
    frames: int = 0            # frames with a result, the initial one included
    updates: int = 0
    update_time: float = 0.0   # seconds spent in update(), decoding excluded
    skipped: int = 0
    results: list = field(default_factory=list)   # per frame: list of TrackResult per target, or None

    @property
    def fps(self):
        return self.updates / self.update_time if self.update_time > 0 else float("nan")


def track_stream(tracker, source, init_boxes, box_out=None, video_out=None, on_bad_frame="skip", max_frames=None,
                 show=False, select=None, keep_results=False, progress=True):
    """`select(frame) -> box` is called on the first frame when given (interactive selection)."""
    k = max(1, len(init_boxes))
    stats = StreamStats()
    total = len(source) or None
    if max_frames:
        total = min(total or max_frames, max_frames)
    bar = tqdm(total=total, unit="frame", disable=None if progress else True, leave=False)
    started = False
    try:
        for sf in source:
            if max_frames and sf.index >= max_frames:
                break
            bar.update(1)
            if sf.image is None:
                if not started:
                    raise SourceError(f"the first frame cannot be decoded: {sf.error}")
                if on_bad_frame == "stop":
                    raise SourceError(f"stopping at a frame that cannot be decoded: {sf.error}")
                print(f"siamtrack: warning: skipping frame {sf.index} ({sf.error})", file=sys.stderr)
                stats.skipped += 1
                results = None
            else:
                frame = as_bgr_uint8(sf.image)
                if sf.index < source.init_index:
                    results = None
                elif not started:
                    if select is not None:
                        init_boxes = [select(frame)]
                    tracker.init_many(frame, init_boxes)
                    results = [TrackResult(box=np.asarray(b, dtype=np.float64), score=1.0) for b in init_boxes]
                    started = True
                    stats.frames += 1
                else:
                    t0 = time.perf_counter()
                    results = tracker.update_many(frame)
                    stats.update_time += time.perf_counter() - t0
                    stats.updates += 1
                    stats.frames += 1
                if video_out:
                    video_out.write(frame, results, sf.index)
                if show:
                    cv2.imshow("siamtrack", draw(frame, results, sf.index))
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
            if box_out:
                box_out.write(results, k)
            if keep_results:
                stats.results.append(results)
    finally:
        bar.close()
        for w in (box_out, video_out):
            if w:
                w.close()
        source.close()
        if show:
            cv2.destroyAllWindows()
    if not started:
        raise SourceError(f"{source.description} has no frame to start on")
    return stats
