"""Training with a frozen trunk on cached features.

When the whole backbone stays frozen (an ImageNet-pretrained trunk, as for siamrpn-lite), its output for a pair never
changes during training, so it is computed once: `build_trunk_cache` runs the pair sampler for `pairs` pairs and keeps
the backbone features of both crops (float16), and `CachedPairs` serves them to the trainer, which then only runs the
neck and the head. On this project's two-core CPU that turns a few pairs per second into hundreds, at the price of a
fixed bank of augmentations instead of fresh ones every epoch. When only the backbone's first part is frozen (the stem
and its first blocks), the cache holds the output of that part and the trainer also runs the later blocks, which
train.

The bank is saved beside the run (`trunk_cache.pt`, weights_only-loadable tensors) so `--resume` does not rebuild it.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.pairs import worker_init
from ..errors import ConfigError

CACHE_VERSION = 1


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


@torch.inference_mode()
def build_trunk_cache(model, dataset, pairs, batch_size, workers, device, path=None, cut=None, static_pairs=0):
    """-> {"zf", "xf" (float16), "box" (float32), "negative" (float32), "static_from"} for `pairs` pairs of `dataset`
    (epoch 0) followed by `static_pairs` pairs drawn from its still images only (`dataset.static_only()`, indices
    pairs .. pairs + static_pairs): the backbone's output, or with `cut` k the output of its block k - 1 (see
    trunk_cut). The still-image tail raises a bank's share of COCO-style pairs without changing the mixed pairs
    before it, so a bank built without it is extended, not rebuilt. A stored bank is reused only when it was drawn
    by the same sampler (`dataset.fingerprint()`: data, settings, seed)."""
    path = Path(path) if path else None
    # stored as "cut": the block the features stop before, -1 for the whole backbone (absent in older banks: -1)
    stored_cut = -1 if cut is None else int(cut)
    total = pairs + static_pairs
    sampler = dataset.fingerprint()
    have, kept = None, 0
    if path is not None and path.is_file():
        have = torch.load(path, map_location="cpu", weights_only=True)
        if (have.get("version") != CACHE_VERSION or have.get("cut", -1) != stored_cut
                or have.get("sampler") != sampler):
            have = None
    if have is not None:
        # Pair i of a bank is mixed when i < static_from (absent in older banks: every pair is mixed). The stored
        # bank is reused as far as it agrees with the one asked for.
        n = have["box"].shape[0]
        kept = min(n, total)
        if min(have.get("static_from", n), kept) != min(pairs, kept):
            have, kept = None, 0
    parts = [] if have is None else [{k: v[:kept] for k, v in have.items() if isinstance(v, torch.Tensor)}]
    if kept == total:
        return {"version": CACHE_VERSION, "cut": stored_cut, "sampler": sampler, "static_from": pairs, **parts[0]}
    t0 = time.monotonic()
    if kept < pairs:
        parts.append(_features(model, dataset, range(kept, pairs), batch_size, workers, device, cut))
    if static_pairs:
        parts.append(_features(model, dataset.static_only(), range(max(kept, pairs), total), batch_size, workers,
                               device, cut))
    blob = {"version": CACHE_VERSION, "cut": stored_cut, "sampler": sampler, "static_from": pairs,
            **{k: torch.cat([p[k] for p in parts]) for k in parts[-1]}}
    print(f"cached trunk features of {len(blob['box'])} pairs in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    if path is not None:
        tmp = path.with_name(path.name + ".tmp")
        torch.save(blob, tmp)
        tmp.replace(path)
    return blob


def _features(model, dataset, indices, batch_size, workers, device, cut):
    """Trunk features and boxes of the pairs `indices` of `dataset` (epoch 0): a pair is a pure function of its
    index, so a bigger bank only computes the pairs a smaller one lacks."""
    dataset.set_epoch(0)
    loader = DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size, shuffle=False,
                        num_workers=workers, worker_init_fn=worker_init if workers else None,
                        prefetch_factor=4 if workers else None)
    backbone = model.backbone
    was_training = backbone.training
    backbone.eval()
    zs, xs, boxes, negs = [], [], [], []
    for z, x, box, negative in tqdm(loader, desc="caching trunk features", file=sys.stderr, mininterval=30):
        for crops, feats in ((z, zs), (x, xs)):
            # channels-last: the depthwise-heavy trunk runs ~1.7x faster on CPU in that layout
            crops = crops.to(device).contiguous(memory_format=torch.channels_last)
            feats.append((backbone(crops) if cut is None else backbone(crops, stop=cut)).to("cpu", torch.float16))
        boxes.append(box.float())
        negs.append(negative.float())
    backbone.train(was_training)
    return {"zf": torch.cat(zs), "xf": torch.cat(xs), "box": torch.cat(boxes), "negative": torch.cat(negs)}


class CachedPairs(Dataset):
    """Serves (zf, xf, box, negative) from a cache; the trainer feeds them to `SiameseNet.forward_from_trunk`.

    Each epoch is one pass in an order drawn from (seed, epoch), so the trainer's in-order resumable sampler still
    resumes exactly."""

    def __init__(self, blob, seed=0):
        self.zf, self.xf, self.box, self.negative = blob["zf"], blob["xf"], blob["box"], blob["negative"]
        cut = blob.get("cut", -1)
        self.cut = None if cut == -1 else int(cut)  # the backbone block training starts from (None: the neck)
        self.seed = int(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch):
        g = torch.Generator().manual_seed(self.seed * 100003 + int(epoch))
        self.order = torch.randperm(len(self), generator=g)

    def __len__(self):
        return self.box.shape[0]

    def __getitem__(self, i):
        j = int(self.order[i])
        return self.zf[j].float(), self.xf[j].float(), self.box[j], self.negative[j]
