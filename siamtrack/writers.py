"""Outputs of `siamtrack track` and `demo`: the box file, the annotated video and the live window, fed by the frame
loop's steps (`record`).

Nothing the user has is overwritten unless they ask (`overwrite=True`). Both writers work on a temporary name beside
the target and rename it when closed, and `close()` runs on success, error and Ctrl-C alike, so what was tracked until
then survives as a complete file. The box file is flushed line by line.
"""
from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .errors import OutputError

STATE_COLORS = {"tracking": (0, 220, 0), "uncertain": (0, 200, 255), "lost": (0, 0, 255)}  # BGR


def check_output(path, overwrite):
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists (use --overwrite to replace it)")
    if path.exists() and path.is_dir():
        raise OutputError(f"{path} is a folder, not a file")
    if not path.parent.exists():
        raise OutputError(f"folder {path.parent} does not exist")
    return path


def _temp_name(path):
    # Keep the extension last so that cv2.VideoWriter still picks the container from it.
    return path.with_name(f".{path.stem}.partial{path.suffix}")


class BoxWriter:
    """One line per frame: for each target `x,y,w,h,score` (0-based pixels), targets separated by commas; with
    `states=True` each target's group gets a sixth field, its state (tracking / uncertain / lost). Frames with no
    result (a skipped corrupt frame, frames before the initial one) are `nan,nan,nan,nan,0`."""

    def __init__(self, path, overwrite=False, states=False):
        self.path = check_output(path, overwrite)
        self.tmp = _temp_name(self.path)
        self.states = states
        self.lines = 0
        try:
            self.f = open(self.tmp, "w")
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror}") from None

    def write(self, results, num_targets=1):
        groups = []
        if results is None:
            results = [None] * num_targets
        for r in results:
            if r is None:
                g = "nan,nan,nan,nan,0"
                g += ",none" if self.states else ""
            else:
                x, y, w, h = (float(v) for v in r.box)
                g = f"{x:.2f},{y:.2f},{w:.2f},{h:.2f},{r.score:.4f}"
                g += f",{r.state}" if self.states else ""
            groups.append(g)
        self.f.write(",".join(groups) + "\n")
        self.f.flush()
        self.lines += 1

    def close(self):
        if self.f.closed:
            return
        self.f.close()
        if self.lines:
            os.replace(self.tmp, self.path)
        else:  # a run that failed before its first frame leaves nothing behind
            os.remove(self.tmp)


class VideoWriter:
    """Annotated mp4 (OpenCV's mp4v codec: the one this OpenCV build can write). Frames are drawn with each box, its
    score and state, and the frame number; frames of another size than the first are resized to fit."""

    def __init__(self, path, fps, overwrite=False):
        self.path = check_output(path, overwrite)
        self.tmp = _temp_name(self.path)
        self.fps = fps
        self.writer = None
        self.size = None

    def write(self, frame, results, index):
        img = draw(frame, results, index)
        if self.writer is None:
            self.size = (img.shape[1], img.shape[0])
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
            if not self.writer.isOpened():
                raise OutputError(f"cannot write video {self.path}")
        if (img.shape[1], img.shape[0]) != self.size:
            img = cv2.resize(img, self.size)
        self.writer.write(img)

    def close(self):
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            os.replace(self.tmp, self.path)


def draw(frame, results, index):
    """A copy of the frame with the boxes, scores, states and the frame number drawn on it."""
    img = frame.copy()
    thick = max(1, round(min(img.shape[:2]) / 240))
    for t, r in enumerate(results or []):
        if r is None or not np.all(np.isfinite(r.box)):
            continue
        x, y, w, h = r.box
        color = STATE_COLORS.get(r.state, (255, 255, 255))
        cv2.rectangle(img, (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h))), color, thick)
        label = f"{r.score:.2f}" + ("" if r.state == "tracking" else f" {r.state}")
        if len(results) > 1:
            label = f"#{t} " + label
        cv2.putText(img, label, (int(x), max(12, int(y) - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, color,
                    thick, cv2.LINE_AA)
    cv2.putText(img, f"{index}", (6, 16 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, (255, 255, 255), thick,
                cv2.LINE_AA)
    return img


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


def record(steps, num_targets=1, box_out=None, video_out=None, show=False, total=None, keep_results=False,
           progress=True):
    """Consume the frame loop's steps (siamtrack.stream.track): write every frame to the writers, show it live when
    asked (q or Esc stops), count what was tracked. The writers and the loop are closed however this ends."""
    stats = StreamStats()
    bar = tqdm(total=total, unit="frame", disable=None if progress else True, leave=False)
    try:
        with closing(steps):
            for step in steps:
                bar.update(1)
                if step.frame is None:
                    stats.skipped += 1
                elif step.results is not None:
                    stats.frames += 1
                    if stats.frames > 1:
                        stats.updates += 1
                        stats.update_time += step.seconds
                if video_out and step.frame is not None:
                    video_out.write(step.frame, step.results, step.index)
                if show and step.frame is not None:
                    cv2.imshow("siamtrack", draw(step.frame, step.results, step.index))
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
                if box_out:
                    box_out.write(step.results, num_targets)
                if keep_results:
                    stats.results.append(step.results)
    finally:
        bar.close()
        for w in (box_out, video_out):
            if w:
                w.close()
        if show:
            cv2.destroyAllWindows()
    return stats
