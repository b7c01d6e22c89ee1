"""`siamtrack track`, `models` and `demo` end to end through the console entry point."""
import subprocess
import sys

import cv2
import numpy as np
import pytest

from siamtrack.data.synthetic import MovingSquare


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "siamtrack.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    d = tmp_path_factory.mktemp("video")
    seq = MovingSquare(seed=3)
    path = d / "clip.mp4"
    seq.write_video(path, 20)
    return path, seq


def test_track_video_writes_mp4_and_boxes(tmp_path, video, siamfc_checkpoint):
    path, seq = video
    box = ",".join(str(int(v)) for v in seq.box(0))
    out, txt = tmp_path / "out.mp4", tmp_path / "out.txt"
    r = cli("track", path, "--box", box, "--model", siamfc_checkpoint, "--device", "cpu", "--output", out,
            "--boxes", txt)
    assert r.returncode == 0, r.stderr
    assert "fps" in r.stdout
    rows = [line.split(",") for line in txt.read_text().splitlines()]
    assert len(rows) == 20 and all(len(row) == 5 for row in rows)
    assert np.allclose([float(v) for v in rows[0][:4]], seq.box(0))
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 20
    assert not list(tmp_path.glob(".*partial*"))

    # outputs are never overwritten unless asked
    before = txt.read_text()
    r = cli("track", path, "--box", box, "--model", siamfc_checkpoint, "--boxes", txt)
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr
    assert txt.read_text() == before
    r = cli("track", path, "--box", box, "--model", siamfc_checkpoint, "--boxes", txt, "--overwrite", "--states")
    assert r.returncode == 0
    assert all(len(line.split(",")) == 6 for line in txt.read_text().splitlines())


def test_two_targets_in_one_video(tmp_path, video, siamfc_checkpoint):
    path, seq = video
    txt = tmp_path / "two.txt"
    r = cli("track", path, "--box", "10,10,30,30", "--box", ",".join(str(int(v)) for v in seq.box(0)),
            "--model", siamfc_checkpoint, "--boxes", txt)
    assert r.returncode == 0, r.stderr
    assert all(len(line.split(",")) == 10 for line in txt.read_text().splitlines())


def test_otb_folder_uses_its_ground_truth_and_skips_corrupt_frames(tmp_path, siamfc_checkpoint):
    seq = MovingSquare(seed=4)
    img = tmp_path / "Seq" / "img"
    img.mkdir(parents=True)
    for i in range(8):
        cv2.imwrite(str(img / f"{i + 1:04d}.jpg"), seq.frame(i))
    (img / "0005.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    gt = ["nan,nan,nan,nan"] + [",".join(str(v + (1 if j < 2 else 0)) for j, v in enumerate(seq.box(i)))
                                for i in range(1, 8)]
    (tmp_path / "Seq" / "groundtruth_rect.txt").write_text("\n".join(gt) + "\n")
    txt = tmp_path / "b.txt"
    r = cli("track", tmp_path / "Seq", "--model", siamfc_checkpoint, "--boxes", txt)
    assert r.returncode == 0, r.stderr
    assert "0005.jpg" in r.stderr and "skipping" in r.stderr
    lines = txt.read_text().splitlines()
    assert len(lines) == 8                        # one line per frame, skipped and pre-init frames included
    assert lines[0].startswith("nan") and lines[4].startswith("nan")
    assert np.allclose([float(v) for v in lines[1].split(",")[:4]], seq.box(1))   # 1-based gt -> 0-based
    r = cli("track", tmp_path / "Seq", "--model", siamfc_checkpoint, "--on-bad-frame", "stop")
    assert r.returncode == 2 and "0005.jpg" in r.stderr


def test_models_lists_the_zoo():
    r = cli("models")
    assert r.returncode == 0
    for name in ("siamfc-alexnet", "siamrpn-lite"):
        assert name in r.stdout
