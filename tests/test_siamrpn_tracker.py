"""SiamRPNTracker post-processing, checked against head outputs built by hand.

`ColourRPN` stands in for a trained network: it finds the exemplar's colour in each search crop and answers as a
good RPN would (scores from the IoU of each anchor with the found box, exact offsets for the anchors that overlap
it). The tracker then has to get the crop geometry, the anchor layout, the decoding and the update right to follow
the target.
"""
import numpy as np
import pytest
import torch

from siamtrack import boxes as B
from siamtrack.config import TrackerConfig
from siamtrack.crops import exemplar_size
from siamtrack.anchors import anchor_grid, anchor_shapes, encode, iou_cxcywh
from siamtrack.trackers.siamrpn import SiamRPNTracker

CPU = torch.device("cpu")


class ColourRPN:
    stride = 16

    def __init__(self, cfg, response_size=11):
        self.r = response_size
        grid = anchor_grid(anchor_shapes(cfg.anchor_ratios, cfg.anchor_size), self.r, self.stride, cfg.search_size)
        self.anchors = torch.tensor(grid, dtype=torch.float32)

    def template(self, z):
        c = z.shape[-1] // 2
        return z[:, :, c, c].clone()            # the colour at the exemplar's centre, one row per target

    def track(self, x, kernels):
        k = x.shape[0]
        cls = torch.zeros(k, 2, len(self.anchors))
        loc = torch.zeros(k, 4, len(self.anchors))
        for i in range(k):
            mask = (x[i] - kernels[i][:, None, None]).abs().amax(dim=0) < 20
            ys, xs = torch.nonzero(mask, as_tuple=True)
            if len(xs) == 0:                    # the target left the crop: nothing scores
                cls[i, 1] = -6.0
                continue
            box = torch.tensor([[(xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2,
                                 xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]], dtype=torch.float32)
            iou = iou_cxcywh(self.anchors, box)[0]
            cls[i, 1] = 12 * (iou - 0.5)
            # offsets only where an anchor overlaps the target, as a trained head would know them
            loc[i] = (encode(box.expand(len(self.anchors), 4), self.anchors) * (iou > 0.4)[:, None]).T
        return cls.reshape(k, -1, self.r, self.r), loc.reshape(k, -1, self.r, self.r)


def _frame(targets, size=(240, 320), seed=0):
    """Grey texture with solid coloured rectangles; targets: list of ((x, y, w, h), BGR colour)."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(60, 200, size=(size[0] // 4, size[1] // 4), dtype=np.uint8)
    frame = np.repeat(np.repeat(grey, 4, axis=0), 4, axis=1)[:, :, None].repeat(3, axis=2).copy()
    for (x, y, w, h), colour in targets:
        frame[int(round(y)):int(round(y + h)), int(round(x)):int(round(x + w))] = colour
    return frame


RED, GREEN = (0, 0, 255), (0, 255, 0)


def _tracker(**kw):
    cfg = TrackerConfig(type="siamrpn", **kw)
    return SiamRPNTracker(ColourRPN(cfg), cfg, CPU)


def test_follows_a_moving_target():
    tracker = _tracker()
    box = np.array([60.0, 80.0, 40.0, 32.0])
    tracker.init(_frame([(box, RED)]), box)
    for t in range(1, 30):
        box = box + [6.0, 2.0 * np.sin(t / 3), 0, 0]
        res = tracker.update(_frame([(box, RED)], seed=t))
        assert B.iou(res.box, box) > 0.9, (t, res.box, box)
        assert res.score > 0.9


def test_follows_a_growing_target_with_a_damped_size():
    tracker = _tracker(size_lr=0.5, penalty_k=0.04)
    box = np.array([100.0, 80.0, 30.0, 30.0])
    tracker.init(_frame([(box, RED)]), box)
    widths = []
    for t in range(1, 25):
        box = np.array([100.0 - t, 80.0 - t, 30.0 + 2 * t, 30.0 + 2 * t])
        res = tracker.update(_frame([(box, RED)], seed=t))
        widths.append(res.box[2])
    assert np.all(np.diff(widths) > 0)                  # grows every frame
    assert widths[-1] < box[2]                          # lags behind the true size (damped update)
    assert B.iou(res.box, box) > 0.75


def test_two_targets_in_one_pass():
    tracker = _tracker()
    a, b = np.array([40.0, 40.0, 30.0, 30.0]), np.array([200.0, 150.0, 36.0, 24.0])
    tracker.init_many(_frame([(a, RED), (b, GREEN)]), [a, b])
    for t in range(1, 15):
        a, b = a + [5, 3, 0, 0], b - [4, 2, 0, 0]
        ra, rb = tracker.update_many(_frame([(a, RED), (b, GREEN)], seed=t))
        assert B.iou(ra.box, a) > 0.9 and B.iou(rb.box, b) > 0.9


class FixedOutput:
    """Returns given head outputs: for checks of one post-processing step by hand."""
    stride = 16

    def __init__(self, cls, loc):
        self.cls, self.loc = cls, loc

    def template(self, z):
        return torch.zeros(len(z), 1)

    def track(self, x, kernels):
        return self.cls, self.loc


def _one_step(score_at, deltas, cfg, box=(80.0, 80.0, 40.0, 40.0), size=None):
    """Track one frame where the head scores the anchors of `score_at` {index: prob} and predicts `deltas`; `size`
    (w, h): the size earlier frames had brought the target to, when it is no longer the first box's."""
    r, a = 11, 5 * 11 * 11
    p = np.full(a, 0.01)
    for i, v in score_at.items():
        p[i] = v
    logit = torch.tensor(np.log(p / (1 - p)), dtype=torch.float32)
    cls = torch.stack([torch.zeros(a), logit]).reshape(1, 10, r, r)
    loc = torch.tensor(np.asarray(deltas, dtype=np.float32).T.copy()).reshape(1, 20, r, r)
    tracker = SiamRPNTracker(FixedOutput(cls, loc), cfg, CPU)
    frame = np.zeros((400, 400, 3), np.uint8)
    tracker.init(frame, box)
    if size is not None:
        tracker.sizes[:] = size
    return tracker.update(frame)


def test_one_step_by_hand():
    cfg = TrackerConfig(type="siamrpn", window_influence=0.0, penalty_k=0.04, size_lr=0.3)
    # the square anchor (index 2) of cell (y 5, x 7): 2 cells right of the centre
    idx = (2 * 11 + 5) * 11 + 7
    deltas = np.zeros((5 * 11 * 11, 4))
    deltas[idx] = [0.25, -0.125, np.log(1.5), 0.0]
    res = _one_step({idx: 0.8}, deltas, cfg)
    scale = exemplar_size(40, 40) * 255 / 127 / 255              # frame pixels per search-crop pixel
    cx = 100 + (2 * 16 + 0.25 * 64) * scale
    cy = 100 - 0.125 * 64 * scale
    pw, ph = 96 * scale, 64 * scale
    s = np.sqrt((pw + (pw + ph) / 2) * (ph + (pw + ph) / 2)) / np.sqrt(80 * 80)
    r = (40 / 40) / (pw / ph)
    penalty = np.exp(-(max(r, 1 / r) * max(s, 1 / s) - 1) * 0.04)
    lr = penalty * 0.8 * 0.3
    w, h = 40 * (1 - lr) + pw * lr, 40 * (1 - lr) + ph * lr
    np.testing.assert_allclose(res.box, [cx - w / 2, cy - h / 2, w, h], rtol=1e-5)
    assert res.score == pytest.approx(0.8, abs=1e-6)      # the raw score of the chosen anchor


def test_penalty_prefers_small_changes_and_window_prefers_small_motion():
    r = 11
    centre_square = (2 * 11 + 5) * 11 + 5
    far_square = (2 * 11 + 5) * 11 + 10
    thin_centre = (0 * 11 + 5) * 11 + 5                   # ratio 0.33: a big change of aspect from the square box
    zeros = np.zeros((5 * r * r, 4))
    cfg = TrackerConfig(type="siamrpn", window_influence=0.0, penalty_k=0.2)
    res = _one_step({centre_square: 0.7, thin_centre: 0.75}, zeros, cfg)
    assert res.score == pytest.approx(0.7, abs=1e-6)       # the penalty beat a slightly higher raw score
    cfg = TrackerConfig(type="siamrpn", window_influence=0.45, penalty_k=0.04)
    res = _one_step({centre_square: 0.7, far_square: 0.9}, zeros, cfg)
    assert res.score == pytest.approx(0.7, abs=1e-6)       # the window beat a far jump
    cfg = TrackerConfig(type="siamrpn", window_influence=0.0, penalty_k=0.04)
    res = _one_step({centre_square: 0.7, far_square: 0.9}, zeros, cfg)
    assert res.score == pytest.approx(0.9, abs=1e-6)


def test_size_stays_within_bounds():
    cfg = TrackerConfig(type="siamrpn", window_influence=0.0, size_lr=1.0, penalty_k=0.0, min_size=10)
    idx = (2 * 11 + 5) * 11 + 5
    deltas = np.zeros((5 * 11 * 11, 4))
    deltas[idx, 2:] = np.log(0.01)                        # the head says: a hundred times smaller
    res = _one_step({idx: 0.999999}, deltas, cfg)
    assert res.box[2] == pytest.approx(10) and res.box[3] == pytest.approx(10)
    deltas[idx, 2:] = np.log(100.0)                       # ... or a hundred times larger than the 400 px frame
    res = _one_step({idx: 0.999999}, deltas, cfg)
    assert res.box[2] == pytest.approx(400) and res.box[3] == pytest.approx(400)


# -- siamtrack tune: the grid search over these constants ------------------------------------------------------------

def _synthetic_otb(root, n_seq=2, n_frames=10):
    import cv2
    for s in range(n_seq):
        d = root / f"Seq{s}"
        (d / "img").mkdir(parents=True)
        box = np.array([20.0 + 10 * s, 40.0, 36.0, 30.0])
        lines = []
        for t in range(n_frames):
            b = box + [20.0 * t, 3.0 * t, 0, 0]
            cv2.imwrite(str(d / "img" / f"{t + 1:04d}.png"), _frame([(b, RED)], seed=t))
            lines.append(",".join(f"{v:g}" for v in b + [1, 1, 0, 0]))   # OTB files are 1-based
        (d / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")


def test_tune_grid_ranks_combinations(tmp_path):
    from siamtrack.eval.grid import parse_grid, run_grid, write_table
    from siamtrack.config import ComponentConfig, ExperimentConfig, ModelConfig
    from siamtrack.data.datasets import open_dataset
    from siamtrack.errors import ConfigError

    _synthetic_otb(tmp_path / "data")
    seqs = open_dataset(tmp_path / "data")
    cfg = ExperimentConfig(name="t", model=ModelConfig(backbone=ComponentConfig("none"), head=ComponentConfig("none")),
                           tracker=TrackerConfig(type="siamrpn"))
    grid = parse_grid(["window_influence=0.3,0.999", "size_lr=0.4"], cfg.tracker)
    assert grid == {"window_influence": [0.3, 0.999], "size_lr": [0.4]}
    rows = run_grid(ColourRPN(cfg.tracker), cfg, CPU, seqs, grid)
    assert len(rows) == 2 and rows[0]["auc"] >= rows[1]["auc"]
    # a window that outweighs the scores pins the box to the crop centre: it cannot keep up with the motion
    assert rows[0]["window_influence"] == 0.3 and rows[0]["auc"] > 0.7 and rows[1]["auc"] < rows[0]["auc"] - 0.05
    write_table(rows, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == "window_influence,size_lr,auc,precision_20,fps,sr75,size_ratio"
    with pytest.raises(ConfigError, match="not a numeric tracker constant"):
        parse_grid(["type=1,2"], cfg.tracker)
    with pytest.raises(ConfigError, match="KEY=V1"):
        parse_grid(["penalty_k"], cfg.tracker)
    with pytest.raises(ConfigError, match="not a number"):
        parse_grid(["penalty_k=0.1,abc"], cfg.tracker)


def test_tune_over_sre_starts_scores_the_mean_of_the_runs(tmp_path):
    # `siamtrack tune --init-jitter K`: each setting is scored as benchmark --init-jitter scores a tracker, the mean
    # over the one-pass run and K runs started on the first box moved as OTB's SRE moves it
    from siamtrack.config import ComponentConfig, ExperimentConfig, ModelConfig
    from siamtrack.data.datasets import open_dataset
    from siamtrack.eval.grid import run_grid
    from siamtrack.eval.runner import SRE_JITTERS, frame_bound, run_sequence
    from siamtrack.eval.summary import sequence_scores

    _synthetic_otb(tmp_path / "data")
    seqs = open_dataset(tmp_path / "data")
    cfg = ExperimentConfig(name="t", model=ModelConfig(backbone=ComponentConfig("none"), head=ComponentConfig("none")),
                           tracker=TrackerConfig(type="siamrpn", window_influence=0.3))
    grid = {"window_influence": [0.3]}
    (one,) = run_grid(ColourRPN(cfg.tracker), cfg, CPU, seqs, grid)
    # ten runs reach the first scaled start (0.8x): a colour blob is found again from any shifted start, but a box
    # started too small takes frames to grow back
    (ten,) = run_grid(ColourRPN(cfg.tracker), cfg, CPU, seqs, grid, runs=10)
    run_aucs = []
    for jitter in (None, *SRE_JITTERS[:9]):
        aucs = []
        for seq in seqs:
            res = run_sequence(SiamRPNTracker(ColourRPN(cfg.tracker), cfg.tracker, CPU), seq, jitter=jitter)
            gt = np.asarray(seq.boxes, dtype=np.float64)
            aucs.append(sequence_scores(gt, res["boxes"], res["times"], frame_bound(seq))["success_auc"])
        run_aucs.append(np.mean(aucs))
    assert one["auc"] == pytest.approx(run_aucs[0])
    assert ten["auc"] == pytest.approx(np.mean(run_aucs)) and ten["auc"] < one["auc"] - 0.005


def test_tune_refuses_test_splits(tmp_path, capsys):
    from siamtrack.cli import main
    assert main(["tune", "--model", str(tmp_path / "m.pth"), "--data", str(tmp_path), "--split", "test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to tune on split 'test'" in err[0]


def test_aspect_prior_compares_with_the_first_box():
    # A 40x40 first box that has drifted to 40x80 (aspect 0.5): candidate A keeps the drifted aspect (the ratio-2
    # anchor of the centre cell, h = 2w), candidate B goes back to the square (the square anchor). With aspect_prior 0
    # the penalty sees A as no change and B as a change; with 1 the other way round.
    r = 11
    tall = (3 * r + 5) * r + 5                          # ratio 2: h = 2w
    square = (2 * r + 5) * r + 5
    zeros = np.zeros((5 * r * r, 4))
    picks = {prior: _one_step({tall: 0.8, square: 0.7}, zeros, TrackerConfig(
                 type="siamrpn", window_influence=0.0, penalty_k=0.5, aspect_prior=prior),
                 box=(100.0, 100.0, 40.0, 40.0), size=(40.0, 80.0)).score
             for prior in (0.0, 1.0)}
    assert picks[0.0] == pytest.approx(0.8, abs=1e-6)   # stays with the drifted aspect
    assert picks[1.0] == pytest.approx(0.7, abs=1e-6)   # back to the aspect the user gave


def test_aspect_prior_out_of_range_is_a_config_error():
    from siamtrack.errors import ConfigError
    with pytest.raises(ConfigError, match="aspect_prior"):
        SiamRPNTracker(FixedOutput(None, None), TrackerConfig(type="siamrpn", aspect_prior=1.5), CPU)


def test_box_topk_averages_the_best_candidates_by_score():
    # Square anchors two cells right (score 0.6) and two cells left (0.2) of the centre, no offsets, no penalty or
    # window: with box_topk 2 the centre moves by the score-weighted mean of the two (0.75 * 2 - 0.25 * 2 = 1 cell);
    # the size's update rate is the best candidate's score.
    right, left = (2 * 11 + 5) * 11 + 7, (2 * 11 + 5) * 11 + 3
    zeros = np.zeros((5 * 11 * 11, 4))
    scale = exemplar_size(40, 40) * 255 / 127 / 255              # frame pixels per search-crop pixel
    for k, cells in ((1, 2), (2, 1)):
        cfg = TrackerConfig(type="siamrpn", window_influence=0.0, penalty_k=0.0, size_lr=1.0, box_topk=k)
        res = _one_step({right: 0.6, left: 0.2}, zeros, cfg)
        assert res.score == pytest.approx(0.6, abs=1e-6)
        cx, cy = res.box[0] + res.box[2] / 2, res.box[1] + res.box[3] / 2
        assert cx == pytest.approx(100 + cells * 16 * scale) and cy == pytest.approx(100)
        assert res.box[2] == pytest.approx(40 * 0.4 + 64 * scale * 0.6)


def test_grow_rate_damps_growth_and_not_shrinking():
    # The centre cell's square anchor predicts a box 1.5x wider and half as tall; with grow_rate 0.5 the width moves
    # at half the update rate (score 0.8 x size_lr 1) and the height at the full rate.
    idx = (2 * 11 + 5) * 11 + 5
    deltas = np.zeros((5 * 11 * 11, 4))
    deltas[idx] = [0.0, 0.0, np.log(1.5), np.log(0.5)]
    scale = exemplar_size(40, 40) * 255 / 127 / 255              # frame pixels per search-crop pixel
    for g in (1.0, 0.5):
        cfg = TrackerConfig(type="siamrpn", window_influence=0.0, penalty_k=0.0, size_lr=1.0, grow_rate=g)
        res = _one_step({idx: 0.8}, deltas, cfg)
        assert res.box[2] == pytest.approx(40 * (1 - 0.8 * g) + 96 * scale * 0.8 * g)
        assert res.box[3] == pytest.approx(40 * 0.2 + 32 * scale * 0.8)


@pytest.mark.parametrize("g", [0, 1.5])
def test_grow_rate_out_of_range_is_a_config_error(g):
    from siamtrack.errors import ConfigError
    with pytest.raises(ConfigError, match="grow_rate"):
        SiamRPNTracker(FixedOutput(None, None), TrackerConfig(type="siamrpn", grow_rate=g), CPU)


@pytest.mark.parametrize("k", [0, 1.5])
def test_box_topk_must_be_a_whole_number(k):
    from siamtrack.errors import ConfigError
    with pytest.raises(ConfigError, match="box_topk"):
        SiamRPNTracker(FixedOutput(None, None), TrackerConfig(type="siamrpn", box_topk=k), CPU)
