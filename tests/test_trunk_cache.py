"""Training on cached features of a frozen trunk: the cache is built once, reused on --resume, and training on it
gives the same result as an uninterrupted run."""
import torch

from siamtrack.checkpoint import load_checkpoint
from siamtrack.config import load_config
from siamtrack.train.__main__ import main as train_main
from siamtrack.train.trunk_cache import CachedPairs

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
