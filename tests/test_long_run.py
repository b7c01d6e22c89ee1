"""Long runs: resident memory stays flat, and the same input gives the same boxes.

The full check is `python tools/long_run.py --frames 10000` (10,000 frames, a minute or more per thousand on a
shared CPU); here the same `long_run` tracks 300 frames of a random-init siamrpn-lite through the torch backend, and
of the default model through the default backend (onnxruntime int8), enough for any per-frame leak of the tracker or
the backend above ~100 kB a frame to show.
"""
import importlib.util

import numpy as np
import pytest

from conftest import REPO

spec = importlib.util.spec_from_file_location("long_run", REPO / "tools" / "long_run.py")
long_run_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(long_run_tool)

CONFIG = REPO / "experiments" / "siamrpn_lite.yaml"


def test_memory_stays_flat():
    if long_run_tool.rss_mb() is None:
        pytest.skip("no way to read resident memory here (no psutil, no /proc)")
    out = long_run_tool.long_run(long_run_tool.random_init_tracker(CONFIG), frames=300, warmup=60, block=80)
    assert out["growth_mb"] < 50, out
    assert np.all(np.isfinite(out["boxes"]))
    assert len(out["fps_per_block"]) == 4 and min(out["fps_per_block"]) > 0


def test_memory_stays_flat_on_the_default_backend():
    from siamtrack import load_tracker, zoo
    from siamtrack.errors import CheckpointError
    pytest.importorskip("onnxruntime")
    if long_run_tool.rss_mb() is None:
        pytest.skip("no way to read resident memory here (no psutil, no /proc)")
    try:
        name = zoo.default_model()
    except CheckpointError:
        pytest.skip("no shipped weights")
    tracker = load_tracker(name, device="cpu")
    assert tracker.model.name == "onnxruntime"
    out = long_run_tool.long_run(tracker, frames=300, warmup=60, block=80)
    assert out["growth_mb"] < 50, out
    assert np.all(np.isfinite(out["boxes"]))


@pytest.mark.parametrize("settings", [{}, dict(uncertain_below=0.999, lost_below=0.999, lost_patience=1,
                                               recover_above=0.9999, recovery_tiles=4)],
                         ids=["default", "lost-and-searching"])
def test_same_input_same_boxes(settings):
    # the second config declares the random network's target lost at once, so the tiled search runs every frame
    tracker = long_run_tool.random_init_tracker(CONFIG, **settings)
    first = long_run_tool.long_run(tracker, frames=20, warmup=5, seed=3)
    second = long_run_tool.long_run(tracker, frames=20, warmup=5, seed=3)
    assert np.array_equal(first["boxes"], second["boxes"])
    if settings:
        assert first["states"].get("lost", 0) > 0
