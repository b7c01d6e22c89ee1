"""Metrics: hand-computed cases, and equality with the got10k toolkit's own report() on the same result files."""
import os

import numpy as np
import pytest
from got10k.experiments import ExperimentGOT10k, ExperimentOTB, ExperimentUAV123

from siamtrack.data.datasets import Sequence
from siamtrack.eval import metrics as M
from siamtrack.eval import results as R
from siamtrack.eval.summary import sequence_scores, summarize


def test_identical_boxes_score_perfectly_except_iou_exactly_one():
    gt = np.array([[10, 20, 30, 40], [12, 22, 30, 40]], float)
    # IoU is just below 1 (the toolkit's eps), so only the threshold 1.0 fails: 20 of 21 thresholds pass.
    np.testing.assert_allclose(M.success_curve(gt, gt), [1.0] * 20 + [0.0])
    assert M.success_auc(gt, gt) == pytest.approx(20 / 21)
    assert M.precision_at(gt, gt) == 1.0
    assert M.norm_precision(gt, gt) == 1.0
    ao, sr50, sr75 = M.ao_sr(gt, gt)
    assert ao == pytest.approx(1.0) and sr50 == 1.0 and sr75 == 1.0


def test_half_shift_hand_computed():
    gt = np.array([[0, 0, 10, 10]], float)
    pred = np.array([[5, 0, 10, 10]], float)  # overlap 50, union 150: IoU 1/3; centre error 5 px = 0.5 widths
    # IoU > t holds for t = 0, 0.05, ..., 0.30: 7 of 21 thresholds.
    assert M.success_auc(gt, pred) == pytest.approx(7 / 21)
    assert M.precision_at(gt, pred, 5.0) == 1.0      # <= is inclusive
    assert M.precision_at(gt, pred, 4.9) == 0.0
    assert M.norm_precision(gt, pred, 0.5) == 1.0
    assert M.norm_precision(gt, pred, 0.2) == 0.0
    np.testing.assert_allclose(M.precision_curve(gt, pred), (np.arange(51) >= 5).astype(float))


def test_invalid_ground_truth_is_skipped_and_nan_prediction_fails():
    gt = np.array([[0, 0, 10, 10], [np.nan] * 4, [0, 0, 0, 10], [0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4])
    # Valid frames 0 and 3: one perfect, one lost.
    assert M.precision_at(gt, pred) == 0.5
    assert M.success_auc(gt, pred) == pytest.approx(0.5 * 20 / 21)
    # AO leaves out the first valid frame: only frame 3 (a NaN prediction counts as IoU 0).
    assert M.ao_sr(gt, pred) == (0.0, 0.0, 0.0)


def test_no_valid_frame_gives_zero_not_nan():
    gt = np.full((3, 4), np.nan)
    assert M.success_auc(gt, gt) == 0.0 and M.precision_at(gt, gt) == 0.0 and M.ao_sr(gt, gt) == (0.0, 0.0, 0.0)


def test_bound_clips_boxes_like_got10k():
    gt = np.array([[0, 0, 10, 10], [90, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [90, 0, 20, 10]], float)  # half the prediction lies right of a 100 px image
    assert M.ao_sr(gt, pred)[0] == pytest.approx(0.5)
    assert M.ao_sr(gt, pred, bound=(100, 50))[0] == pytest.approx(1.0)


def test_pooled_ao_weights_frames_not_sequences():
    ao, sr50, _ = M.pooled_ao_sr([np.array([1.0]), np.array([0.0, 0.0, 0.0])])
    assert ao == pytest.approx(0.25) and sr50 == pytest.approx(0.25)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        M.success_auc(np.zeros((3, 4)), np.zeros((2, 4)))


# -- against the toolkit ------------------------------------------------------------------------------------------

def _random_track(rng, n, nan_rows=()):
    """A ground-truth walk and a noisy prediction of it; the prediction equals the ground truth on the first valid
    frame, as a one-pass run records it."""
    gt = np.empty((n, 4))
    gt[0] = [rng.uniform(20, 80), rng.uniform(20, 60), rng.uniform(15, 40), rng.uniform(15, 40)]
    for i in range(1, n):
        gt[i, :2] = gt[i - 1, :2] + rng.normal(0, 3, 2)
        gt[i, 2:] = np.clip(gt[i - 1, 2:] * rng.uniform(0.95, 1.05, 2), 8, None)
    pred = gt + rng.normal(0, 1, (n, 4)) * np.array([6, 6, 4, 4]) * rng.uniform(0.2, 3)
    pred[:, 2:] = np.abs(pred[:, 2:]) + 1
    gt[list(nan_rows)] = np.nan
    first = np.flatnonzero(~np.isnan(gt[:, 0]))[0]
    pred[:first] = np.nan
    pred[first] = gt[first]
    return np.round(gt, 2), pred


class _FakeDataset:
    """The two things a got10k experiment needs of a dataset: seq_names and indexing (never downloads)."""

    def __init__(self, names, annos, metas=None):
        self.seq_names, self._annos, self._metas = names, annos, metas
        self.return_meta = False

    def __len__(self):
        return len(self.seq_names)

    def __getitem__(self, i):
        if isinstance(i, str):
            i = self.seq_names.index(i)
        files = [f"frame{j}.jpg" for j in range(len(self._annos[i]))]
        if self.return_meta:
            return files, self._annos[i], self._metas[i]
        return files, self._annos[i]


def _toolkit_experiment(cls, tmp_path, dataset):
    e = cls.__new__(cls)  # skip __init__: it would look for (and download) the real dataset
    e.dataset = dataset
    e.result_dir = str(tmp_path / "results")
    e.report_dir = str(tmp_path / "reports")
    e.nbins_iou, e.nbins_ce = 21, 51
    e.plot_curves = lambda *a, **k: None  # its 300-dpi plots are slow and beside the point here
    return e


def _write_and_score(tmp_path, names, gts, preds, fmt):
    per_seq = {}
    for name, gt, pred in zip(names, gts, preds):
        seq = Sequence(name, [f"f{j}.jpg" for j in range(len(gt))], gt, {"dataset": fmt})
        times = np.r_[0.05, np.full(len(gt) - 1, 0.01)]
        R.write(tmp_path / "results", "mine", seq, {"boxes": pred, "times": times, "decode": times,
                                                    "scores": np.ones(len(gt))})
        back = R.read(tmp_path / "results", "mine", seq, len(gt))
        off = R.offset_of(seq)
        per_seq[name] = sequence_scores(gt + off, back["file_boxes"], back["times"], origin=off[0])
    return per_seq


@pytest.mark.parametrize("with_nan", [False, True])
def test_success_and_precision_equal_the_toolkit(tmp_path, with_nan):
    rng = np.random.default_rng(1 + with_nan)
    names = ["Alpha", "Beta", "Gamma"]
    tracks = [_random_track(rng, n, nan_rows=((0, 1, 7, 8) if with_nan and k == 1 else ()))
              for k, n in enumerate((30, 45, 25))]
    gts, preds = [t[0] for t in tracks], [t[1] for t in tracks]
    per_seq = _write_and_score(tmp_path, names, gts, preds, "otb")
    ours = summarize(per_seq)

    # The toolkit reads our files (written 1-based for OTB) against its 1-based annotation. Its OTB experiment counts
    # NaN ground truth as a failure; its UAV123 experiment skips those frames, as we do.
    annos = [g + np.array([1, 1, 0, 0]) for g in gts]
    cls = ExperimentUAV123 if with_nan else ExperimentOTB
    exp = _toolkit_experiment(cls, tmp_path, _FakeDataset(names, annos))
    os.makedirs(os.path.join(exp.result_dir, "mine"), exist_ok=True)
    os.replace(tmp_path / "results" / "mine", os.path.join(exp.result_dir, "mine"))
    perf = exp.report(["mine"])["mine"]

    assert ours["success_auc"] == pytest.approx(perf["overall"]["success_score"], abs=1e-6)
    assert ours["precision_20"] == pytest.approx(perf["overall"]["precision_score"], abs=1e-6)
    np.testing.assert_allclose(ours["success_curve"], perf["overall"]["success_curve"], atol=1e-6)
    np.testing.assert_allclose(ours["precision_curve"], perf["overall"]["precision_curve"], atol=1e-6)
    for name in names:
        assert ours["per_sequence"][name]["success_auc"] == pytest.approx(
            perf["seq_wise"][name]["success_score"], abs=1e-6)
        assert ours["per_sequence"][name]["precision_20"] == pytest.approx(
            perf["seq_wise"][name]["precision_score"], abs=1e-6)
    assert 0.05 < ours["success_auc"] < 0.95  # the fixture is neither trivially perfect nor hopeless


def test_ao_sr_equal_the_toolkit_got10k_report(tmp_path):
    rng = np.random.default_rng(7)
    names = ["GOT-10k_Val_000001", "GOT-10k_Val_000002"]
    width, height = 120, 100
    annos, metas, gts, preds = [], [], [], []
    for n in (20, 35):
        gt, pred = _random_track(rng, n)
        cover = rng.integers(0, 9, n)
        cover[0] = 8
        cover[rng.choice(np.arange(1, n), 3, replace=False)] = 0  # absent frames
        annos.append(gt)
        metas.append({"resolution": f"({width}, {height})", "cover": cover})
        ours_gt = gt.copy()
        ours_gt[cover == 0] = np.nan
        gts.append(ours_gt)
        preds.append(pred)

    result_dir = tmp_path / "results"
    ious = []
    for name, gt_ours, pred in zip(names, gts, preds):
        d = result_dir / "GOT-10k" / "mine" / name
        d.mkdir(parents=True)
        np.savetxt(d / f"{name}_001.txt", pred, fmt="%.3f", delimiter=",")
        np.savetxt(d / f"{name}_time.txt", np.full(len(pred), 0.01), fmt="%.8f")
        back = np.loadtxt(d / f"{name}_001.txt", delimiter=",")
        ious.append(M.got10k_ious(gt_ours, back, bound=(width, height)))
        assert M.ao_sr(gt_ours, back, bound=(width, height))[0] == pytest.approx(ious[-1].mean())

    exp = ExperimentGOT10k.__new__(ExperimentGOT10k)
    exp.subset = "val"
    exp.dataset = _FakeDataset(names, annos, metas)
    exp.result_dir = str(result_dir / "GOT-10k")
    exp.report_dir = str(tmp_path / "reports" / "GOT-10k")
    exp.nbins_iou = 101
    exp.plot_curves = lambda *a, **k: None
    perf = exp.report(["mine"])["mine"]

    ao, sr50, sr75 = M.pooled_ao_sr(ious)
    assert ao == pytest.approx(perf["overall"]["ao"], abs=1e-6)
    assert sr50 == pytest.approx(perf["overall"]["sr"], abs=1e-6)
    assert sr75 == pytest.approx(perf["overall"]["succ_curve"][75], abs=1e-6)
    for name, seq_ious in zip(names, ious):
        assert M.pooled_ao_sr([seq_ious])[0] == pytest.approx(perf["seq_wise"][name]["ao"], abs=1e-6)


def test_size_ratio_is_the_median_side_ratio_after_the_first_frame():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4, [0, 0, 20, 5]], dtype=np.float64)
    # frame 0 (initialisation) is left out whatever it says; the absent frame 3 too; a NaN prediction is skipped
    pred = np.array([[0, 0, 99, 99], [0, 0, 20, 20], [0, 0, np.nan, 1], [0, 0, 50, 50], [0, 0, 20, 20]])
    assert M.size_ratios(gt, pred) == pytest.approx([2.0, 2.0])
    assert M.size_ratio(gt, pred) == pytest.approx(2.0)
    assert M.size_ratio(gt[:1], pred[:1]) != M.size_ratio(gt[:1], pred[:1])   # nothing to measure: NaN
    shrunk = gt.copy()
    shrunk[:, 2:] /= 2
    assert M.size_ratio(gt, shrunk) == pytest.approx(0.5)
