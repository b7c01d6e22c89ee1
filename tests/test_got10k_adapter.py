"""Our trackers inside the official got10k toolkit, and the toolkit's result files inside `siamtrack benchmark`."""
import json

import cv2
import numpy as np
import pytest
from got10k.experiments import ExperimentOTB

from siamtrack.cli import main
from siamtrack.eval.got10k_adapter import Got10kTracker
from siamtrack.trackers.base import TrackResult

N = 8


@pytest.fixture(scope="module")
def otb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("otb")
    rng = np.random.default_rng(3)
    for name in ("Blob", "Spot"):
        (root / name / "img").mkdir(parents=True)
        bg = cv2.GaussianBlur(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), (5, 5), 0)
        patch = rng.integers(0, 255, (18, 16, 3), dtype=np.uint8)
        lines = []
        for i in range(N):
            x, y = 30 + 2 * i, 40 - i
            img = bg.copy()
            img[y:y + 18, x:x + 16] = patch
            cv2.imwrite(str(root / name / "img" / f"{i + 1:04d}.jpg"), img)
            lines.append(f"{x + 1},{y + 1},16,18")
        (root / name / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return root


class _Dataset:
    """What ExperimentOTB needs of a dataset (built here so that its constructor never downloads OTB)."""

    def __init__(self, root, names):
        self.root, self.seq_names = root, names

    def __len__(self):
        return len(self.seq_names)

    def __getitem__(self, i):
        name = i if isinstance(i, str) else self.seq_names[i]
        files = sorted(str(p) for p in (self.root / name / "img").glob("*.jpg"))
        return files, np.loadtxt(self.root / name / "groundtruth_rect.txt", delimiter=",")


def _experiment(root, tmp_path):
    e = ExperimentOTB.__new__(ExperimentOTB)
    e.dataset = _Dataset(root, ["Blob", "Spot"])
    e.result_dir = str(tmp_path / "results" / "OTB2015")
    e.report_dir = str(tmp_path / "reports" / "OTB2015")
    e.nbins_iou, e.nbins_ce = 21, 51
    e.plot_curves = lambda *a, **k: None  # 300-dpi plots: slow and beside the point
    return e


class _Echo:
    """Records the frames it is given and answers a fixed box."""

    def __init__(self):
        self.frames = []

    def init(self, frame, box):
        self.frames.append(frame)
        self.box = np.asarray(box, dtype=np.float64)

    def update(self, frame):
        self.frames.append(frame)
        return TrackResult(self.box + 1.0, 0.5)


def test_adapter_hands_our_tracker_bgr_frames_and_returns_boxes(otb_root):
    echo = _Echo()
    files, anno = _Dataset(otb_root, ["Blob"])[0]
    boxes, times = Got10kTracker(echo, "echo").track(files, anno[0])
    assert len(echo.frames) == N and echo.frames[0].dtype == np.uint8 and echo.frames[0].shape == (96, 128, 3)
    # The toolkit decodes with PIL (RGB); ours must see what cv2.imread (BGR) gives, up to JPEG decoder rounding.
    assert np.abs(echo.frames[3].astype(int) - cv2.imread(files[3]).astype(int)).mean() < 2
    np.testing.assert_allclose(boxes[0], anno[0])
    np.testing.assert_allclose(boxes[1:], np.tile(anno[0] + 1.0, (N - 1, 1)))
    assert len(times) == N


def test_toolkit_results_score_the_same_in_siamtrack_benchmark(otb_root, tmp_path):
    exp = _experiment(otb_root, tmp_path)
    tracker = Got10kTracker.from_name("opencv-mil")
    assert tracker.name == "opencv-mil"
    exp.run(tracker)
    perf = exp.report([tracker.name])[tracker.name]

    # Same files, read by our command (which must find them complete and track nothing).
    out = tmp_path / "ours.json"
    box_file = tmp_path / "results" / "OTB2015" / "opencv-mil" / "Blob.txt"
    stamp = box_file.stat().st_mtime_ns
    rc = main(["benchmark", "--root", str(otb_root), "--trackers", "opencv-mil", "--quiet",
               "--results", str(tmp_path / "results" / "OTB2015"), "--json", str(out)])
    assert rc == 0 and box_file.stat().st_mtime_ns == stamp
    ours = json.loads(out.read_text())["trackers"]["opencv-mil"]
    assert ours["success_auc"] == pytest.approx(perf["overall"]["success_score"], abs=1e-6)
    assert ours["precision_20"] == pytest.approx(perf["overall"]["precision_score"], abs=1e-6)
    for name in ("Blob", "Spot"):
        assert ours["per_sequence"][name]["success_auc"] == pytest.approx(
            perf["seq_wise"][name]["success_score"], abs=1e-6)
