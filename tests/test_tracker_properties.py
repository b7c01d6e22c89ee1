"""Property tests: any finite input frame and any box inside it gives finite boxes inside the frame, never an
exception."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from siamtrack import boxes as B
from siamtrack.api import load_model, make_tracker


@pytest.fixture(scope="module")
def siamfc(siamfc_checkpoint):
    model, cfg, _ = load_model(siamfc_checkpoint, device="cpu")
    return model, cfg


@st.composite
def frame_and_box(draw):
    h = draw(st.integers(4, 400))
    w = draw(st.integers(4, 400))
    x = draw(st.floats(0, w - 1))
    y = draw(st.floats(0, h - 1))
    bw = draw(st.floats(0.5, 2 * w))
    bh = draw(st.floats(0.5, 2 * h))
    kind = draw(st.sampled_from(["noise", "flat", "gray", "bgra", "u16"]))
    seed = draw(st.integers(0, 2 ** 16))
    return h, w, (x, y, bw, bh), kind, seed


def make_frame(h, w, kind, rng):
    if kind == "flat":
        return np.full((h, w, 3), rng.integers(256), np.uint8)
    if kind == "gray":
        return rng.integers(0, 256, (h, w), dtype=np.uint8)
    if kind == "bgra":
        return rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    if kind == "u16":
        return rng.integers(0, 65536, (h, w, 3), dtype=np.uint16)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame_and_box(), st.integers(2, 60), st.integers(2, 60))
def test_update_never_fails_on_finite_input(siamfc, case, h2, w2):
    model, cfg = siamfc
    h, w, box, kind, seed = case
    rng = np.random.default_rng(seed)
    tracker = make_tracker(model, cfg, torch.device("cpu"))
    tracker.init(make_frame(h, w, kind, rng), box)
    for fh, fw in ((h, w), (h2, w2)):     # the second frame may have another size
        r = tracker.update(make_frame(fh, fw, kind, rng))
        assert np.all(np.isfinite(r.box)) and np.isfinite(r.score) and 0 <= r.score <= 1
        c = B.clip_xywh(r.box, fw, fh)
        assert c[0] >= 0 and c[1] >= 0 and c[0] + c[2] <= fw + 1e-6 and c[1] + c[3] <= fh + 1e-6
        cx, cy = r.box[0] + r.box[2] / 2, r.box[1] + r.box[3] / 2
        assert 0 <= cx <= fw and 0 <= cy <= fh
