"""The one-pass runner and `siamtrack benchmark` end to end on a generated OTB-format folder."""
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siamtrack.checkpoint import save_checkpoint
from siamtrack.cli import main
from siamtrack.config import load_config
from siamtrack.data.datasets import open_dataset
from siamtrack.eval.runner import run_sequence
from siamtrack.models import build_model
from siamtrack.trackers.base import TrackResult

REPO = Path(__file__).resolve().parents[1]
N = 10


def _write_sequence(folder, names, nan_rows, rng):
    """A textured background with a bright patch drifting right; ground truth 1-based as OTB writes it."""
    (folder / "img").mkdir(parents=True)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (7, 7), 0)
    patch = rng.integers(150, 255, (24, 20, 3), dtype=np.uint8)
    lines = []
    for i, name in enumerate(names):
        x, y = 40 + 3 * i, 50 + i
        img = bg.copy()
        img[y:y + 24, x:x + 20] = patch
        cv2.imwrite(str(folder / "img" / name), img)
        lines.append("nan,nan,nan,nan" if i in nan_rows else f"{x + 1},{y + 1},20,24")
    (folder / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("otb")
    rng = np.random.default_rng(0)
    # Zero-padded names for one sequence; unpadded, .png, natural order (img_9 before img_10) for the other.
    _write_sequence(root / "Walker", [f"{i + 1:04d}.jpg" for i in range(N)], {0, 1, 6}, rng)
    _write_sequence(root / "Drifter", [f"img_{i + 7}.png" for i in range(N)], set(), rng)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    cfg = load_config(REPO / "experiments" / "siamfc_alexnet.yaml")
    cfg.tracker.num_scales = 1  # a third of the network time: the shared CPUs of CI are slow
    path = tmp_path_factory.mktemp("ckpt") / "random_siamfc.pth"
    save_checkpoint(path, build_model(cfg.model).state_dict(), cfg.to_dict(), {"note": "random init, for tests"})
    return path


class Recorder:
    """Follows the ground truth it is told about nowhere: returns a fixed box and logs every call."""

    def __init__(self):
        self.calls = []

    def init(self, frame, box):
        self.calls.append(("init", frame.copy(), np.array(box)))

    def update(self, frame):
        self.calls.append(("update", frame.copy(), None))
        return TrackResult(np.array([1.0, 2.0, 3.0, 4.0]), 0.25)


def test_run_sequence_inits_once_on_first_valid_frame(dataset):
    seq = open_dataset(dataset, "otb", names=["Walker"])[0]
    rec = Recorder()
    out = run_sequence(rec, seq)
    assert out["init_frame"] == 2
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["init"] + ["update"] * (N - 3)          # never re-initialised, not even after the NaN frame 6
    np.testing.assert_array_equal(rec.calls[0][1], seq.frame(2))
    np.testing.assert_allclose(rec.calls[0][2], seq.boxes[2])
    assert np.isnan(out["boxes"][:2]).all() and np.isnan(out["scores"][:2]).all()
    np.testing.assert_allclose(out["boxes"][2], seq.boxes[2])
    np.testing.assert_allclose(out["boxes"][3:], np.tile([1.0, 2.0, 3.0, 4.0], (N - 3, 1)))
    assert (out["times"][:2] == 0).all() and (out["times"][2:] > 0).all() and (out["decode"][2:] > 0).all()

    short = run_sequence(Recorder(), seq, max_frames=4)
    assert len(short["boxes"]) == 4 and not np.isnan(short["boxes"][3]).any()


def test_run_sequence_without_valid_box_tracks_nothing(dataset):
    seq = open_dataset(dataset, "otb", names=["Walker"])[0]
    seq.boxes[:] = np.nan
    rec = Recorder()
    out = run_sequence(rec, seq)
    assert rec.calls == [] and out["init_frame"] == -1 and np.isnan(out["boxes"]).all()


MAX_FRAMES = 6  # of N: enough for every code path, and keeps the random SiamFC run short


def _bench(dataset, tmp, *extra):
    return main(["benchmark", "--root", str(dataset), "--quiet", "--max-frames", str(MAX_FRAMES), *extra])


def _numbers(payload):
    """The JSON without speeds, which differ between runs by nature."""
    out = {}
    for name, t in payload["trackers"].items():
        out[name] = {k: v for k, v in t.items() if k not in ("fps", "per_sequence")}
        out[name]["per_sequence"] = {s: {k: v for k, v in d.items() if k != "fps"}
                                     for s, d in t["per_sequence"].items()}
    return out


@pytest.fixture(scope="module")
def first_run(dataset, checkpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    rc = _bench(dataset, tmp, "--trackers", f"opencv-mil,{checkpoint}", "--results", str(tmp / "results"),
                "--json", str(tmp / "out.json"), "--report", str(tmp / "report"))
    assert rc == 0
    return tmp


def test_benchmark_writes_the_json_contract_and_report(first_run, dataset):
    payload = json.loads((first_run / "out.json").read_text())
    assert set(payload) == {"dataset", "machine", "trackers"}
    assert set(payload["dataset"]) == {"root", "format", "split", "sequences", "frames", "runs"}
    assert payload["dataset"]["format"] == "otb" and payload["dataset"]["frames"] == 2 * MAX_FRAMES
    assert set(payload["machine"]) == {"device", "threads", "cpu", "libraries"}
    assert payload["machine"]["libraries"]["torch"] == torch.__version__
    assert set(payload["trackers"]) == {"opencv-mil", "random_siamfc"}
    for t in payload["trackers"].values():
        assert set(t) == {"success_auc", "precision_20", "norm_precision", "ao", "sr50", "sr75", "fps", "frames",
                          "size_ratio", "size_ratio_max", "per_sequence"}
        assert set(t["per_sequence"]) == {"Walker", "Drifter"}
        for s in t["per_sequence"].values():
            assert set(s) == {"success_auc", "precision_20", "fps", "frames", "size_ratio"}
        assert 0 <= t["success_auc"] <= 1 and t["fps"] > 0 and t["frames"] == 2 * MAX_FRAMES
    # MIL follows a rigid, textured patch on a static background: it should not lose it.
    assert payload["trackers"]["opencv-mil"]["success_auc"] > 0.5
    for f in ("report.md", "success.png", "precision.png", "per_sequence.png"):
        assert (first_run / "report" / f).stat().st_size > 0
    table = (first_run / "report" / "report.md").read_text()
    assert "| opencv-mil |" in table and "| random_siamfc |" in table

    walker = (first_run / "results" / "opencv-mil" / "Walker.txt").read_text().splitlines()
    assert len(walker) == MAX_FRAMES and walker[0] == "nan,nan,nan,nan"
    assert walker[2] == "47.000,53.000,20.000,24.000"   # the init box, 1-based as the ground-truth file
    times = np.loadtxt(first_run / "results" / "opencv-mil" / "times" / "Walker_time.txt")
    assert len(times) == MAX_FRAMES


def test_second_run_reuses_results_unless_forced(first_run, dataset, checkpoint):
    box_file = first_run / "results" / "random_siamfc" / "Drifter.txt"
    stamp = box_file.stat().st_mtime_ns
    rc = _bench(dataset, first_run, "--trackers", f"opencv-mil,{checkpoint}", "--results",
                str(first_run / "results"), "--json", str(first_run / "again.json"))
    assert rc == 0 and box_file.stat().st_mtime_ns == stamp
    assert json.loads((first_run / "again.json").read_text()) == json.loads((first_run / "out.json").read_text())

    rc = _bench(dataset, first_run, "--trackers", str(checkpoint), "--sequences", "Drifter", "--force",
                "--results", str(first_run / "results"))
    assert rc == 0 and box_file.stat().st_mtime_ns != stamp


def test_the_same_weights_reached_by_another_path_reuse_results(first_run, dataset, checkpoint, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(first_run / "results", results)
    copy = tmp_path / "elsewhere" / checkpoint.name
    copy.parent.mkdir()
    shutil.copy2(checkpoint, copy)
    box_file = results / "random_siamfc" / "Drifter.txt"
    stamp = box_file.stat().st_mtime_ns
    assert _bench(dataset, tmp_path, "--trackers", os.path.relpath(copy), "--results", str(results)) == 0
    assert box_file.stat().st_mtime_ns == stamp


def test_results_of_another_setup_are_not_reused(first_run, dataset, checkpoint, tmp_path, capsys):
    """The same name with other weights, or another precision, must not be scored on the first run's boxes."""
    results = tmp_path / "results"
    shutil.copytree(first_run / "results", results)
    record = json.loads((results / "random_siamfc" / "tracker.json").read_text())
    # the default backend on a CPU, recorded as what ran rather than as "auto"
    assert (record["backend"], record["precision"]) == ("onnxruntime", "int8") and len(record["weights_sha256"]) == 64
    assert json.loads((results / "opencv-mil" / "tracker.json").read_text())["opencv"] == cv2.__version__

    assert _bench(dataset, tmp_path, "--trackers", str(checkpoint), "--precision", "bf16", "--results",
                  str(results)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "precision" in err[0] and "--force" in err[0]

    retrained = tmp_path / "retrained" / checkpoint.name   # same file name: same results folder
    retrained.parent.mkdir()
    blob = torch.load(checkpoint, weights_only=True)
    blob["model"] = {k: v + 1 if v.is_floating_point() else v for k, v in blob["model"].items()}
    torch.save(blob, retrained)
    box_file = results / "random_siamfc" / "Drifter.txt"
    before = box_file.read_text()
    assert _bench(dataset, tmp_path, "--trackers", str(retrained), "--results", str(results)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "weights_sha256" in err[0]
    assert box_file.read_text() == before                       # refused: nothing tracked, nothing overwritten

    # forced on one sequence: the other sequence's old boxes go too, rather than pass for the new weights'
    assert _bench(dataset, tmp_path, "--trackers", str(retrained), "--force", "--sequences", "Drifter",
                  "--results", str(results)) == 0
    assert not (results / "random_siamfc" / "Walker.txt").exists() and box_file.exists()
    assert json.loads((results / "random_siamfc" / "tracker.json").read_text())["weights_sha256"] != \
        record["weights_sha256"]


def test_workers_and_shards_give_the_same_numbers(first_run, dataset, tmp_path):
    first = _numbers(json.loads((first_run / "out.json").read_text()))
    reference = {"opencv-mil": first["opencv-mil"]}

    assert _bench(dataset, tmp_path, "--trackers", "opencv-mil", "--workers", "2", "--results",
                  str(tmp_path / "par"), "--json", str(tmp_path / "par.json")) == 0
    assert _numbers(json.loads((tmp_path / "par.json").read_text())) == reference

    for i in (1, 2):
        assert _bench(dataset, tmp_path, "--trackers", "opencv-mil", "--shard", f"{i}/2", "--results",
                      str(tmp_path / f"shard{i}")) == 0
    # a checkpoint's folder (named by its file stem) merges and scores too
    shutil.copytree(first_run / "results" / "random_siamfc", tmp_path / "shard1" / "random_siamfc")
    assert len(list((tmp_path / "shard1" / "opencv-mil").glob("*.txt"))) == 1
    assert _bench(dataset, tmp_path, "--merge", f"{tmp_path / 'shard1'},{tmp_path / 'shard2'}", "--results",
                  str(tmp_path / "merged"), "--json", str(tmp_path / "merged.json")) == 0
    merged = _numbers(json.loads((tmp_path / "merged.json").read_text()))
    assert merged.pop("random_siamfc")["success_auc"] == first["random_siamfc"]["success_auc"]
    assert merged == reference
    assert (tmp_path / "merged" / "opencv-mil" / "tracker.json").read_text() == \
        (tmp_path / "shard1" / "opencv-mil" / "tracker.json").read_text()


def test_init_jitter_averages_runs_from_shifted_first_boxes(first_run, dataset, tmp_path, capsys):
    from siamtrack import boxes as B
    from siamtrack.eval.bench import score_tracker
    from siamtrack.eval.runner import SRE_JITTERS
    assert _bench(dataset, tmp_path, "--trackers", "opencv-mil", "--init-jitter", "2", "--results",
                  str(tmp_path / "res"), "--json", str(tmp_path / "sre.json")) == 0
    assert "success AUC per run" in capsys.readouterr().out
    payload = json.loads((tmp_path / "sre.json").read_text())
    assert payload["dataset"]["runs"] == 3
    seqs = open_dataset(dataset, "otb", None)
    each = [score_tracker(name, seqs, tmp_path / "res", MAX_FRAMES)
            for name in ("opencv-mil", "opencv-mil@sre1", "opencv-mil@sre2")]
    got = payload["trackers"]["opencv-mil"]
    assert got["success_auc"] == pytest.approx(np.mean([e["success_auc"] for e in each]))
    assert got["frames"] == each[0]["frames"]                      # frames of one run, not of all three
    for name, per in got["per_sequence"].items():
        assert per["success_auc"] == pytest.approx(np.mean([e["per_sequence"][name]["success_auc"] for e in each]))
    # run k starts from the k-th SRE box (1-based OTB files)
    for seq in seqs:
        first = np.loadtxt(tmp_path / "res" / "opencv-mil@sre2" / f"{seq.name}.txt", delimiter=",")[0]
        np.testing.assert_allclose(first, B.jittered(seq.boxes[0], *SRE_JITTERS[1]) + [1, 1, 0, 0], atol=1e-3)


@pytest.mark.parametrize("extra, message", [
    (["--trackers", "opencv-mil", "--init-jitter", "13"], "--init-jitter"),
    (["--trackers", "no-such-model"], "unknown model"),
    (["--trackers", "opencv-kcf"], "opencv-contrib"),
    (["--trackers", "opencv-nano", "--nano-backbone", "missing.onnx", "--nano-head", "missing.onnx"],
     "not found"),
    (["--trackers", "opencv-mil", "--shard", "3/2"], "--shard"),
    (["--trackers", "opencv-mil", "--sequences", "Nope"], "Nope"),
])
def test_bad_input_is_one_line_and_exit_2(dataset, tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.delenv("SIAMTRACK_NANO_BACKBONE", raising=False)
    if "opencv-kcf" in extra and hasattr(cv2, "TrackerKCF_create"):
        pytest.skip("this OpenCV has the contrib trackers")
    rc = _bench(dataset, tmp_path, "--results", str(tmp_path / "r"), *extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0]
