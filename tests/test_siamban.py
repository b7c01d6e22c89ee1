"""The anchor-free (SiamBAN) path: point geometry, labels and loss, the head's start from an RPN checkpoint, and the
tracker following a target with head outputs built by hand (as tests/test_siamrpn_tracker.py does for anchors)."""
import numpy as np
import pytest
import torch

from siamtrack import boxes as B
from siamtrack.config import ComponentConfig, ModelConfig, TrackerConfig
from siamtrack.models import build_model
from siamtrack.models.ban import adopt_state
from siamtrack.points import decode_ltrb, ltrb_distances, point_grid
from siamtrack.trackers.siamban import SiamBANTracker
from siamtrack.train.ban_objective import BANObjective, label_points
from test_siamrpn_tracker import _frame

CPU = torch.device("cpu")


def test_point_grid_is_centred_on_the_crop():
    pts = point_grid(11, 16, 255)
    assert pts.shape == (121, 2)
    np.testing.assert_allclose(pts[5 * 11 + 5], [127.5, 127.5])
    np.testing.assert_allclose(pts[5 * 11 + 7], [127.5 + 32, 127.5])      # flat index y * R + x


def test_distances_round_trip():
    pts = point_grid(11, 16, 255)
    box = np.array([140.0, 120.0, 70.0, 40.0])
    inside = np.abs(pts - box[:2]).max(1) < 15
    raw = np.log(ltrb_distances(np.broadcast_to(box, (inside.sum(), 4)), pts[inside]) / 16)
    np.testing.assert_allclose(decode_ltrb(raw, pts[inside], 16), np.broadcast_to(box, (inside.sum(), 4)))
    t = torch.as_tensor(raw)
    np.testing.assert_allclose(decode_ltrb(t, torch.as_tensor(pts[inside]), 16).numpy(),
                               np.broadcast_to(box, (inside.sum(), 4)))


def test_labels():
    pts = torch.as_tensor(point_grid(11, 16, 255), dtype=torch.float32)
    boxes = torch.tensor([[127.5, 127.5, 64.0, 64.0],     # a typical target: its central cells
                          [127.5 + 44, 127.5, 12.0, 12.0],   # too small for the inner ellipse to hold a cell point
                          [127.5, 127.5, 64.0, 64.0]])    # a negative pair's other object
    pos, weight = label_points(pts, boxes, torch.tensor([False, False, True]))
    centre = 5 * 11 + 5
    assert pos[0, centre] and pos[0].sum() == 5           # the centre and its 4 neighbours at 16 px < 64/4 = 16 px
    assert weight[0, centre] == 0 and weight[0, 0] == 1   # positives carry no background weight, corners do
    assert pos[1].sum() == 1 and pos[1, 5 * 11 + 8]       # its nearest point (48 px right) is inside it
    assert not pos[2].any()
    assert weight[2, centre] > weight[2, 0] > 0           # the distractor's cells weigh more than the background


def _ban_model():
    cfg = ModelConfig(backbone=ComponentConfig("alexnet", {}), head=ComponentConfig("ban_dw", {"in_channels": 256,
                                                                                          "channels": 32}))
    return build_model(cfg)


def test_objective_learns_a_fixed_batch():
    torch.manual_seed(0)
    model = _ban_model()
    cfg = type("C", (), {})()
    cfg.train = type("T", (), {"search_size": 255})()
    obj = BANObjective(cfg, model)
    z, x = torch.randn(4, 3, 127, 127), torch.randn(4, 3, 255, 255)
    box = torch.tensor([[100.0, 100.0, 60.0, 50.0]] * 3 + [[90.0, 110.0, 40.0, 40.0]])
    negative = torch.tensor([0, 0, 0, 1])
    opt = torch.optim.SGD([p for p in model.head.parameters()], lr=0.05, momentum=0.9)
    with torch.no_grad():
        feats = model.backbone(z), model.backbone(x)
    losses = []
    for _ in range(25):
        out = model.head(model.head.template(feats[0]), feats[1])
        loss, logs = obj(out, box, negative)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["loss"])
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]
    assert logs["positives"] > 0


# (RPN head, the anchor-free head of its layout, and the arguments both take)
LAYOUTS = [("rpn_dw", "ban_dw", {"in_channels": 256, "channels": 32}),
           ("rpn_pw", "ban_pw", {"in_channels": 256, "channels": 32, "exemplar_cells": 36})]   # AlexNet: 6x6 exemplar


@pytest.mark.parametrize("rpn_head, ban_head, args", LAYOUTS)
def test_adopts_an_rpn_checkpoint(rpn_head, ban_head, args):
    torch.manual_seed(0)
    rpn_cfg = ModelConfig(backbone=ComponentConfig("alexnet", {}),
                          head=ComponentConfig(rpn_head, {**args, "num_anchors": 5}))
    rpn = build_model(rpn_cfg).eval()
    source = type("Cfg", (), {"model": rpn_cfg, "tracker": TrackerConfig(type="siamrpn")})()
    ban = build_model(ModelConfig(backbone=ComponentConfig("alexnet", {}),
                                  head=ComponentConfig(ban_head, args))).eval()
    ban.load_state_dict(adopt_state(ban, rpn.state_dict(), source))
    z, x = torch.randn(1, 3, 127, 127), torch.randn(1, 3, 255, 255)
    with torch.no_grad():
        rpn_cls, _ = rpn(z, x)
        ban_cls, ban_loc = ban(z, x)
    # the default ratios' square anchor is index 2: cls channels (class * 5 + 2)
    torch.testing.assert_close(ban_cls, rpn_cls[:, [2, 7]])
    assert ban_loc.shape[1] == 4 and ban_loc.shape[-1] == ban_cls.shape[-1]
    torch.testing.assert_close(ban_loc, torch.full_like(ban_loc, float(np.log(2.0))), atol=0.05, rtol=0)


class ColourBAN:
    """Finds the exemplar's colour in each search crop and answers as a good anchor-free head would: scores falling
    off from the target's centre, exact side distances at the cells whose point is inside it."""
    stride = 16

    def __init__(self, cfg, response_size=11):
        self.r = response_size
        self.points = torch.tensor(point_grid(self.r, self.stride, cfg.search_size), dtype=torch.float32)

    def template(self, z):
        c = z.shape[-1] // 2
        return z[:, :, c, c].clone()

    def track(self, x, kernels):
        k, a = x.shape[0], len(self.points)
        cls = torch.zeros(k, 2, a)
        loc = torch.zeros(k, 4, a)
        for i in range(k):
            ys, xs = torch.nonzero((x[i] - kernels[i][:, None, None]).abs().amax(dim=0) < 20, as_tuple=True)
            if len(xs) == 0:
                cls[i, 1] = -6.0
                continue
            box = torch.tensor([(xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2,
                                xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()], dtype=torch.float32)
            d = ltrb_distances(box.expand(a, 4), self.points)
            cls[i, 1] = 6 - ((self.points - box[:2]) ** 2).sum(1).sqrt() / 8
            loc[i] = torch.log(d.clamp(min=1) / self.stride).T
        return cls.reshape(k, 2, self.r, self.r), loc.reshape(k, 4, self.r, self.r)


@pytest.mark.parametrize("grow", [0.0, 1.5])
def test_tracker_follows_a_moving_target(grow):
    cfg = TrackerConfig(type="siamban", penalty_k=0.04, size_lr=0.5, window_influence=0.2)
    tracker = SiamBANTracker(ColourBAN(cfg), cfg, CPU)
    box = np.array([60.0, 80.0, 40.0, 32.0])
    tracker.init(_frame([(box, (0, 0, 255))]), box)
    for t in range(1, 25):
        box = box + [5.0 - grow / 2, 2.0 * np.sin(t / 3) - grow / 2, grow, grow]
        res = tracker.update(_frame([(box, (0, 0, 255))], seed=t))
        assert B.iou(res.box, box) > 0.8, (t, res.box, box)
    if grow:
        assert res.box[2] > 40 + 0.5 * 24 * grow              # the size followed (damped) the growth


def test_tracker_rejects_an_rpn_head():
    from siamtrack.errors import ConfigError
    cfg = TrackerConfig(type="siamban")
    cls, loc = torch.zeros(1, 10, 11, 11), torch.zeros(1, 20, 11, 11)
    tracker = SiamBANTracker(ColourBAN(cfg), cfg, CPU)
    with pytest.raises(ConfigError, match="anchor-free"):
        tracker.candidates((cls, loc))
