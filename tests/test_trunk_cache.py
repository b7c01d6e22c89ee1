"""Training on cached features of a frozen trunk: the cache is built once, reused on --resume, and training on it
gives the same result as an uninterrupted run."""
import cv2
import numpy as np
import torch
import yaml

from siamtrack.checkpoint import load_checkpoint
from siamtrack.config import config_from_dict, load_config
from siamtrack.data.datasets import open_dataset
from siamtrack.data.pairs import PairDataset
from siamtrack.data.static import open_static
from siamtrack.models import build_model
from siamtrack.train.__main__ import main as train_main
from siamtrack.train.trunk_cache import CachedPairs, build_trunk_cache

from test_train import CONFIG, make_root

CACHED = CONFIG.replace("  seed: 3\n", "  seed: 3\n  cache_trunk_pairs: 8\n  freeze_backbone_epochs: 100\n")


def run(root, out, *extra):
    return train_main(["--config", str(root / "cached.yaml"), "--data", str(root / "data"), "--no-val",
                       "--out", str(out), "--threads", "1", *extra])


def test_cached_trunk_training_resumes_exactly(tmp_path):
    make_root(tmp_path / "data")
    (tmp_path / "cached.yaml").write_text(CACHED)
    assert run(tmp_path, tmp_path / "full", "--max-steps", "6") == 0
    assert run(tmp_path, tmp_path / "part", "--max-steps", "3") == 0
    cache = tmp_path / "part" / "trunk_cache.pt"
    stamp = cache.stat().st_mtime_ns
    assert run(tmp_path, tmp_path / "part", "--max-steps", "6", "--resume") == 0
    assert cache.stat().st_mtime_ns == stamp            # reused, not rebuilt
    full = load_checkpoint(tmp_path / "full" / "last.pth")
    part = load_checkpoint(tmp_path / "part" / "last.pth")
    for k, v in full["model"].items():
        assert torch.equal(v, part["model"][k]), k
    # the trunk never moved: its weights are those the model was built with
    blob = torch.load(cache, weights_only=True)
    assert blob["zf"].shape[0] == 8 and blob["xf"].dtype == torch.float16


def test_cached_pairs_shuffle_per_epoch_deterministically():
    blob = {"zf": torch.arange(10.0).view(10, 1), "xf": torch.zeros(10, 1), "box": torch.zeros(10, 4),
            "negative": torch.zeros(10)}
    a, b = CachedPairs(blob, seed=1), CachedPairs(blob, seed=1)
    first = [float(a[i][0]) for i in range(10)]
    assert first == [float(b[i][0]) for i in range(10)] and sorted(first) == list(range(10))
    a.set_epoch(1)
    assert [float(a[i][0]) for i in range(10)] != first


def test_cache_needs_a_frozen_trunk(tmp_path):
    make_root(tmp_path / "data")
    (tmp_path / "cached.yaml").write_text(CACHED.replace("freeze_backbone_epochs: 100", "freeze_backbone_epochs: 1"))
    assert run(tmp_path, tmp_path / "out") == 2
    assert load_config(tmp_path / "cached.yaml").train.cache_trunk_pairs == 8


PARTIAL = """
name: tiny-lite
model:
  backbone: {name: efficientnet_lite0, args: {out_stage: 5}}
  neck: {name: adjust, args: {in_channels: 112, out_channels: 16, crop: 7}}
  head: {name: rpn_dw, args: {in_channels: 16, channels: 16, num_anchors: 5}}
tracker: {type: siamrpn, anchor_ratios: [0.33, 0.5, 1.0, 2.0, 3.0], anchor_size: 64}
train:
  epochs: 1
  batch_size: 2
  search_size: 255
  workers: 0
  static_image_prob: 0.0
  negative_pair_prob: 0.5
  checkpoint_minutes: 100
  seed: 3
  cache_trunk_pairs: 4
  freeze_backbone_epochs: 100
  backbone_lr_mult: 0.5
  frozen_backbone_prefixes: [stem, blocks.0, blocks.1, blocks.2, blocks.3, blocks.4, blocks.5, blocks.6, blocks.7]
"""


def test_forward_from_a_partial_trunk_equals_forward():
    cfg = config_from_dict(yaml.safe_load(PARTIAL))
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    z, x = torch.rand(2, 3, 127, 127) * 255, torch.rand(2, 3, 255, 255) * 255
    with torch.no_grad():
        want = model(z, x)
        got = model.forward_from_trunk(model.backbone(z, stop=8), model.backbone(x, stop=8), 8)
    for a, b in zip(want, got):
        torch.testing.assert_close(a, b)


def test_cache_of_the_frozen_first_blocks_trains_the_later_ones(tmp_path):
    make_root(tmp_path / "data")
    (tmp_path / "cached.yaml").write_text(PARTIAL)
    assert run(tmp_path, tmp_path / "out", "--max-steps", "2") == 0
    blob = torch.load(tmp_path / "out" / "trunk_cache.pt", weights_only=True)
    # the output of block 7 (stage 4: 80 channels, stride 16): 255 -> 17x17, 127 -> 9x9
    assert blob["cut"] == 8 and blob["xf"].shape[1:] == (80, 17, 17) and blob["zf"].shape[1:] == (80, 9, 9)
    torch.manual_seed(3)  # the trainer seeds with train.seed before it builds the model
    before = build_model(load_config(tmp_path / "cached.yaml").model).state_dict()
    after = load_checkpoint(tmp_path / "out" / "last.pth")["model"]
    moved = {k for k, v in after.items() if k.startswith("backbone.") and not torch.equal(v, before[k])}
    assert moved and all(k.startswith("backbone.blocks.") and int(k.split(".")[2]) >= 8 for k in moved)


def test_cache_needs_a_leading_frozen_part(tmp_path):
    make_root(tmp_path / "data")
    (tmp_path / "cached.yaml").write_text(PARTIAL.replace("blocks.0, ", ""))  # block 0 would train: no cache
    assert run(tmp_path, tmp_path / "out") == 2


def make_stills(root, n=3):
    """Still images with one box each, YOLO layout (as ../shared/data/coco128)."""
    rng = np.random.default_rng(1)
    (root / "images" / "train2017").mkdir(parents=True)
    (root / "labels" / "train2017").mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(root / "images" / "train2017" / f"{i}.jpg"), rng.integers(0, 255, (120, 160, 3), np.uint8))
        (root / "labels" / "train2017" / f"{i}.txt").write_text("0 0.5 0.5 0.3 0.4\n")
    return open_static(root)


def test_still_image_tail_extends_a_mixed_bank(tmp_path):
    make_root(tmp_path / "data")
    cfg = config_from_dict(yaml.safe_load(CONFIG.replace("static_image_prob: 0.0", "static_image_prob: 0.3")))
    data = PairDataset(open_dataset(tmp_path / "data", split="train"), cfg, static=make_stills(tmp_path / "coco"),
                       seed=3)
    torch.manual_seed(0)
    model = build_model(cfg.model)

    def build(pairs, still, path):
        return build_trunk_cache(model, data, pairs, 2, 0, "cpu", path, static_pairs=still)

    bank = tmp_path / "bank.pt"
    mixed = build(4, 0, bank)
    grown = build(4, 4, bank)                       # computes only the 4 still-image pairs
    fresh = build(4, 4, None)
    assert grown["static_from"] == 4 and grown["box"].shape[0] == 8
    for k in ("zf", "xf", "box", "negative"):
        assert torch.equal(grown[k], fresh[k]) and torch.equal(grown[k][:4], mixed[k]), k
    still = data.static_only()
    for i in range(4, 8):                           # the tail is the still-image sampler's pairs 4..7
        assert torch.equal(grown["box"][i], still[i][2].float())
    assert not any(torch.equal(grown["box"][i], data[i][2].float()) for i in range(4, 8))
    # a bank whose layout disagrees (6 mixed pairs asked, 4 stored) is rebuilt, not silently reused
    other, want = build(6, 2, bank), build(6, 2, None)
    for k in ("zf", "xf", "box", "negative"):
        assert torch.equal(other[k], want[k]), k
    # so is a bank drawn from other data (one still image fewer) or with other settings
    data = PairDataset(open_dataset(tmp_path / "data", split="train"), cfg,
                       static=make_stills(tmp_path / "coco2")[:-1], seed=3)
    other, want = build(6, 2, bank), build(6, 2, None)
    assert other["sampler"] != grown["sampler"]
    for k in ("zf", "xf", "box", "negative"):
        assert torch.equal(other[k], want[k]), k
