"""Which data a training run reads: the user's roots, or the project's shared data beside the repository."""
from __future__ import annotations

from pathlib import Path

from ..data.datasets import open_dataset
from ..data.static import open_static
from ..errors import DatasetError
from ..shared import shared_path


def _default_split(root, split):
    # A root with an INDEX.tsv split column is trained on its train split unless told otherwise: never on val.
    if split is None and (Path(root) / "INDEX.tsv").is_file():
        return "train"
    return split


def training_data(data_roots, data_split=None, coco=None, data_format="auto", static_splits=("train2017",)):
    """-> (sequences, static items, description dict). Falls back to the shared data when no root is given.
    The still images are those of `static_splits` of the `coco` root, concatenated in that order."""
    shared = shared_path("data")
    if not data_roots:
        if shared is None:
            raise DatasetError("no training data: pass --data ROOT (OTB, GOT-10k, LaSOT or UAV123 layout)")
        data_roots = [shared / "sot"]
        if coco is None and (shared / "coco128").is_dir():
            coco = shared / "coco128"
    sequences, used = [], []
    for root in data_roots:
        split = _default_split(root, data_split)
        seqs = open_dataset(root, format=data_format, split=split)
        sequences += seqs
        used.append({"root": str(root), "split": split, "sequences": len(seqs),
                     "frames": int(sum(len(s) for s in seqs)), "valid_frames": int(sum(s.valid.sum() for s in seqs))})
    if isinstance(static_splits, str):  # `static_splits: val2017` in a YAML means the one split
        static_splits = [static_splits]
    static = [item for split in static_splits for item in open_static(coco, split)] if coco else []
    desc = {"sequences": used}
    if coco:
        desc["static"] = {"root": str(coco), "splits": list(static_splits), "images": len(static),
                          "boxes": int(sum(len(item[1]) for item in static))}
    return sequences, static, desc


def validation_data(val_root, val_split=None, no_val=False):
    """-> list of sequences (empty when there is nothing to validate on)."""
    if no_val:
        return []
    if val_root is None:
        shared = shared_path("data")
        if shared is None or not (shared / "sot" / "INDEX.tsv").is_file():
            return []
        return open_dataset(shared / "sot", split=val_split or "val")
    split = val_split
    if split is None and (Path(val_root) / "INDEX.tsv").is_file():
        split = "val"
    return open_dataset(val_root, split=split)
