"""The bad-input battery: every bad input goes through the real CLI and must give exit code 2 and one line on stderr
naming the problem, never a traceback; inputs that are unusual but usable (grayscale, RGBA, 16-bit frames, frames that
change size) must track."""
import os
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from siamtrack.checkpoint import save_checkpoint
from siamtrack.data.synthetic import MovingSquare


def cli(*args, **env):
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-m", "siamtrack.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=e)


def assert_clean_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])


@pytest.fixture(scope="module")
def files(tmp_path_factory, siamfc_checkpoint):
    d = tmp_path_factory.mktemp("bad")
    seq = MovingSquare(seed=5)
    seq.write_video(d / "good.mp4", 6)
    data = (d / "good.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (d / "garbage.mp4").write_bytes(os.urandom(2000))
    (d / "empty").mkdir()
    (d / "text.pth").write_text("not weights")
    blob = torch.load(siamfc_checkpoint, weights_only=True)
    (d / "truncated.pth").write_bytes(siamfc_checkpoint.read_bytes()[:5000])
    other = dict(blob, model={"backbone.conv.weight": torch.zeros(3, 3)})
    save_checkpoint(d / "other_model.pth", other["model"], blob["config"])
    torch.save({"weights": torch.zeros(2)}, d / "foreign.pth")
    with open(d / "pickled.pth", "wb") as f:
        pickle.dump({"format": "siamtrack-checkpoint", "obj": MovingSquare}, f)
    return d, seq


BOX = "140,100,40,40"


@pytest.mark.parametrize("args,words", [
    (["track", "{d}/missing.mp4", "--box", BOX], ["no such file", "missing.mp4"]),
    (["track", "{d}/empty", "--box", BOX], ["no images"]),
    (["track", "{d}/garbage.mp4", "--box", BOX], ["garbage.mp4"]),
    (["track", "{d}/truncated.mp4", "--box", BOX], ["truncated.mp4"]),
    (["track", "99", "--box", BOX], ["camera 99"]),
    (["track", "{d}/good.mp4", "--box", "nan,1,10,10"], ["not finite"]),
    (["track", "{d}/good.mp4", "--box", "10,10,0,10"], ["no area"]),
    (["track", "{d}/good.mp4", "--box", "1000,1000,10,10"], ["outside"]),
    (["track", "{d}/good.mp4", "--box", "1,2,3"], ["4 numbers"]),
    (["track", "{d}/good.mp4"], ["--box"]),
    (["track", "{d}/good.mp4", "--box", BOX, "--show"], ["display"]),
    (["track", "{d}/good.mp4", "--box", BOX, "--model", "{d}/absent.pth"], ["not found"]),
    (["track", "{d}/good.mp4", "--box", BOX, "--model", "{d}/text.pth"], ["text.pth"]),
    (["track", "{d}/good.mp4", "--box", BOX, "--model", "{d}/truncated.pth"], ["truncated"]),
    (["track", "{d}/good.mp4", "--box", BOX, "--model", "{d}/other_model.pth"], ["another model"]),
    (["track", "{d}/good.mp4", "--box", BOX, "--model", "{d}/foreign.pth"], ["not a siamtrack checkpoint"]),
    (["track", "{d}/good.mp4", "--box", BOX, "--model", "{d}/pickled.pth"], ["pickled.pth"]),
    (["track", "{d}/good.mp4", "--box", BOX, "--model", "no-such-model"], ["unknown model"]),
    (["track", "{d}/good.mp4", "--box", BOX, "--device", "cuda"], ["cuda"]),
])
def test_bad_input_gives_one_line_and_exit_2(files, siamfc_checkpoint, args, words):
    d, _ = files
    args = [a.format(d=d) for a in args]
    if "--model" not in args:
        args += ["--model", str(siamfc_checkpoint)]
    assert_clean_error(cli(*args, DISPLAY=""), *words)


def test_unusual_frames_are_converted(tmp_path, siamfc_checkpoint):
    seq = MovingSquare(seed=6)
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "01.png"), seq.frame(0))
    cv2.imwrite(str(folder / "02.png"), cv2.cvtColor(seq.frame(1), cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "03.png"), cv2.cvtColor(seq.frame(2), cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "04.png"), seq.frame(3).astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "05.png"), cv2.resize(seq.frame(4), (160, 120)))     # size changes mid-stream
    cv2.imwrite(str(folder / "06.png"), seq.frame(5)[:20, :20])                   # smaller than the target
    out = tmp_path / "b.txt"
    r = cli("track", folder, "--box", ",".join(str(v) for v in seq.box(0)), "--model", siamfc_checkpoint,
            "--boxes", out, "--output", tmp_path / "v.mp4")
    assert r.returncode == 0, r.stderr
    rows = np.array([[float(v) for v in line.split(",")] for line in out.read_text().splitlines()])
    assert rows.shape == (6, 5) and np.all(np.isfinite(rows))
