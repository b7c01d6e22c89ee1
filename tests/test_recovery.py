"""Lost-target states and recovery (siamtrack/trackers/base.py), with stand-in networks built by hand.

`ColourFC` answers as a good SiamFC network would: each response cell scores how close the mean colour of a
target-sized window around it is to the exemplar's centre colour, so its peak sits where the target is and its height
says whether the target is in view.
The SiamRPN tests use `ColourRPN` from test_siamrpn_tracker.py, which finds the exemplar's colour in the crop.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siamtrack import boxes as B
from siamtrack.config import TrackerConfig
from siamtrack.errors import ConfigError
from siamtrack.trackers.base import LOST, TRACKING, UNCERTAIN
from siamtrack.trackers.siamfc import SiamFCTracker
from siamtrack.trackers.siamrpn import SiamRPNTracker

from test_siamrpn_tracker import GREEN, RED, ColourRPN, _frame

CPU = torch.device("cpu")
STATES = dict(uncertain_below=0.5, lost_below=0.2, lost_patience=2, recover_above=0.6)


class ColourFC:
    """17x17 response at stride 8 over a 255 crop: cell i looks at crop pixel 127.5 + (i - 8) * 8, as SiamFC-AlexNet's
    does, through a 64 px window (a target's size in the crop). Logit 8 for the exemplar's colour, falling by 1 per 4
    levels of difference."""
    stride = 8

    def template(self, z):
        c = z.shape[-1] // 2
        return z[:, :, c, c].clone()

    def track(self, x, kernels):
        kernels = kernels.repeat_interleave(x.shape[0] // kernels.shape[0], dim=0)
        cells = F.avg_pool2d(x[:, :, 32:224, 32:224], 64, stride=8)   # (N, 3, 17, 17), centres 63.5 + 8 i
        dist = (cells - kernels[:, :, None, None]).abs().amax(dim=1)
        return (8 - dist / 4)[:, None]


class TiledColourRPN(ColourRPN):
    """ColourRPN under the full model contract: S consecutive search crops per target's kernel."""

    def track(self, x, kernels):
        return super().track(x, kernels.repeat_interleave(x.shape[0] // kernels.shape[0], dim=0))


class Counting:
    """Counts the network's forward passes and the crops in each."""

    def __init__(self, model):
        self.model, self.batches = model, []
        self.stride = model.stride

    def template(self, z):
        return self.model.template(z)

    def track(self, x, kernels):
        self.batches.append(x.shape[0])
        return self.model.track(x, kernels)


class Scripted:
    """A response peaked at the centre whose height (logit) the test sets frame by frame."""
    stride = 8

    def __init__(self, logits):
        self.logits = list(logits)

    def template(self, z):
        return torch.zeros(z.shape[0])

    def track(self, x, kernels):
        ys, xs = torch.meshgrid(torch.arange(17.0), torch.arange(17.0), indexing="ij")
        peak = torch.exp(-((xs - 8) ** 2 + (ys - 8) ** 2) / 2.0)
        return (self.logits.pop(0) * peak - 10 * (1 - peak)).expand(x.shape[0], 1, 17, 17)


def _fc(model, **kw):
    cfg = TrackerConfig(type="siamfc", **{**STATES, **kw})
    return SiamFCTracker(model, cfg, CPU)


def _rpn(**kw):
    cfg = TrackerConfig(type="siamrpn", **{**STATES, **kw})
    return SiamRPNTracker(TiledColourRPN(cfg), cfg, CPU)


def test_states_follow_the_score():
    # logit -> score: 4 -> 0.98, 0 -> 0.5, -1 -> 0.27, -3 -> 0.05, 0.3 -> 0.57
    logits = [4, -1, -3, -3, -3, 0.3, 4, -3, 4, 0]
    tracker = _fc(Scripted(logits), recovery=False)
    frame = _frame([])
    tracker.init(frame, (140, 100, 30, 30))
    states = [tracker.update(frame).state for _ in logits]
    assert states == [TRACKING, UNCERTAIN, UNCERTAIN, LOST, LOST,
                      LOST,            # 0.57 is not above recover_above 0.6: still lost
                      TRACKING,        # 0.98 resumes
                      UNCERTAIN,       # one low frame is not lost (patience 2)
                      TRACKING, TRACKING]


def test_default_config_never_declares_lost():
    tracker = _fc(Scripted([-9] * 20), uncertain_below=0.0, lost_below=0.0)
    frame = _frame([])
    tracker.init(frame, (140, 100, 30, 30))
    assert {tracker.update(frame).state for _ in range(20)} == {TRACKING}


def test_bad_thresholds_are_config_errors():
    with pytest.raises(ConfigError, match="lost_below"):
        _fc(ColourFC(), lost_below=0.6, uncertain_below=0.5)
    with pytest.raises(ConfigError, match="lost_patience"):
        _fc(ColourFC(), lost_patience=0)


def _jump_sequence(tracker, a, b, before=3, after=12, size=(240, 320)):
    """Target at box a for `before` frames, then at b; returns the results of every update."""
    tracker.init(_frame([(a, RED)], size), a)
    out = [tracker.update(_frame([(a, RED)], size, seed=t)) for t in range(1, before + 1)]
    return out + [tracker.update(_frame([(b, RED)], size, seed=t)) for t in range(before + 1, before + after + 1)]


@pytest.mark.parametrize("make", [lambda: _fc(ColourFC()), lambda: _rpn()], ids=["siamfc", "siamrpn"])
def test_recovers_a_target_that_jumped_across_the_frame(make):
    tracker = make()
    a, b = np.array([40.0, 40.0, 30, 30]), np.array([260.0, 190.0, 30, 30])
    # within the default budget (a lost frame costs at most two normal frames) SiamRPN sweeps 2 tiles a frame:
    # the 24 tiles of this frame take 12 frames
    res = _jump_sequence(tracker, a, b, after=24)
    states = [r.state for r in res]
    assert states[:3] == [TRACKING] * 3
    assert LOST in states
    first_lost = states.index(LOST)
    back = first_lost + states[first_lost:].index(TRACKING)
    # while lost the box stays on the last confident one, not wherever the local search wandered
    for r in res[first_lost:back]:
        assert np.allclose(r.box, res[2].box)
    assert all(s == TRACKING for s in states[back:])
    assert B.iou(res[-1].box, b) > 0.8, res[-1].box
    assert res[-1].score > 0.9


def test_without_recovery_the_local_search_does_not_find_it():
    tracker = _fc(ColourFC(), recovery=False)
    a, b = np.array([40.0, 40.0, 30, 30]), np.array([260.0, 190.0, 30, 30])
    res = _jump_sequence(tracker, a, b)
    assert res[-1].state == LOST
    assert B.iou(res[-1].box, b) == 0


def test_tiles_cover_a_big_frame_over_several_frames():
    # 40 px target in a 960x720 frame: tiles 60 px apart, more than the 12 a frame, so the search cycles
    tracker = _fc(ColourFC())
    a, b = np.array([20.0, 20.0, 30, 30]), np.array([900.0, 660.0, 30, 30])
    res = _jump_sequence(tracker, a, b, after=40, size=(720, 960))
    states = [r.state for r in res]
    back = len(states) - states[::-1].index(LOST)
    assert back > 3 + 2 + 5            # it took several frames of cycling through the tiles
    assert B.iou(res[-1].box, b) > 0.8 and states[-1] == TRACKING


def test_one_forward_pass_a_frame_while_nothing_is_lost():
    model = Counting(ColourFC())
    tracker = _fc(model)
    box = np.array([100.0, 80.0, 30, 30])
    tracker.init(_frame([(box, RED)]), box)
    for t in range(1, 11):
        box = box + [3.0, 1.0, 0, 0]
        assert tracker.update(_frame([(box, RED)], seed=t)).state == TRACKING
    assert model.batches == [3] * 10           # one pass of 3 scales per frame, nothing else


def test_lost_target_costs_one_tiled_pass_and_others_are_untouched():
    red, green = np.array([60.0, 60.0, 30, 30]), np.array([200.0, 150.0, 30, 30])
    model = Counting(ColourFC())
    both = _fc(model)
    both.init_many(_frame([(red, RED), (green, GREEN)]), [red, green])
    alone = _fc(ColourFC())
    alone.init(_frame([(red, RED), (green, GREEN)]), red)
    for t in range(1, 12):
        red = red + [2.0, 1.0, 0, 0]
        # green leaves the view
        frame = _frame([(red, RED)], seed=t)
        r_both, g_both = both.update_many(frame)
        assert np.allclose(r_both.box, alone.update(frame).box)
    assert g_both.state == LOST and r_both.state == TRACKING
    # once green is lost: one pass for both targets' local crops (3 scales each) and one for green's tiles, as many
    # as the budget leaves: 2 normal frames (12 crops) less red's 3
    assert model.batches[-1] == 9 and model.batches[-2] == 6


@pytest.mark.parametrize("make, normal", [(lambda m, **kw: _fc(m, **kw), 3),
                                          (lambda m, **kw: SiamRPNTracker(m, TrackerConfig(type="siamrpn",
                                                                                           **{**STATES, **kw}), CPU),
                                           1)], ids=["siamfc", "siamrpn"])
@pytest.mark.parametrize("budget", [2.0, 3.0])
def test_a_lost_frame_costs_at_most_the_budget(make, normal, budget):
    cfg = TrackerConfig(type="siamrpn", **STATES)
    model = Counting(ColourFC() if normal == 3 else TiledColourRPN(cfg))
    tracker = make(model, recovery_budget=budget)
    a, b = np.array([40.0, 40.0, 30, 30]), np.array([260.0, 190.0, 30, 30])
    states = [r.state for r in _jump_sequence(tracker, a, b, after=8)]
    assert LOST in states
    assert max(model.batches) == int(budget * normal)      # whole-frame search: `budget` frames' worth of crops
    assert model.batches[:3] == [normal] * 3


def test_recovery_budget_below_one_frame_is_a_config_error():
    with pytest.raises(ConfigError, match="recovery_budget"):
        _fc(ColourFC(), recovery_budget=0.5)
