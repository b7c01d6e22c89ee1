"""RPN parts: anchors, box encoding, anchor labelling, the loss, and the heads on both backbones."""
import numpy as np
import pytest
import torch

from siamtrack.config import config_from_dict
from siamtrack.errors import ConfigError
from siamtrack.models import build_model
from siamtrack.anchors import anchor_grid, anchor_shapes, decode, encode, iou_cxcywh
from siamtrack.train.rpn_objective import RPNObjective, label_anchors

RATIOS = (0.33, 0.5, 1.0, 2.0, 3.0)


def test_anchor_shapes_keep_area_and_ratio():
    s = anchor_shapes(RATIOS, 64)
    np.testing.assert_allclose(s[:, 0] * s[:, 1], 64 * 64)
    np.testing.assert_allclose(s[:, 1] / s[:, 0], RATIOS)


@pytest.mark.parametrize("r,stride", [(17, 8), (11, 16), (4, 8)])
def test_anchor_grid_count_and_centres(r, stride):
    shapes = anchor_shapes(RATIOS, 64)
    a = anchor_grid(shapes, r, stride, 255).reshape(5, r, r, 4)
    assert a.shape[0] * r * r == 5 * r * r
    # cells `stride` apart, symmetric about the crop centre 127.5
    np.testing.assert_allclose(np.diff(a[0, 0, :, 0]), stride)
    np.testing.assert_allclose(np.diff(a[0, :, 0, 1]), stride)
    np.testing.assert_allclose(a[..., 0].mean(), 127.5)
    np.testing.assert_allclose(a[..., 1].mean(), 127.5)
    if r % 2:
        np.testing.assert_allclose(a[:, r // 2, r // 2, :2], 127.5)
    # x varies along the last axis, y along the one before; every anchor of a cell has its shape
    assert a[0, 0, 1, 0] > a[0, 0, 0, 0] and a[0, 1, 0, 1] > a[0, 0, 0, 1]
    np.testing.assert_allclose(a[:, 3, 2, 2:], shapes)


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    anchors = np.column_stack([rng.uniform(0, 255, (50, 2)), rng.uniform(10, 150, (50, 2))])
    boxes = np.column_stack([rng.uniform(0, 255, (50, 2)), rng.uniform(5, 200, (50, 2))])
    np.testing.assert_allclose(decode(encode(boxes, anchors), anchors), boxes, rtol=1e-10)
    t = decode(encode(torch.tensor(boxes), torch.tensor(anchors)), torch.tensor(anchors))
    np.testing.assert_allclose(t.numpy(), boxes, rtol=1e-10)
    # zero offsets give the anchor itself; (dx, dw) = (0.5, log 2) moves half a width and doubles it
    np.testing.assert_allclose(decode(np.zeros(4), anchors[0]), anchors[0])
    out = decode(np.array([0.5, 0.0, np.log(2), 0.0]), np.array([100.0, 50.0, 20.0, 10.0]))
    np.testing.assert_allclose(out, [110.0, 50.0, 40.0, 10.0])


def _anchors(r=11, stride=16):
    return torch.tensor(anchor_grid(anchor_shapes(RATIOS, 64), r, stride, 255), dtype=torch.float32)


def test_iou_of_hand_made_boxes():
    a = torch.tensor([[50.0, 50.0, 20.0, 20.0]])
    b = torch.tensor([[50.0, 50.0, 20.0, 20.0], [60.0, 50.0, 20.0, 20.0], [200.0, 200.0, 5.0, 5.0]])
    np.testing.assert_allclose(iou_cxcywh(a, b)[:, 0].numpy(), [1.0, 1 / 3, 0.0], atol=1e-6)


def test_labels_on_hand_made_boxes():
    anchors = _anchors()
    g = torch.Generator().manual_seed(0)
    # pair 0: exactly the square anchor of the centre cell; pair 1: the same box but a negative pair;
    # pair 2: a square of 64 px one cell right of the centre
    boxes = torch.tensor([[127.5, 127.5, 64.0, 64.0], [127.5, 127.5, 64.0, 64.0], [143.5, 127.5, 64.0, 64.0]])
    labels = label_anchors(anchors, boxes, torch.tensor([0, 1, 0]), generator=g)
    centre_square = (2 * 11 + 5) * 11 + 5   # anchor index of ratio 1 at cell (5, 5)
    assert labels[0, centre_square] == 1
    assert labels[2, centre_square + 1] == 1
    assert (labels[1] == 1).sum() == 0
    iou = iou_cxcywh(anchors, boxes)
    for i in range(3):
        pos, neg = labels[i] == 1, labels[i] == 0
        assert pos.sum() <= 16 and pos.sum() + neg.sum() <= 64
        assert (iou[i][pos] > 0.3).all()
        if i != 1:
            assert (iou[i][neg] < 0.3).all()
    assert (labels[1] == 0).sum() == 64     # a negative pair samples negatives only
    # ... and the anchors on the other object come first: they are the distractor to reject
    on_other = iou[1] > 0.3
    assert on_other.sum() > 0
    assert (labels[1][on_other] == 0).sum() == min(16, int(on_other.sum()))
    assert (labels[0] == 0).sum() == 64 - (labels[0] == 1).sum()


def test_at_most_16_positives():
    # a huge box overlaps many anchors above 0.6 once the anchors are large too
    anchors = torch.tensor([[127.5 + dx, 127.5, 64.0, 64.0] for dx in np.linspace(-4, 4, 40)], dtype=torch.float32)
    labels = label_anchors(anchors, torch.tensor([[127.5, 127.5, 64.0, 64.0]]), torch.tensor([0]))
    assert (labels == 1).sum() == 16


def _cfg(backbone, head, neck=None, search=255):
    d = {"name": "t", "model": {"backbone": backbone, "head": head}, "tracker": {"type": "siamrpn"},
         "train": {"search_size": search}}
    if neck:
        d["model"]["neck"] = neck
    return config_from_dict(d)


ALEX = {"name": "alexnet"}
LITE = {"name": "efficientnet_lite0", "args": {"out_stage": 5}}
LITE_NECK = {"name": "adjust", "args": {"in_channels": 112, "out_channels": 64, "crop": 7}}


@pytest.mark.parametrize("backbone,neck,head,r", [
    (ALEX, None, {"name": "rpn_dw", "args": {"in_channels": 256, "channels": 32}}, 17),
    (ALEX, None, {"name": "rpn_up", "args": {"in_channels": 256, "channels": 16}}, 17),
    (LITE, LITE_NECK, {"name": "rpn_dw", "args": {"in_channels": 64, "channels": 32}}, 11),
    (LITE, LITE_NECK, {"name": "rpn_up", "args": {"in_channels": 64, "channels": 8}}, 11),
    # pixel-wise correlation keeps the search grid: 17 x 17 at stride 16
    (LITE, LITE_NECK, {"name": "rpn_pw", "args": {"in_channels": 64, "channels": 16}}, 17),
])
def test_heads_on_both_backbones(backbone, neck, head, r):
    torch.manual_seed(0)
    cfg = _cfg(backbone, head, neck)
    model = build_model(cfg.model).eval()
    z = torch.rand(2, 3, 127, 127) * 255
    x = torch.rand(2, 3, 255, 255) * 255
    with torch.no_grad():
        cls, loc = model(z, x)
        assert cls.shape == (2, 10, r, r) and loc.shape == (2, 20, r, r)
        # two targets tracked at once give what each gives alone
        model.template(z)
        cls2, loc2 = model.track(x)
        model.template(z[1:])
        cls1, _ = model.track(x[1:])
    torch.testing.assert_close(cls2, cls, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cls1[0], cls[1], rtol=1e-4, atol=1e-4)
    # the objective turns the output into a finite loss with gradients for the head
    model.train()
    obj = RPNObjective(cfg, model)
    loss, logs = obj(model(z, x), torch.tensor([[100.0, 100.0, 60.0, 50.0], [90.0, 110.0, 40.0, 70.0]]),
                     torch.tensor([0.0, 1.0]))
    loss.backward()
    assert np.isfinite(logs["loss"]) and logs["positives"] > 0
    assert all(p.grad is not None for p in model.head.parameters())


def test_objective_rewards_the_right_answer():
    cfg = _cfg(ALEX, {"name": "rpn_dw", "args": {"in_channels": 256, "channels": 8}})
    model = build_model(cfg.model)
    obj = RPNObjective(cfg, model, generator=torch.Generator().manual_seed(0))
    r = 17
    anchors = obj.anchors(r, "cpu")
    box_xywh = torch.tensor([[90.0, 100.0, 70.0, 40.0]])
    target = torch.tensor([[125.0, 120.0, 70.0, 40.0]])
    iou = iou_cxcywh(anchors, target)[0]
    # perfect offsets everywhere; logits that say "target" exactly where IoU is high
    loc = encode(target.expand(len(anchors), 4), anchors).T.reshape(1, 20, r, r)
    fg = (iou > 0.45).float() * 20 - 10
    cls = torch.stack([-fg, fg]).reshape(1, 10, r, r)
    good, logs = obj((cls, loc), box_xywh, torch.tensor([0.0]))
    assert logs["loc"] < 1e-6 and logs["cls"] < 1e-3
    wrong, _ = obj((-cls, loc + 0.5), box_xywh, torch.tensor([0.0]))
    assert wrong > good + 5
    # a negative pair wants "background" everywhere and teaches no offsets
    everywhere = torch.cat([torch.full((1, 5, r, r), -10.0), torch.full((1, 5, r, r), 10.0)], dim=1)
    neg, logs = obj((everywhere, loc + 0.5), box_xywh, torch.tensor([1.0]))
    assert neg > 5 and logs["loc"] == 0 and logs["positives"] == 0


def test_objective_rejects_anchor_mismatch():
    cfg = _cfg(ALEX, {"name": "rpn_dw", "args": {"in_channels": 256, "channels": 8, "num_anchors": 3}})
    model = build_model(cfg.model)
    out = model(torch.rand(1, 3, 127, 127), torch.rand(1, 3, 255, 255))
    with pytest.raises(ConfigError, match="anchor"):
        RPNObjective(cfg, model)(out, torch.tensor([[100.0, 100.0, 50.0, 50.0]]), torch.tensor([0.0]))


def test_loc_loss_is_l1_unless_asked_for_smooth_l1():
    # Offsets of 0.1 cost 0.1 each under L1 but 0.005 under smooth-L1 (beta 1): the loss that left the shipped
    # model's regression almost blind to scale.
    box_xywh = torch.tensor([[90.0, 100.0, 70.0, 40.0]])
    target = torch.tensor([[125.0, 120.0, 70.0, 40.0]])
    values = {}
    for name in ("l1", "smooth_l1"):
        cfg = _cfg(ALEX, {"name": "rpn_dw", "args": {"in_channels": 256, "channels": 8}})
        cfg.train.loc_loss = name
        model = build_model(cfg.model)
        obj = RPNObjective(cfg, model, generator=torch.Generator().manual_seed(0))
        anchors = obj.anchors(17, "cpu")
        loc = encode(target.expand(len(anchors), 4), anchors).T.reshape(1, 20, 17, 17) + 0.1
        cls = torch.zeros(1, 10, 17, 17)
        values[name] = obj((cls, loc), box_xywh, torch.tensor([0.0]))[1]["loc"]
    assert values["l1"] == pytest.approx(0.4, rel=1e-4)         # 4 offsets x 0.1, averaged over positives
    assert values["smooth_l1"] == pytest.approx(0.02, rel=1e-4)  # 4 x 0.5 x 0.1^2
    cfg.train.loc_loss = "l2"
    with pytest.raises(ConfigError, match="loc_loss"):
        RPNObjective(cfg, model)


def test_a_pixelwise_head_starts_from_a_depthwise_checkpoints_trunk_and_neck():
    from siamtrack.checkpoint import load_weights
    from siamtrack.models.ban import adopt_state
    torch.manual_seed(0)
    dw_cfg = _cfg(LITE, {"name": "rpn_dw", "args": {"in_channels": 64, "channels": 16}}, LITE_NECK)
    pw_cfg = _cfg(LITE, {"name": "rpn_pw", "args": {"in_channels": 64, "channels": 16}}, LITE_NECK)
    source, model = build_model(dw_cfg.model), build_model(pw_cfg.model)
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    load_weights(model, adopt_state(model, source.state_dict(), dw_cfg))
    for k, v in source.state_dict().items():
        if not k.startswith("head."):
            torch.testing.assert_close(model.state_dict()[k], v)
    for k, v in model.head.state_dict().items():
        torch.testing.assert_close(v, head_before[k])
