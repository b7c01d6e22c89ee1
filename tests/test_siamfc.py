import numpy as np
import pytest
import torch

from siamtrack.api import load_model, make_tracker
from siamtrack.config import load_config
from siamtrack.data.synthetic import MovingSquare
from siamtrack.errors import BoxError, FrameError
from siamtrack.models import build_model

from conftest import REPO


@pytest.fixture
def cfg():
    return load_config(REPO / "experiments" / "siamfc_alexnet.yaml")


def test_alexnet_shapes(cfg):
    model = build_model(cfg.model).eval()
    with torch.no_grad():
        assert model.embed(torch.zeros(1, 3, 127, 127)).shape == (1, 256, 6, 6)
        assert model.embed(torch.zeros(1, 3, 255, 255)).shape == (1, 256, 22, 22)
        assert model(torch.zeros(2, 3, 127, 127), torch.zeros(2, 3, 239, 239)).shape == (2, 1, 15, 15)
        model.template(torch.rand(2, 3, 127, 127) * 255)
        x = torch.rand(6, 3, 255, 255) * 255
        both = model.track(x)                      # 2 targets x 3 scales in one pass
        assert both.shape == (6, 1, 17, 17)
        kernels = model.kernels
        alone = model.track(x[3:], kernels[1:2])   # the second target on its own
        assert torch.allclose(both[3:], alone, atol=1e-4)


class PeakModel(torch.nn.Module):
    """Stands in for the network: every search crop gets a Gaussian response peaked `offset` cells from the centre,
    so the tracker's geometry can be checked exactly."""
    stride = 8

    def __init__(self, offset):
        super().__init__()
        self.offset = offset

    def template(self, z):
        return torch.zeros(z.shape[0])

    def track(self, x, kernels=None):
        ys, xs = torch.meshgrid(torch.arange(17.0), torch.arange(17.0), indexing="ij")
        dx, dy = self.offset
        r = 5 * torch.exp(-((xs - 8 - dx) ** 2 + (ys - 8 - dy) ** 2) / 2.0)
        return r.expand(x.shape[0], 1, 17, 17)


def test_displacement_geometry(cfg):
    cfg.tracker.window_influence = 0.0
    tracker = make_tracker(PeakModel((2, -1)), cfg, torch.device("cpu"))
    frame = np.zeros((480, 640, 3), np.uint8)
    tracker.init(frame, (300, 200, 40, 60))
    x_sz = tracker.x_sz[0]
    r = tracker.update(frame)
    # 1 response cell = 8 search-crop px = 8 * x_sz / 255 frame px; the middle scale wins (side scales penalised)
    cx, cy = r.box[0] + r.box[2] / 2, r.box[1] + r.box[3] / 2
    cell = 8 * x_sz / 255
    assert abs(cx - (320 + 2 * cell)) < 0.6 * cell / 16 * 2
    assert abs(cy - (230 - 1 * cell)) < 0.6 * cell / 16 * 2
    assert np.allclose(r.box[2:], [40, 60])
    assert 0 < r.score <= 1


def test_multi_target_equals_single_runs(siamfc_checkpoint):
    seqs = [MovingSquare(seed=1), MovingSquare(seed=1, size=30)]
    model, cfg, _ = load_model(siamfc_checkpoint, device="cpu")
    frames = [seqs[0].frame(i) for i in range(4)]
    b0, b1 = seqs[0].box(0), np.array([20.0, 30.0, 30, 30])
    multi = make_tracker(model, cfg, torch.device("cpu"))
    multi.init_many(frames[0], [b0, b1])
    singles = [make_tracker(model, cfg, torch.device("cpu")) for _ in range(2)]
    singles[0].init(frames[0], b0)
    singles[1].init(frames[0], b1)
    for f in frames[1:]:
        m = multi.update_many(f)
        s = [t.update(f) for t in singles]
        for a, b in zip(m, s):
            assert np.allclose(a.box, b.box, atol=1e-3)
            assert abs(a.score - b.score) < 1e-4


def test_torch_crop_path_gives_the_same_boxes(siamfc_checkpoint):
    seq = MovingSquare(seed=2)
    model, cfg, _ = load_model(siamfc_checkpoint, device="cpu")
    a = make_tracker(model, cfg, torch.device("cpu"))
    b = make_tracker(model, cfg, torch.device("cpu"), crop_on_device=True)
    a.init(seq.frame(0), seq.box(0))
    b.init(seq.frame(0), seq.box(0))
    for i in range(1, 6):
        ra, rb = a.update(seq.frame(i)), b.update(seq.frame(i))
        assert np.abs(ra.box - rb.box).max() < 1.0


def test_bad_boxes_and_frames(siamfc_checkpoint):
    model, cfg, _ = load_model(siamfc_checkpoint, device="cpu")
    t = make_tracker(model, cfg, torch.device("cpu"))
    frame = np.zeros((100, 100, 3), np.uint8)
    for bad in ([np.nan, 0, 10, 10], [0, 0, 0, 10], [200, 200, 10, 10], [-50, 0, 20, 20], [1, 2, 3]):
        with pytest.raises(BoxError):
            t.init(frame, bad)
    with pytest.raises(FrameError):
        t.init(np.zeros((10, 10, 5), np.uint8), [1, 1, 5, 5])
    # grayscale, BGRA and 16-bit frames are converted, not rejected
    t.init(np.zeros((100, 100), np.uint8), [10, 10, 20, 20])
    assert np.all(np.isfinite(t.update(np.zeros((100, 100, 4), np.uint8)).box))
    assert np.all(np.isfinite(t.update(np.zeros((100, 100, 3), np.uint16)).box))
    # a frame that changes size, and one smaller than the target
    assert np.all(np.isfinite(t.update(np.zeros((50, 70, 3), np.uint8)).box))
    assert np.all(np.isfinite(t.update(np.zeros((8, 8, 3), np.uint8)).box))
