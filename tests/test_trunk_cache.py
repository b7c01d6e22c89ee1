"""Training on a bank of cached features of a frozen trunk: built once, shared by runs and reused on --resume, grown
rather than rebuilt, resumed after an interrupted build, and training on it gives the same result as an
uninterrupted run."""
import json

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
from siamtrack.train.trunk_cache import CachedPairs, Segment, build_trunk_cache

from test_train import CONFIG, make_root

CACHED = CONFIG.replace("  seed: 3\n", "  seed: 3\n  cache_trunk_pairs: 8\n  freeze_backbone_epochs: 100\n")


def run(root, out, *extra):
    return train_main(["--config", str(root / "cached.yaml"), "--data", str(root / "data"), "--no-val",
                       "--out", str(out), "--threads", "1", "--bank-dir", str(root / "banks"), *extra])


def the_bank(root):
    """(folder, segment folder) of the one bank a test's runs made."""
    (bank,) = (root / "banks").iterdir()
    return bank, bank / "mixed"


def test_cached_trunk_training_resumes_exactly(tmp_path):
    make_root(tmp_path / "data")
    (tmp_path / "cached.yaml").write_text(CACHED)
    assert run(tmp_path, tmp_path / "full", "--max-steps", "6") == 0
    bank, mixed = the_bank(tmp_path)
    stamp = (mixed / "xf.bin").stat().st_mtime_ns
    assert run(tmp_path, tmp_path / "part", "--max-steps", "3") == 0      # another run of the same pairs shares it
    assert run(tmp_path, tmp_path / "part", "--max-steps", "6", "--resume") == 0
    assert the_bank(tmp_path)[0] == bank and (mixed / "xf.bin").stat().st_mtime_ns == stamp  # reused, not rebuilt
    full = load_checkpoint(tmp_path / "full" / "last.pth")
    part = load_checkpoint(tmp_path / "part" / "last.pth")
    for k, v in full["model"].items():
        assert torch.equal(v, part["model"][k]), k
    (seg,) = [Segment.open(mixed, 8)]
    assert seg.arrays["zf"].dtype == np.float16 and len(seg) == 8


def test_cached_pairs_shuffle_per_epoch_deterministically():
    arrays = {"zf": np.arange(10.0).reshape(10, 1), "xf": np.zeros((10, 1)), "box": np.zeros((10, 4)),
              "negative": np.zeros(10)}
    halves = [Segment({k: v[:4] for k, v in arrays.items()}), Segment({k: v[4:] for k, v in arrays.items()})]
    a, b = CachedPairs(halves, seed=1), CachedPairs(halves, seed=1)
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
    bank, mixed = the_bank(tmp_path)
    seg = Segment.open(mixed, 4)
    # the output of block 7 (stage 4: 80 channels, stride 16): 255 -> 17x17, 127 -> 9x9
    assert json.loads((bank / "bank.json").read_text())["cut"] == 8
    assert seg.arrays["xf"].shape[1:] == (80, 17, 17) and seg.arrays["zf"].shape[1:] == (80, 9, 9)
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


def _stack(segments):
    return {k: np.concatenate([np.asarray(s.arrays[k]) for s in segments]) for k in ("zf", "xf", "box", "negative")}


def test_still_image_tail_extends_a_mixed_bank(tmp_path):
    make_root(tmp_path / "data")
    cfg = config_from_dict(yaml.safe_load(CONFIG.replace("static_image_prob: 0.0", "static_image_prob: 0.3")))
    data = PairDataset(open_dataset(tmp_path / "data", split="train"), cfg, static=make_stills(tmp_path / "coco"),
                       seed=3)
    torch.manual_seed(0)
    model = build_model(cfg.model)

    def build(pairs, still, root):
        return _stack(build_trunk_cache(model, data, pairs, 2, 0, "cpu", root, static_pairs=still))

    root = tmp_path / "banks"
    mixed = build(4, 0, root)
    (bank,) = root.iterdir()
    stamp = (bank / "mixed" / "zf.bin").stat().st_mtime_ns
    grown = build(4, 4, root)                       # computes only the 4 still-image pairs
    assert (bank / "mixed" / "zf.bin").stat().st_mtime_ns == stamp
    fresh = build(4, 4, tmp_path / "fresh")
    assert grown["box"].shape[0] == 8 and grown["zf"].dtype == np.float16
    for k in ("zf", "xf", "box", "negative"):
        np.testing.assert_array_equal(grown[k], fresh[k])
        np.testing.assert_array_equal(grown[k][:4], mixed[k])
    still = data.static_only()
    for i in range(4, 8):                           # the tail is the still-image sampler's pairs 4..7
        np.testing.assert_array_equal(grown["box"][i], still[i][2].numpy())
    assert not any(np.array_equal(grown["box"][i], data[i][2].numpy()) for i in range(4, 8))
    # more mixed pairs: the 4 stored are kept and 2 more appended; the still-image tail then starts at 6
    other, want = build(6, 2, root), build(6, 2, tmp_path / "fresh2")
    for k in ("zf", "xf", "box", "negative"):
        np.testing.assert_array_equal(other[k], want[k])
    np.testing.assert_array_equal(other["zf"][:4], mixed["zf"])
    assert sorted(p.name for p in bank.iterdir()) == ["bank.json", "mixed", "still-from-4", "still-from-6"]
    # a bank drawn from other data (one still image fewer) or with other settings is another bank
    data = PairDataset(open_dataset(tmp_path / "data", split="train"), cfg,
                       static=make_stills(tmp_path / "coco2")[:-1], seed=3)
    other, want = build(6, 2, root), build(6, 2, tmp_path / "fresh3")
    assert len(list(root.iterdir())) == 2
    for k in ("zf", "xf", "box", "negative"):
        np.testing.assert_array_equal(other[k], want[k])


def test_an_interrupted_build_goes_on_where_it_stopped(tmp_path):
    make_root(tmp_path / "data")
    cfg = config_from_dict(yaml.safe_load(CONFIG))
    data = PairDataset(open_dataset(tmp_path / "data", split="train"), cfg, seed=3)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    want = _stack(build_trunk_cache(model, data, 6, 2, 0, "cpu", tmp_path / "whole"))
    root = tmp_path / "banks"
    build_trunk_cache(model, data, 4, 2, 0, "cpu", root)
    (bank,) = root.iterdir()
    for k in ("zf", "xf", "box", "negative"):      # a batch written but not recorded before the process died
        with open(bank / "mixed" / f"{k}.bin", "ab") as f:
            f.write(b"\x07" * 24)
    got = _stack(build_trunk_cache(model, data, 6, 2, 0, "cpu", root))
    for k in ("zf", "xf", "box", "negative"):
        np.testing.assert_array_equal(got[k], want[k])
    assert json.loads((bank / "mixed" / "meta.json").read_text())["count"] == 6


def test_a_bank_is_keyed_by_the_frozen_weights(tmp_path):
    make_root(tmp_path / "data")
    cfg = config_from_dict(yaml.safe_load(CONFIG))
    data = PairDataset(open_dataset(tmp_path / "data", split="train"), cfg, seed=3)
    for seed in (0, 1):
        torch.manual_seed(seed)
        build_trunk_cache(build_model(cfg.model), data, 2, 2, 0, "cpu", tmp_path / "banks")
    assert len(list((tmp_path / "banks").iterdir())) == 2
