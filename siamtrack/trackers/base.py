"""The tracker contract, shaped like OpenCV's trackers and got10k's: `init(frame, box)` then `update(frame)`.

Frames are HxWx3 uint8 BGR numpy arrays (what cv2 reads); grayscale, BGRA and 16-bit frames are converted, not
rejected. Boxes are (x, y, w, h), 0-based. Trackers keep K targets at once as arrays of centres and sizes, so one
forward pass serves all of them; `init`/`update` are the one-target view of `init_many`/`update_many`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import boxes as B
from ..crops import crop_batch_numpy, crop_torch, crops_to_tensor, frame_to_tensor
from ..errors import BoxError, FrameError

# Lost-target states reported per frame.
TRACKING, UNCERTAIN, LOST = "tracking", "uncertain", "lost"


@dataclass
class TrackResult:
    box: np.ndarray          # (x, y, w, h), 0-based pixels
    score: float             # confidence in [0, 1]: the peak score of the frame
    state: str = TRACKING

    @property
    def ok(self) -> bool:
        return self.state != LOST


def as_bgr_uint8(frame) -> np.ndarray:
    """Normalise a frame to HxWx3 uint8 BGR; raises FrameError for what cannot be a frame."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)) or min(frame.shape[:2]) < 1:
        raise FrameError(f"a frame must be HxW, HxWx3 or HxWx4, got shape {frame.shape}")
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    elif frame.dtype != np.uint8:
        if not np.issubdtype(frame.dtype, np.number):
            raise FrameError(f"unsupported frame dtype {frame.dtype}")
        f = np.nan_to_num(frame.astype(np.float32))
        if f.size and f.max() <= 1.0:
            f = f * 255.0
        frame = np.clip(f, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.shape[2] == 4:
        frame = np.ascontiguousarray(frame[:, :, :3])
    return frame


def check_box(box, width, height) -> np.ndarray:
    """Validate an initial box against the frame; returns it as float64 (4,)."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.size != 4:
        raise BoxError(f"a box needs 4 numbers x,y,w,h, got {b.size}")
    if not np.all(np.isfinite(b)):
        raise BoxError(f"box {b.tolist()} is not finite")
    if b[2] <= 0 or b[3] <= 0:
        raise BoxError(f"box {b.tolist()} has no area (w and h must be > 0)")
    if b[0] >= width or b[1] >= height or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
        raise BoxError(f"box {b.tolist()} lies outside the {width}x{height} frame")
    return b


class Tracker:
    """Base class: validation and cropping shared by every Siamese tracker."""

    name = "tracker"

    def __init__(self, model, cfg, device, crop_on_device=None):
        self.model = model
        self.cfg = cfg
        self.device = device
        # Crops are cut where the frame lives: on a GPU the frame goes over once and grid_sample cuts all crops
        # there; on the CPU warpAffine on the uint8 frame is faster.
        self.crop_on_device = (device.type != "cpu") if crop_on_device is None else crop_on_device
        self._crop_buffers = {}
        self.num_targets = 0

    # -- public API -------------------------------------------------------------------------------------------
    def init(self, frame, box):
        self.init_many(frame, [box])

    def update(self, frame) -> TrackResult:
        return self.update_many(frame)[0]

    def init_many(self, frame, boxes):
        frame = as_bgr_uint8(frame)
        h, w = frame.shape[:2]
        boxes = np.stack([check_box(b, w, h) for b in boxes]) if len(boxes) else np.zeros((0, 4))
        if len(boxes) == 0:
            raise BoxError("no initial box given")
        self.num_targets = len(boxes)
        self._init(frame, boxes)

    def update_many(self, frame):
        if self.num_targets == 0:
            raise RuntimeError("update() called before init()")
        return self._update(as_bgr_uint8(frame))

    # -- for subclasses ---------------------------------------------------------------------------------------
    def _prepare_frame(self, frame):
        """Per-frame state for `_crop`: the device tensor of the frame when cropping on the device."""
        if self.crop_on_device:
            return frame_to_tensor(frame, self.device)
        return frame

    def _crop(self, prepared, centers, sizes, out_size, pad_bgr):
        """(N, 3, out, out) float32 RGB crops on the model's device; centers (N, 2), sizes (N,) in frame pixels."""
        if isinstance(prepared, torch.Tensor):
            return crop_torch(prepared, centers, sizes, out_size, pad_bgr[::-1])
        key = (len(sizes), out_size)
        buf = self._crop_buffers.get(key)
        buf = crop_batch_numpy(prepared, centers, sizes, out_size, pad_bgr, out=buf)
        self._crop_buffers[key] = buf
        return crops_to_tensor(buf, self.device)

    @staticmethod
    def _frame_mean(frame):
        return frame.reshape(-1, 3).mean(axis=0)

    @staticmethod
    def _to_boxes(centers, sizes, width, height):
        """Centre/size arrays -> (x, y, w, h) boxes with the centre kept inside the frame."""
        c = np.stack([np.clip(centers[:, 0], 0, width), np.clip(centers[:, 1], 0, height)], axis=1)
        return B.cxcywh_to_xywh(np.concatenate([c, sizes], axis=1))
