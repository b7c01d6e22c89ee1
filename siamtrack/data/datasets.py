"""Sequence readers: OTB-format folders (with an optional INDEX.tsv split column), GOT-10k, LaSOT and UAV123.

Every reader returns `Sequence` objects with 0-based (x, y, w, h) boxes and NaN rows where the target is absent, so
the pair sampler, the evaluation and the trainer see one interface whatever the layout on disk.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import boxes as B
from ..errors import DatasetError, FrameError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
FORMATS = ("otb", "got10k", "lasot", "uav123")


def natural_key(name):
    """'img10.jpg' sorts after 'img9.jpg': digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(name))]


def list_images(folder):
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file()]
    return [str(p) for p in sorted(files, key=lambda p: natural_key(p.name))]


@dataclass
class Sequence:
    name: str
    frames: list
    boxes: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.frames)

    def frame(self, i) -> np.ndarray:
        path = self.frames[i]
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise FrameError(f"cannot read frame {path}")
        return img

    @property
    def valid(self) -> np.ndarray:
        return B.is_valid(self.boxes)


def read_boxes(path, one_based, n_frames=None):
    """A ground-truth text file -> (N, 4) float64, 0-based. Lines of 'nan' (or unparsable blanks) become NaN rows.

    The file may be shorter than the frame list (GOT-10k test gives only the first box): missing rows are NaN.
    """
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(B.parse_box(line))
        except ValueError:
            raise DatasetError(f"{path}:{lineno}: not a box x,y,w,h: {line[:60]!r}") from None
    arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
    if one_based:
        arr[:, :2] -= 1.0
    if n_frames is not None:
        if len(arr) > n_frames:
            raise DatasetError(f"{path} has {len(arr)} boxes but its sequence has only {n_frames} frames")
        if len(arr) < n_frames:
            arr = np.vstack([arr, np.full((n_frames - len(arr), 4), np.nan)])
    return arr


def _read_flags(path, n):
    """A 0/1 flag file (one per line or comma separated) -> (n,) bool; absent file -> all False."""
    path = Path(path)
    if not path.is_file():
        return np.zeros(n, dtype=bool)
    tokens = [t for t in re.split(r"[,\s]+", path.read_text().strip()) if t]
    flags = np.array([float(t) != 0 for t in tokens], dtype=bool)
    out = np.zeros(n, dtype=bool)
    out[:min(n, len(flags))] = flags[:n]
    return out


def _read_ints(path, n):
    path = Path(path)
    if not path.is_file():
        return None
    tokens = [t for t in re.split(r"[,\s]+", path.read_text().strip()) if t]
    vals = np.array([int(float(t)) for t in tokens], dtype=np.int64)
    return vals[:n]


# -- OTB ----------------------------------------------------------------------------------------------------------

def _frames_and_boxes(folder, img_dir, gt_name, one_based):
    """The sorted frames of `img_dir` and the boxes of `folder/gt_name` (0-based), as every layout stores them."""
    frames = list_images(img_dir) if img_dir.is_dir() else []
    if not frames:
        raise DatasetError(f"{folder} is not a sequence folder: no images in {img_dir}")
    gt = folder / gt_name
    if not gt.is_file():
        raise DatasetError(f"{folder} has no ground truth {gt_name}")
    return frames, read_boxes(gt, one_based=one_based, n_frames=len(frames))


def read_otb_sequence(folder, gt_name="groundtruth_rect.txt") -> Sequence:
    folder = Path(folder)
    frames, boxes = _frames_and_boxes(folder, folder / "img", gt_name, one_based=True)
    meta = {"dataset": "otb", "root": str(folder.parent)}
    attrs = folder / "attrs.txt"
    if attrs.is_file():
        meta["attributes"] = [a.strip() for a in re.split(r"[,\n]", attrs.read_text()) if a.strip()]
    return Sequence(folder.name, frames, boxes, meta)


def _read_index(root):
    with open(Path(root) / "INDEX.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _open_otb(root, split):
    index = root / "INDEX.tsv"
    if split is not None:
        if not index.is_file():
            raise DatasetError(f"split={split!r} asked for but {root} has no INDEX.tsv with a split column")
        rows = _read_index(root)
        if rows and "split" not in rows[0]:
            raise DatasetError(f"{index} has no 'split' column")
        splits = sorted({r["split"] for r in rows})
        if split not in splits:
            raise DatasetError(f"unknown split {split!r} in {index}; known: {', '.join(splits)}")
        names = [r["name"] for r in rows if r["split"] == split]
        meta_by_name = {r["name"]: r for r in rows}
    else:
        names = sorted((p.name for p in root.iterdir() if (p / "img").is_dir()), key=natural_key)
        meta_by_name = {r["name"]: r for r in _read_index(root)} if index.is_file() else {}
    seqs = []
    for n in names:
        s = read_otb_sequence(root / n)
        if n in meta_by_name:
            s.meta["split"] = meta_by_name[n].get("split")
            s.meta["source"] = meta_by_name[n].get("dataset")
        seqs.append(s)
    return seqs


# -- GOT-10k ------------------------------------------------------------------------------------------------------

def _got10k_split_dir(root, split):
    if (root / "list.txt").is_file():
        return root
    if split is None:
        split = "train" if (root / "train" / "list.txt").is_file() else None
        if split is None:
            found = [p.name for p in root.iterdir() if (p / "list.txt").is_file()]
            if not found:
                raise DatasetError(f"{root} has no GOT-10k split folder with a list.txt")
            split = sorted(found)[0]
    d = root / split
    if not (d / "list.txt").is_file():
        raise DatasetError(f"{root} has no GOT-10k split {split!r} ({d / 'list.txt'} missing)")
    return d


def read_got10k_sequence(folder) -> Sequence:
    folder = Path(folder)
    frames, boxes = _frames_and_boxes(folder, folder, "groundtruth.txt", one_based=False)
    absent = _read_flags(folder / "absence.label", len(frames))
    boxes[absent] = np.nan
    meta = {"dataset": "got10k"}
    cover = _read_ints(folder / "cover.label", len(frames))
    if cover is not None:
        meta["cover"] = cover
    return Sequence(folder.name, frames, boxes, meta)


def _open_got10k(root, split):
    d = _got10k_split_dir(root, split)
    names = [n.strip() for n in (d / "list.txt").read_text().splitlines() if n.strip()]
    seqs = [read_got10k_sequence(d / n) for n in names]
    for s in seqs:
        s.meta["split"] = d.name
    return seqs


# -- LaSOT --------------------------------------------------------------------------------------------------------

def read_lasot_sequence(folder) -> Sequence:
    folder = Path(folder)
    frames, boxes = _frames_and_boxes(folder, folder / "img", "groundtruth.txt", one_based=True)
    meta = {"dataset": "lasot", "class": folder.parent.name,
            "full_occlusion": _read_flags(folder / "full_occlusion.txt", len(frames)),
            "out_of_view": _read_flags(folder / "out_of_view.txt", len(frames))}
    return Sequence(folder.name, frames, boxes, meta)


def _lasot_folders(root):
    out = []
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        out += [p for p in cls.iterdir() if p.is_dir() and (p / "groundtruth.txt").is_file()]
    return sorted(out, key=lambda p: natural_key(p.name))


def _open_lasot(root, split):
    folders = _lasot_folders(root)
    if split == "test" and (root / "testing_set.txt").is_file():
        wanted = {n.strip() for n in (root / "testing_set.txt").read_text().splitlines() if n.strip()}
        folders = [f for f in folders if f.name in wanted]
    elif split == "train" and (root / "testing_set.txt").is_file():
        held = {n.strip() for n in (root / "testing_set.txt").read_text().splitlines() if n.strip()}
        folders = [f for f in folders if f.name not in held]
    elif split not in (None, "test", "train"):
        raise DatasetError(f"unknown LaSOT split {split!r}: use train or test")
    return [read_lasot_sequence(f) for f in folders]


# -- UAV123 -------------------------------------------------------------------------------------------------------

def _open_uav123(root, split):
    """One annotation file per frame folder (anno/UAV123/<name>.txt over data_seq/UAV123/<name>/).

    The official sub-range sequences (bird1_1, ... cut out of one long folder by the benchmark's config) are not
    expanded: an annotation without a folder of its own name is skipped.
    """
    if split not in (None, "test"):
        raise DatasetError(f"UAV123 has only a test split, not {split!r}")
    anno = root / "anno" / "UAV123"
    data = root / "data_seq" / "UAV123"
    seqs = []
    for txt in sorted(anno.glob("*.txt"), key=lambda p: natural_key(p.name)):
        folder = data / txt.stem
        if not folder.is_dir():
            continue
        frames = list_images(folder)
        if not frames:
            continue
        boxes = read_boxes(txt, one_based=True, n_frames=len(frames))
        seqs.append(Sequence(txt.stem, frames, boxes, {"dataset": "uav123"}))
    return seqs


# -- entry points -------------------------------------------------------------------------------------------------

def detect_format(root) -> str:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root not found: {root}")
    if (root / "anno" / "UAV123").is_dir() and (root / "data_seq" / "UAV123").is_dir():
        return "uav123"
    if (root / "list.txt").is_file() or any((p / "list.txt").is_file() for p in root.iterdir() if p.is_dir()):
        return "got10k"
    subdirs = [p for p in root.iterdir() if p.is_dir()]
    if any((p / "img").is_dir() and any(p.glob("groundtruth_rect*.txt")) for p in subdirs):
        return "otb"
    for cls in subdirs:
        if any((s / "img").is_dir() and (s / "groundtruth.txt").is_file() for s in cls.iterdir() if s.is_dir()):
            return "lasot"
    raise DatasetError(f"{root} has no recognisable dataset layout (expected OTB, GOT-10k, LaSOT or UAV123)")


_OPENERS = {"otb": _open_otb, "got10k": _open_got10k, "lasot": _open_lasot, "uav123": _open_uav123}


def open_dataset(root, format="auto", split=None, names=None) -> list:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root not found: {root}")
    fmt = detect_format(root) if format == "auto" else format
    if fmt not in _OPENERS:
        raise DatasetError(f"unknown dataset format {fmt!r}: use auto, {', '.join(FORMATS)}")
    seqs = _OPENERS[fmt](root, split)
    if names is not None:
        by_name = {s.name: s for s in seqs}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise DatasetError(f"no sequence named {unknown[0]!r} in {root}"
                               + (f" (split {split})" if split else ""))
        seqs = [by_name[n] for n in names]
    if not seqs:
        raise DatasetError(f"{root} holds no sequences" + (f" in split {split!r}" if split else ""))
    return seqs
