"""`siamtrack demo` as a fresh checkout runs it: the bundled clip, tracked by the default (best on val) shipped model,
gives an annotated mp4 and a mean IoU that the trained weights earn; the same model with its learned parts untrained
(see test_shipped_weights) does far worse on the same clip. Skipped when no weights are shipped."""
import re

import pytest

from siamtrack import zoo
from siamtrack.api import load_model
from siamtrack.checkpoint import save_checkpoint
from siamtrack.errors import CheckpointError

from test_cli_track import cli
from test_shipped_weights import _untrained


def _demo_iou(*args):
    r = cli("demo", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout, float(re.search(r"mean IoU against the sample's ground truth: ([0-9.]+)", r.stdout).group(1))


def test_demo_iou_is_earned_by_the_trained_weights(tmp_path):
    try:
        name = zoo.default_model()
    except CheckpointError:
        pytest.skip("no shipped weights")
    out, trained = _demo_iou("--output", tmp_path / "demo.mp4")
    assert f"model: {name}" in out and (tmp_path / "demo.mp4").stat().st_size > 10_000
    model, cfg, _ = load_model(name, device="cpu")
    save_checkpoint(tmp_path / "untrained.pth", _untrained(model, name).state_dict(), cfg.to_dict(), {})
    _, untrained = _demo_iou("--model", tmp_path / "untrained.pth", "--output", tmp_path / "untrained.mp4")
    assert trained > 0.4 and trained > untrained + 0.2, (trained, untrained)
