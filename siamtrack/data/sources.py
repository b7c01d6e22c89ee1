"""Frame sources for the frame loop (siamtrack.stream): a video file, a camera index, a folder of images, an
OTB-format sequence folder (img/ + groundtruth_rect.txt, whose first valid box is the default initial box), or any
`frame(i)` function (a dataset sequence, a generated stream).

A source yields `SourceFrame`s. A frame that cannot be decoded comes through with `image=None` and an `error`, so the
caller decides whether to skip it (keeping one output line per frame) or stop.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import SourceError
from .datasets import IMAGE_EXTS, list_images, read_otb_sequence


@dataclass
class SourceFrame:
    index: int
    image: "np.ndarray | None"
    name: str
    error: str = ""


def read_image(path):
    """cv2.imread keeping 16-bit and alpha as they are (the tracker converts); None when it cannot decode."""
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


class ImageFolderSource:
    def __init__(self, folder, frames=None, fps=30.0):
        self.frames = [Path(f) for f in (list_images(folder) if frames is None else frames)]
        if not self.frames:
            raise SourceError(f"no images in folder: {folder}")
        self.init_box = None
        self.init_index = 0
        self.fps = fps
        self.description = str(folder)

    def __len__(self):
        return len(self.frames)

    def __iter__(self):
        for i, p in enumerate(self.frames):
            img = read_image(p)
            if img is None:
                yield SourceFrame(i, None, p.name, f"cannot decode image {p}")
            else:
                yield SourceFrame(i, img, p.name)

    def close(self):
        pass


class CaptureSource:
    """A video file or a camera through cv2.VideoCapture. A camera that stops delivering ends the stream."""

    def __init__(self, target, is_camera):
        self.is_camera = is_camera
        self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            self.cap.release()
            if is_camera:
                raise SourceError(f"camera {target} does not open (no such device or it is busy)")
            raise SourceError(f"cannot open video file {target} (unreadable or not a video)")
        self.init_box = None
        self.init_index = 0
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and np.isfinite(fps) and 1 <= fps <= 240 else 30.0
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)) if not is_camera else 0
        self._len = n if n > 0 else None
        self.description = f"camera {target}" if is_camera else str(target)
        # Some broken files open but yield nothing: read one frame now so that fails at open time.
        ok, first = self.cap.read()
        if not ok or first is None:
            self.cap.release()
            what = f"camera {target} opened but delivers no frames" if is_camera else \
                f"cannot read any frame from video file {target} (truncated or not a video)"
            raise SourceError(what)
        self._first = first

    def __len__(self):
        return self._len or 0

    def __iter__(self):
        i = 0
        frame = self._first
        self._first = None
        while frame is not None:
            yield SourceFrame(i, frame, f"{i:06d}")
            i += 1
            ok, frame = self.cap.read()
            if not ok:
                frame = None

    def close(self):
        self.cap.release()


class IndexedSource:
    """Frames `frame(i)` for i in range(start, stop), read or rendered on demand. A frame that cannot be read raises
    (FrameError) rather than being skipped: a benchmark sequence with a hole is a broken dataset."""

    def __init__(self, frame, stop, start=0, description="frames", fps=30.0):
        self._frame = frame
        self.stop = int(stop)
        self.init_box = None
        self.init_index = int(start)
        self.fps = fps
        self.description = description

    def __len__(self):
        return self.stop

    def __iter__(self):
        for i in range(self.init_index, self.stop):
            yield SourceFrame(i, self._frame(i), str(i))

    def close(self):
        pass


def open_source(spec):
    """`spec`: a camera index ('0'), a video file, an image folder or an OTB sequence folder."""
    spec = str(spec)
    if re.fullmatch(r"\d+", spec) and not Path(spec).exists():
        return CaptureSource(int(spec), is_camera=True)
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"no such file or folder: {spec}")
    if path.is_dir():
        if (path / "img").is_dir():
            return _otb_source(path)
        return ImageFolderSource(path)
    if path.suffix.lower() in IMAGE_EXTS:
        raise SourceError(f"{spec} is a single image; give a video, a folder of images or a camera index")
    return CaptureSource(str(path), is_camera=False)


def _otb_source(folder):
    if not (folder / "groundtruth_rect.txt").is_file():
        return ImageFolderSource(folder / "img")
    seq = read_otb_sequence(folder)
    valid = np.flatnonzero(seq.valid)
    src = ImageFolderSource(folder / "img", frames=seq.frames)
    if len(valid):
        # One-pass protocol: start on the first frame with a valid box.
        src.init_box, src.init_index = seq.boxes[valid[0]], int(valid[0])
    src.description = str(folder)
    return src
