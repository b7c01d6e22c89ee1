"""Training pairs: (exemplar crop, search crop, target box in the search crop, negative flag).

Every item is drawn from its own generator seeded by (seed, epoch, index), so an item does not depend on which worker
makes it or on what came before it: a run resumed at step k sees exactly the pairs an uninterrupted run would.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from .augment import CropParams, augmented_crop, color_jitter
from .. import boxes as B
from ..crops import exemplar_size
from ..errors import ConfigError, DatasetError

STATIC_STRETCH = 0.15  # two views of one still image need more geometric difference than two video frames
PART_MIN_SIDE = 0.4    # a part target keeps at least this share of each side of its box
PART_MIN_PIXELS = 12   # and at least this many frame pixels a side (a box with a side under it stays whole)
SCENE_TRIES = 8        # places tried for an in-frame negative before it falls back to another sequence
SCENE_DISTANCE = (0.6, 1.2)  # an in-frame negative's place: this many search-crop sides from the target's centre


class PairDataset(Dataset):
    def __init__(self, sequences, cfg, static=None, seed=0, pairs=None):
        """sequences: list of `Sequence`; cfg: ExperimentConfig; static: list of (image path, boxes[, class ids]) or
        None."""
        t = cfg.train
        self.cfg = cfg
        self.seed = int(seed)
        self.epoch = 0
        self.pairs = int(pairs if pairs is not None else t.pairs_per_epoch)
        self.exemplar_size = cfg.tracker.exemplar_size
        self.search_size = t.search_size
        self.context = cfg.tracker.context_amount
        self.max_gap = int(t.max_frame_gap)
        self.static = [(item[0], item[1]) for item in (static or []) if len(item[1])]
        # class ids per static box (-1: unknown, never "the same class"), for the same-class hard negatives
        self.static_classes = [np.asarray(item[2]) if len(item) > 2 else np.full(len(item[1]), -1)
                               for item in (static or []) if len(item[1])]
        # One entry per sequence with at least two valid frames; weight = (number of valid frames) ** frame_weight.
        self.sequences, self.valid_idx = [], []
        for s in sequences:
            idx = np.flatnonzero(s.valid)
            if len(idx) >= 2:
                self.sequences.append(s)
                self.valid_idx.append(idx)
        if not self.sequences and not self.static:
            raise DatasetError("no training data: no sequence has two valid frames and no static images were given")
        if not (isinstance(t.frame_weight, (int, float)) and 0 <= t.frame_weight < float("inf")):
            raise ConfigError(f"train: frame_weight must be a number >= 0, got {t.frame_weight!r}")
        self.frame_weight = float(t.frame_weight)
        w = np.array([len(i) for i in self.valid_idx], dtype=np.float64) ** self.frame_weight
        self.seq_weights = w / w.sum() if len(w) else w
        self.static_prob = t.static_image_prob if self.static else 0.0
        if not self.sequences:
            self.static_prob = 1.0
        self.negative_prob = t.negative_pair_prob
        self.hard_negative_prob = t.hard_negative_prob
        if not 0 <= t.scene_negative_prob <= 1:
            raise ConfigError(f"train: scene_negative_prob must be within [0, 1], got {t.scene_negative_prob!r}")
        self.scene_negative_prob = float(t.scene_negative_prob)
        if not 0 <= t.part_prob <= 1:
            raise ConfigError(f"train: part_prob must be within [0, 1], got {t.part_prob!r}")
        self.part_prob = float(t.part_prob)
        self.z_params = CropParams(stretch=0.05, shift=0.0)
        self.x_params = CropParams(stretch=t.search_stretch, shift=t.search_shift, scale=t.search_scale)

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def static_only(self):
        """A copy that draws every pair from the still images; same seed, so its pair i is still a pure function
        of i."""
        if not self.static:
            raise DatasetError("cache_static_pairs needs still images with boxes (--coco)")
        other = copy.copy(self)
        other.static_prob = 1.0
        return other

    def fingerprint(self):
        """A digest of everything that decides pair i: the data, the sampling and augmentation settings, the seed.
        A trunk-feature bank stores it, so a bank of other data or settings is rebuilt rather than reused."""
        # A still image by its folder and file name (images/<split>/<file>), not the path as typed: the same data
        # named from another working directory, or absolutely, must find the same bank (sequences go by name too).
        what = {"sequences": [[s.name, len(s), int(s.valid.sum())] for s in self.sequences],
                "static": [[f"{Path(p).parent.name}/{Path(p).name}", np.asarray(b).round(3).tolist()]
                           for p, b in self.static],
                "sizes": [self.exemplar_size, self.search_size, self.context], "max_gap": self.max_gap,
                "probs": [self.static_prob, self.negative_prob], "z": self.z_params.key(), "x": self.x_params.key(),
                "seed": self.seed}
        if self.frame_weight != 1:  # likewise: banks drawn by frames keep their fingerprint
            what["frame_weight"] = self.frame_weight
        if self.part_prob:
            what["part"] = [self.part_prob, PART_MIN_SIDE, PART_MIN_PIXELS]
        if self.hard_negative_prob:  # only then do the classes decide pairs (older banks keep their fingerprint)
            what["hard"] = [self.hard_negative_prob, [c.tolist() for c in self.static_classes]]
        if self.scene_negative_prob:
            what["scene"] = [self.scene_negative_prob, SCENE_TRIES, SCENE_DISTANCE]
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()

    def __len__(self):
        return self.pairs

    # -- sampling ---------------------------------------------------------------------------------------------
    def frame_gap(self, seq_index):
        """The largest exemplar-search distance: max_frame_gap, fewer for short clips (half their length)."""
        n = len(self.sequences[seq_index])
        return max(1, min(self.max_gap, n // 2))

    def sample_frames(self, rng, seq_index=None):
        """-> (sequence index, exemplar frame, search frame), both valid and at most `frame_gap` apart."""
        if seq_index is None:
            seq_index = int(rng.choice(len(self.sequences), p=self.seq_weights))
        idx = self.valid_idx[seq_index]
        gap = self.frame_gap(seq_index)
        i = int(rng.choice(idx))
        near = idx[(np.abs(idx - i) <= gap) & (idx != i)]
        j = int(rng.choice(near)) if len(near) else i
        return seq_index, i, j

    def _sequence_crop(self, rng, seq_index, frame_index, out_size, params):
        seq = self.sequences[seq_index]
        frame = seq.frame(frame_index)
        return augmented_crop(frame, seq.boxes[frame_index], out_size, self.exemplar_size, self.context, params, rng)

    def _static_crop(self, rng, item, box_index, out_size, params, box=None):
        """An augmented crop around box `box_index` of still image `item`, or around `box` in that image."""
        path, boxes = self.static[item]
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            raise DatasetError(f"cannot read image {path}")
        p = CropParams(stretch=STATIC_STRETCH, shift=params.shift, scale=params.scale)
        box = boxes[box_index] if box is None else box
        return augmented_crop(frame, box, out_size, self.exemplar_size, self.context, p, rng)

    def _part(self, rng, box):
        """With probability part_prob a random sub-box of `box` (x, y, w, h), else `box` itself."""
        if not self.part_prob or rng.random() >= self.part_prob:
            return box
        x, y, w, h = (float(v) for v in box)
        fw, fh = rng.uniform(PART_MIN_SIDE, 1.0, size=2)
        pw, ph = max(w * fw, PART_MIN_PIXELS), max(h * fh, PART_MIN_PIXELS)
        if pw > w or ph > h:
            return box
        ox, oy = rng.uniform(0.0, 1.0, size=2)
        return np.array([x + ox * (w - pw), y + oy * (h - ph), pw, ph])

    def _random_static(self, rng):
        item = int(rng.integers(len(self.static)))
        return item, int(rng.integers(len(self.static[item][1])))

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        zs, xs = self.exemplar_size, self.search_size
        negative = rng.random() < self.negative_prob
        if rng.random() < self.static_prob:
            item, k = self._random_static(rng)
            target = self._part(rng, self.static[item][1][k])
            z, _ = self._static_crop(rng, item, k, zs, self.z_params, box=target)
            x, box = self._static_crop(rng, item, k, xs, self.x_params, box=target)
            if negative:
                same = self._same_class_other(rng, item, k)
                x, box = (self._static_crop(rng, item, same, xs, self.x_params) if same is not None
                          else self._other_search(rng, static_item=item))
        else:
            s, i, j = self.sample_frames(rng)
            z, _ = self._sequence_crop(rng, s, i, zs, self.z_params)
            x, box = self._sequence_crop(rng, s, j, xs, self.x_params)
            if negative:
                away = self._elsewhere_in_frame(rng, s, j)
                x, box = away if away is not None else self._other_search(rng, seq_index=s)
        z = color_jitter(z, self.z_params, rng)
        x = color_jitter(x, self.x_params, rng)
        return to_tensor(z), to_tensor(x), torch.from_numpy(box), torch.tensor(float(negative))

    def _same_class_other(self, rng, item, k):
        """With probability hard_negative_prob, another box of box k's class in the same photo (None: no such box,
        or not drawn). Distractor-aware training (DaSiamRPN): a look-alike in the same light and setting is the
        negative a tracker meets, and a random other photo is too easy."""
        if not self.hard_negative_prob or rng.random() >= self.hard_negative_prob:
            return None
        classes = self.static_classes[item]
        others = np.flatnonzero((classes == classes[k]) & (classes >= 0))
        others = others[others != k]
        return int(rng.choice(others)) if len(others) else None

    def _elsewhere_in_frame(self, rng, seq_index, frame_index):
        """With probability scene_negative_prob, a search crop of frame `frame_index` around another place near the
        target (a box of the target's size) that leaves the target wholly outside the crop; None when not drawn, or
        when SCENE_TRIES places all overlap it or fall outside the frame (a large target in a small frame)."""
        if not self.scene_negative_prob or rng.random() >= self.scene_negative_prob:
            return None
        seq = self.sequences[seq_index]
        frame = seq.frame(frame_index)
        fh, fw = frame.shape[:2]
        x, y, w, h = (float(v) for v in seq.boxes[frame_index])
        # the crop's side in frame pixels, unaugmented; places one 0.6-1.2 sides away are the target's
        # neighbourhood, what the tracker's next search crops cover
        side = exemplar_size(w, h, self.context) * self.search_size / self.exemplar_size
        for _ in range(SCENE_TRIES):
            angle, dist = rng.uniform(0, 2 * np.pi), side * rng.uniform(*SCENE_DISTANCE)
            cx, cy = x + w / 2 + dist * np.cos(angle), y + h / 2 + dist * np.sin(angle)
            if not (0 <= cx < fw and 0 <= cy < fh):
                continue
            place = np.array([cx - w / 2, cy - h / 2, w, h])
            crop, at = augmented_crop(frame, place, self.search_size, self.exemplar_size, self.context,
                                      self.x_params, rng)
            # the crop's pixels per frame pixel from the place's box in it, then where the target lands
            ax, ay = w / at[2], h / at[3]
            target = [at[0] + (x - place[0]) / ax, at[1] + (y - place[1]) / ay, at[2], at[3]]
            if B.iou(target, [0, 0, self.search_size, self.search_size]) == 0:
                return crop, at
        return None

    def _other_search(self, rng, seq_index=None, static_item=None):
        """A search crop of a different object: another sequence when there is one, else another image."""
        others = [k for k in range(len(self.sequences)) if k != seq_index]
        if others and (not self.static or rng.random() >= 0.5):
            s = int(rng.choice(others))
            _, _, j = self.sample_frames(rng, s)
            return self._sequence_crop(rng, s, j, self.search_size, self.x_params)
        if not self.static:
            raise DatasetError("negative pairs need at least two sequences or some static images")
        item, k = self._random_static(rng)
        if len(self.static) > 1:
            while item == static_item:
                item, k = self._random_static(rng)
        return self._static_crop(rng, item, k, self.search_size, self.x_params)


def to_tensor(crop):
    """uint8 BGR HxWx3 -> float32 RGB (3, H, W), values 0..255."""
    return torch.from_numpy(np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1))).float()


class ResumableSampler(DistributedSampler):
    """In-order indices of one epoch, split over ranks as DistributedSampler does, starting at a given batch so a
    resumed epoch skips what was already trained on without decoding it. Order need not be shuffled: every index
    draws its own random pair."""

    def __init__(self, dataset, num_replicas=1, rank=0, start=0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=True)
        self.start = int(start)

    def __iter__(self):
        indices = list(range(len(self.dataset)))[:self.total_size]
        return iter(indices[self.rank + self.start * self.num_replicas:self.total_size:self.num_replicas])

    def __len__(self):
        return max(0, self.num_samples - self.start)


def _worker_init(_):
    # Each worker decodes and warps on its own core: library-level threads would only fight over the same cores.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def loader_workers(workers) -> dict:
    """DataLoader keyword arguments for `workers` pair-making processes (0: in the training process).

    The workers are spawned, not forked: once the training process has run OpenCV's thread pool (validation
    between epochs crops frames with it), a forked child that touches the pool (cv2.setNumThreads above) waits
    forever on threads that were not copied into it, and training hung at the second epoch's first batch."""
    if not workers:
        return {"num_workers": 0}
    return {"num_workers": workers, "worker_init_fn": _worker_init, "multiprocessing_context": "spawn",
            "prefetch_factor": 4}
