"""The tracker contract, shaped like OpenCV's trackers and got10k's: `init(frame, box)` then `update(frame)`.

Frames are HxWx3 uint8 BGR numpy arrays (what cv2 reads); grayscale, BGRA and 16-bit frames are converted, not
rejected. Boxes are (x, y, w, h), 0-based. Trackers keep K targets at once as arrays of centres and sizes, so one
forward pass serves all of them; `init`/`update` are the one-target view of `init_many`/`update_many`.

Lost-target states, one mechanism for every subclass: each frame a target's score makes it "tracking" (score >=
uncertain_below) or "uncertain"; `lost_patience` frames in a row below `lost_below` make it "lost". A lost target
stays on its last confident box (no drift) and, with `recovery` on, is searched for over the whole frame: search
crops at its scale tiled over the frame, all lost targets' tiles in one forward pass, scored by the subclass's
`_peaks` (raw peak, no window or penalty). A peak above `recover_above` moves it there and it resumes. Nothing of
this runs while no target is lost, so the normal path costs one forward pass a frame as before.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import boxes as B
from ..crops import as_bgr_uint8, crop_batch_numpy, crop_torch, crops_to_tensor, exemplar_size, frame_to_tensor
from ..errors import BoxError, ConfigError

# Lost-target states reported per frame.
TRACKING, UNCERTAIN, LOST = "tracking", "uncertain", "lost"


@dataclass
class TrackResult:
    box: np.ndarray          # (x, y, w, h), 0-based pixels
    score: float             # confidence in [0, 1]: the peak score of the frame
    state: str = TRACKING


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
    # Per-target arrays (first axis K) that together are a target's position and scale: saved while it is tracked
    # confidently, put back when it is declared lost. Subclasses with more per-target state extend this.
    target_arrays = ("centers", "sizes")

    def __init__(self, model, cfg, device, crop_on_device=None):
        _check_state_config(cfg)
        self.model = model
        self.cfg = cfg
        self.device = device
        # Crops are cut where the frame lives: on a GPU the frame goes over once and grid_sample cuts all crops
        # there; on the CPU warpAffine on the uint8 frame is faster.
        self.crop_on_device = (device.type != "cpu") if crop_on_device is None else crop_on_device
        self._crop_buffers = {}
        self.num_targets = 0

    # -- public API -------------------------------------------------------------------------------------------
    def init(self, frame, box) -> TrackResult:
        return self.init_many(frame, [box])[0]

    def update(self, frame) -> TrackResult:
        return self.update_many(frame)[0]

    def init_many(self, frame, boxes) -> list:
        """Start tracking `boxes` on `frame`; returns the first frame's results (the given boxes, score 1)."""
        frame = as_bgr_uint8(frame)
        h, w = frame.shape[:2]
        boxes = np.stack([check_box(b, w, h) for b in boxes]) if len(boxes) else np.zeros((0, 4))
        if len(boxes) == 0:
            raise BoxError("no initial box given")
        self.num_targets = len(boxes)
        self._init(frame, boxes)
        self._below = np.zeros(self.num_targets, dtype=np.int64)   # consecutive frames under lost_below
        self._lost = np.zeros(self.num_targets, dtype=bool)
        self._tile_cursor = np.zeros(self.num_targets, dtype=np.int64)
        self._confident = {name: getattr(self, name).copy() for name in self.target_arrays}
        return [TrackResult(box=b.copy(), score=1.0) for b in boxes]

    def update_many(self, frame) -> list:
        """One TrackResult per target for this frame."""
        if self.num_targets == 0:
            raise RuntimeError("update() called before init()")
        frame = as_bgr_uint8(frame)
        h, w = frame.shape[:2]
        was_lost = self._lost.copy()
        searching = np.flatnonzero(was_lost) if self.cfg.recovery else np.zeros(0, dtype=np.int64)
        scores = np.zeros(self.num_targets)
        if len(searching) < self.num_targets:
            scores[:] = self._update(frame)
        if len(searching):
            # the local step (if any ran) moved lost targets too: put them back before searching
            self._restore(searching)
            peaks, found_at = self._global_search(frame, searching)
            scores[searching] = peaks
            hit = peaks > self.cfg.recover_above
            self.centers[searching[hit]] = np.clip(found_at[hit], 0, [w, h])
        states = self._next_states(scores, was_lost)
        boxes = self._to_boxes(self.centers, self.sizes, w, h)
        return [TrackResult(box=boxes[i], score=float(scores[i]), state=states[i]) for i in range(self.num_targets)]

    # -- for subclasses ---------------------------------------------------------------------------------------
    # `_init(frame, boxes)` sets the per-target arrays and the kernels; `_update(frame)` moves the targets and
    # returns their (K,) scores: the boxes are made from the arrays once, in update_many.
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
        # the memory layout the backend runs in (onnxruntime: NCHW; torch: channels-last)
        return crops_to_tensor(buf, self.device, getattr(self.model, "channels_last", True))

    @staticmethod
    def _frame_mean(frame):
        return frame.reshape(-1, 3).mean(axis=0)

    @staticmethod
    def _to_boxes(centers, sizes, width, height):
        """Centre/size arrays -> (x, y, w, h) boxes with the centre kept inside the frame."""
        c = np.stack([np.clip(centers[:, 0], 0, width), np.clip(centers[:, 1], 0, height)], axis=1)
        return B.cxcywh_to_xywh(np.concatenate([c, sizes], axis=1))

    # -- lost-target states and recovery ----------------------------------------------------------------------
    def _next_states(self, scores, was_lost):
        """States of this frame from the scores; declares targets lost or resumed and keeps the confident boxes."""
        t = self.cfg
        resumed = was_lost & (scores > t.recover_above)
        self._below = np.where(~was_lost & (scores < t.lost_below), self._below + 1, 0)
        newly_lost = ~was_lost & (self._below >= t.lost_patience)
        self._lost = (was_lost & ~resumed) | newly_lost
        if t.recovery and newly_lost.any():
            lost_now = np.flatnonzero(newly_lost)
            self._restore(lost_now)
            self._tile_cursor[lost_now] = 0
        confident = ~self._lost & (scores >= t.uncertain_below)
        for name in self.target_arrays:
            self._confident[name][confident] = getattr(self, name)[confident]
        return [LOST if self._lost[i] else TRACKING if confident[i] else UNCERTAIN for i in range(len(scores))]

    def _restore(self, idx):
        for name in self.target_arrays:
            getattr(self, name)[idx] = self._confident[name][idx]

    def _search_sides(self):
        """(K,) search-crop side in frame pixels at each target's current size."""
        t = self.cfg
        z = np.array([exemplar_size(w, h, t.context_amount) for w, h in self.sizes])
        return z * t.search_size / t.exemplar_size

    # search crops one target costs in a normal frame (SiamFC: one per scale)
    crops_per_target = 1

    def _tiles_per_target(self, lost):
        """Tiles each of `lost` lost targets gets this frame: at most `recovery_tiles`, and together with the local
        step of the targets still tracked no more crops than `recovery_budget` normal frames (at least one)."""
        t = self.cfg
        normal = self.crops_per_target * self.num_targets
        local = self.crops_per_target * (self.num_targets - lost)
        allowance = int((t.recovery_budget * normal - local) // lost)
        return int(min(t.recovery_tiles, max(1, allowance)))

    def _tiles(self, i, side, width, height, count):
        """This frame's `count` tile centres for lost target i: the frame covered by tiles `recovery_tile_step *
        side` apart, nearest the last confident centre first, cycling over successive frames."""
        step = max(self.cfg.recovery_tile_step * side, 1.0)
        nx, ny = int(np.ceil(width / step)), int(np.ceil(height / step))
        gx, gy = np.meshgrid((np.arange(nx) + 0.5) * width / nx, (np.arange(ny) + 0.5) * height / ny)
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
        grid = grid[np.argsort(np.linalg.norm(grid - self.centers[i], axis=1), kind="stable")]
        take = (self._tile_cursor[i] + np.arange(min(count, len(grid)))) % len(grid)
        self._tile_cursor[i] = (self._tile_cursor[i] + len(take)) % len(grid)
        return grid[take]

    @torch.inference_mode()
    def _global_search(self, frame, idx):
        """Best raw peak (L,) and its frame position (L, 2) for the lost targets `idx`, one forward pass for all."""
        t = self.cfg
        h, w = frame.shape[:2]
        sides = self._search_sides()[idx]
        count = self._tiles_per_target(len(idx))
        tiles = [self._tiles(i, s, w, h, count) for i, s in zip(idx, sides)]
        n = max(len(c) for c in tiles)
        # the same count per target so that each target's tiles are one block of the batch (repeats cost a little)
        centers = np.concatenate([np.resize(c, (n, 2)) for c in tiles])
        sizes = np.repeat(sides, n)
        x = self._crop(self._prepare_frame(frame), centers, sizes, t.search_size, self.pad)
        peaks, where = self._peaks(self.model.track(x, _select(self.kernels, idx)))
        pos = centers + (where - t.search_size / 2) * (sizes / t.search_size)[:, None]
        best = np.argmax(peaks.reshape(len(idx), n), axis=1)
        flat = np.arange(len(idx)) * n + best
        return peaks[flat], pos[flat]

    def _peaks(self, output):
        """For the network's raw output on N search crops: (N,) peak scores in [0, 1] and (N, 2) their (x, y) in
        search-crop pixels. Subclasses decode their own head's output."""
        raise NotImplementedError


def _select(kernels, idx):
    """The kernels of targets `idx` (a tensor or a tuple of them, batch first)."""
    if isinstance(kernels, (tuple, list)):
        return type(kernels)(_select(k, idx) for k in kernels)
    return kernels[torch.as_tensor(idx, device=kernels.device)]


def _check_state_config(cfg):
    if not 0 <= cfg.lost_below <= cfg.uncertain_below:
        raise ConfigError(f"tracker: need 0 <= lost_below <= uncertain_below, got {cfg.lost_below} and "
                          f"{cfg.uncertain_below}")
    if cfg.lost_patience < 1 or cfg.recovery_tiles < 1 or cfg.recovery_tile_step <= 0 or cfg.recovery_budget < 1:
        raise ConfigError("tracker: lost_patience, recovery_tiles and recovery_budget must be >= 1 and "
                          "recovery_tile_step > 0")
