"""Training with a frozen trunk on a bank of its cached features.

When the backbone (or its first part) stays frozen, its output for a pair never changes during training, so it is
computed once: `build_trunk_cache` runs the pair sampler and stores the frozen part's features of both crops, and
`CachedPairs` serves them to the trainer, which then only runs the rest of the network. On this project's two-core
CPU that turns a few pairs per second into tens or hundreds, at the price of a fixed bank of augmentations instead of
fresh ones every epoch. When only the stem and the first blocks are frozen, the bank holds the output of that part and
the trainer also runs the later blocks, which train.

A bank is a folder under the bank root (`siamtrack train --bank-dir`, default <cache>/banks), named by a digest of
everything that decides its contents: the sampler (`PairDataset.fingerprint()`: data, augmentation, seed), where the
trunk is cut, and the frozen weights. Every run that draws the same pairs through the same frozen trunk shares it, so
it is built once per machine. Its features are float16 in memory-mapped files, so it can outgrow RAM. It grows: pair i
is a pure function of i, so a run that asks for more pairs computes only those the bank lacks. A build appends batch by
batch and records its progress after each one, so an interrupted build goes on where it stopped.

Two segments: `mixed`, pairs 0.. of the sampler, and `still-from-P`, pairs P.. of its still-image-only copy (P the
number of mixed pairs asked for), which raises a bank's share of COCO-style pairs without changing the mixed ones.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.pairs import loader_workers
from ..errors import ConfigError

BANK_VERSION = 2
FIELDS = ("zf", "xf", "box", "negative")
DTYPES = {"zf": np.float16, "xf": np.float16, "box": np.float32, "negative": np.float32}


def trunk_cut(model):
    """Where the cached part of the backbone ends, from which parameters train (requires_grad, as the trainer's
    freezing left them); raise ConfigError when the frozen ones are not a leading part.

    None: the whole backbone is frozen and the cache holds its output. k: the backbone is a stem and `blocks`
    (EfficientNet), the stem and blocks[:k] are frozen and every later block trains, so the cache holds the output
    of block k - 1 and training runs blocks[k:] (at backbone_lr_mult) on it."""
    named = [(n, p) for n, p in model.named_parameters() if n.startswith("backbone.")]
    frozen = [not p.requires_grad for _, p in named]
    if named and all(frozen):
        return None
    if getattr(model.backbone, "blocks", None) is not None and any(frozen):
        block_of = [int(n.split(".")[2]) if n.startswith("backbone.blocks.") else -1 for n, _ in named]
        k = min(b for b, f in zip(block_of, frozen) if not f)
        if k >= 0 and all(f == (b < k) for b, f in zip(block_of, frozen)):
            return k
    raise ConfigError("cache_trunk_pairs needs the backbone's first part (the stem and its first blocks, or all of "
                      "it) frozen for the whole run, and everything after it training")


def frozen_digest(backbone, cut):
    """sha256 of the weights and statistics of the part of `backbone` a bank caches (all of it when cut is None)."""
    h = hashlib.sha256()
    for name, t in sorted(backbone.state_dict().items()):
        part = name.split(".")
        if cut is not None and not (part[0] == "stem" or (part[0] == "blocks" and int(part[1]) < cut)):
            continue
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def bank_folder(root, model, dataset, cut):
    """The bank of this sampler, cut and frozen weights under `root` (its description in bank.json)."""
    what = {"version": BANK_VERSION, "sampler": dataset.fingerprint(), "cut": -1 if cut is None else int(cut),
            "frozen": frozen_digest(model.backbone, cut)}
    folder = Path(root) / hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "bank.json").is_file():
        _write_json(folder / "bank.json", what)
    return folder


class Segment:
    """Pairs start .. start + n - 1 of one sampler: arrays indexable by pair (memory-mapped when read from disk)."""

    def __init__(self, arrays):
        self.arrays = arrays
        self.n = len(arrays["box"])

    def __len__(self):
        return self.n

    @classmethod
    def open(cls, folder, n):
        meta = _read_json(Path(folder) / "meta.json")
        shapes = {"zf": meta["zshape"], "xf": meta["xshape"], "box": [4], "negative": []}
        return cls({k: np.memmap(Path(folder) / f"{k}.bin", dtype=DTYPES[k], mode="r", shape=(n, *shapes[k]))
                    for k in FIELDS})


def build_trunk_cache(model, dataset, pairs, batch_size, workers, device, root, cut=None, static_pairs=0):
    """The bank of `pairs` pairs of `dataset` (epoch 0) followed by `static_pairs` pairs of its still images
    (`dataset.static_only()`, indices pairs .. pairs + static_pairs - 1), as a list of Segments; computes only what the
    bank under `root` lacks. Features: the backbone's output, or with `cut` k the output of its block k - 1."""
    folder = bank_folder(root, model, dataset, cut)
    t0 = time.monotonic()
    made = _extend(model, dataset, folder / "mixed", 0, pairs, batch_size, workers, device, cut)
    segments = [Segment.open(folder / "mixed", pairs)] if pairs else []
    if static_pairs:
        still = folder / f"still-from-{pairs}"
        made += _extend(model, dataset.static_only(), still, pairs, static_pairs, batch_size, workers, device, cut)
        segments.append(Segment.open(still, static_pairs))
    print(f"trunk bank {folder}: {pairs + static_pairs} pairs ({made} computed now, in "
          f"{time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return segments


def _extend(model, dataset, folder, start, n, batch_size, workers, device, cut):
    """Make `folder` hold at least pairs start .. start + n - 1 of `dataset`; -> how many were computed."""
    if n <= 0:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "meta.json"
    meta = _read_json(meta_path) if meta_path.is_file() else None
    if meta is None or meta.get("start") != start:
        meta = {"start": start, "count": 0, "zshape": None, "xshape": None}
    have = meta["count"]
    if have >= n:
        return 0
    # Bytes past the recorded count are a batch an interrupted build wrote but did not record: drop them.
    per_pair = {"zf": meta["zshape"], "xf": meta["xshape"], "box": [4], "negative": []}
    files = {}
    try:
        for k in FIELDS:
            files[k] = open(folder / f"{k}.bin", "ab")   # appends go to the end, wherever truncate left it
            shape = per_pair[k]
            files[k].truncate(0 if shape is None else have * int(np.prod(shape)) * np.dtype(DTYPES[k]).itemsize)
        for batch in _features(model, dataset, range(start + have, start + n), batch_size, workers, device, cut):
            for k in FIELDS:
                files[k].write(np.ascontiguousarray(batch[k], dtype=DTYPES[k]).tobytes())
                files[k].flush()
            meta["zshape"], meta["xshape"] = list(batch["zf"].shape[1:]), list(batch["xf"].shape[1:])
            meta["count"] += len(batch["box"])
            _write_json(meta_path, meta)
    finally:
        for f in files.values():
            f.close()
    return n - have


@torch.inference_mode()
def _features(model, dataset, indices, batch_size, workers, device, cut):
    """Yields {"zf", "xf", "box", "negative"} numpy arrays batch by batch for the pairs `indices` of `dataset`
    (epoch 0)."""
    dataset.set_epoch(0)
    loader = DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size, shuffle=False,
                        **loader_workers(workers))
    backbone = model.backbone
    was_training = backbone.training
    backbone.eval()
    try:
        for z, x, box, negative in tqdm(loader, desc="caching trunk features", file=sys.stderr, mininterval=30):
            out = {"box": box.float().numpy(), "negative": negative.float().numpy()}
            for name, crops in (("zf", z), ("xf", x)):
                # channels-last: the depthwise-heavy trunk runs ~1.7x faster on CPU in that layout
                crops = crops.to(device).contiguous(memory_format=torch.channels_last)
                feats = backbone(crops) if cut is None else backbone(crops, stop=cut)
                out[name] = feats.to("cpu", torch.float16).contiguous().numpy()
            yield out
    finally:
        backbone.train(was_training)


def _read_json(path):
    return json.loads(Path(path).read_text())


def _write_json(path, data):
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


class CachedPairs(Dataset):
    """Serves (zf, xf, box, negative) from a bank's segments; the trainer feeds them to
    `SiameseNet.forward_from_trunk`. `cut`: the backbone block training starts from (None: the neck).

    Each epoch is one pass in an order drawn from (seed, epoch), so the trainer's in-order resumable sampler still
    resumes exactly."""

    def __init__(self, segments, cut=None, seed=0):
        self.segments = list(segments)
        self.starts = np.cumsum([0] + [len(s) for s in self.segments])
        self.cut = cut
        self.seed = int(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch):
        g = torch.Generator().manual_seed(self.seed * 100003 + int(epoch))
        self.order = torch.randperm(len(self), generator=g)

    def __len__(self):
        return int(self.starts[-1])

    def __getitem__(self, i):
        j = int(self.order[i])
        s = int(np.searchsorted(self.starts, j, side="right")) - 1
        a, k = self.segments[s].arrays, j - int(self.starts[s])
        return (torch.from_numpy(np.array(a["zf"][k], dtype=np.float32)),
                torch.from_numpy(np.array(a["xf"][k], dtype=np.float32)),
                torch.from_numpy(np.array(a["box"][k], dtype=np.float32)),
                torch.tensor(float(a["negative"][k])))
