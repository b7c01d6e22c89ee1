"""SiamFC loss and labels, the schedule, and short real training runs on a generated dataset (resume, DDP)."""
import math
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

import siamtrack
from siamtrack.checkpoint import load_checkpoint
from siamtrack.config import load_config
from siamtrack.data.pairs import PairDataset
from siamtrack.data.datasets import open_dataset
from siamtrack.models import build_model
from siamtrack.train.__main__ import main as train_main
from siamtrack.train.losses import balanced_logistic_loss, siamfc_labels
from siamtrack.train.objectives import build_objective
from siamtrack.train.trainer import lr_at

CONFIG = """
name: tiny-siamfc
model:
  backbone: {name: alexnet}
  head: {name: xcorr, args: {scale: 0.001}}
tracker: {type: siamfc}
train:
  epochs: 2
  pairs_per_epoch: 8
  batch_size: 2
  search_size: 159
  workers: 0
  static_image_prob: 0.0
  val_max_frames: 6
  checkpoint_minutes: 100
  seed: 3
"""


def test_loss_hand_computed():
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]]).view(1, 1, 2, 2)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731  logistic loss of a negative cell = softplus(logit)
    want = 0.5 * sp(-2.0) + 0.5 * (sp(-1.0) + sp(0.0) + sp(3.0)) / 3
    assert float(balanced_logistic_loss(logits, labels)) == pytest.approx(want, rel=1e-6)
    assert float(balanced_logistic_loss(torch.zeros(1, 1, 2, 2), labels)) == pytest.approx(math.log(2), rel=1e-6)


def test_loss_perfect_and_inverted_responses():
    box = torch.tensor([[60.0, 60.0, 40.0, 40.0]])  # centred in a 159 crop: centre 80 -> cell ~ (2, 2) of 5x5
    labels = siamfc_labels(box, 5, 8, 159, 16)
    perfect = (labels * 2 - 1) * 20
    assert float(balanced_logistic_loss(perfect, labels)) < 1e-6
    assert float(balanced_logistic_loss(-perfect, labels)) > 15


def test_labels_follow_the_target_centre():
    centred = siamfc_labels(torch.tensor([[99.5, 99.5, 40.0, 40.0]]), 15, 8, 239, 16)[0, 0]
    assert centred.sum() == 13 and centred[7, 7] == 1  # cells within 2 of the centre: 1 + 4 + 4 + 4
    assert centred[7, 9] == 1 and centred[7, 10] == 0 and centred[6, 6] == 1 and centred[5, 6] == 0
    shifted = siamfc_labels(torch.tensor([[107.5, 83.5, 40.0, 40.0]]), 15, 8, 239, 16)[0, 0]  # +8 px x, -16 px y
    ys, xs = np.nonzero(shifted.numpy())
    assert (xs.mean(), ys.mean()) == (8.0, 5.0)


def test_lr_decays_log_linearly():
    t = load_config_text(CONFIG).train
    assert lr_at(t, 0, 11) == pytest.approx(1e-2)
    assert lr_at(t, 10, 11) == pytest.approx(1e-5)
    assert lr_at(t, 5, 11) == pytest.approx(math.sqrt(1e-2 * 1e-5))


def load_config_text(text):
    import yaml
    from siamtrack.config import config_from_dict
    return config_from_dict(yaml.safe_load(text))


def make_root(root):
    """A tiny OTB root: a textured target drifting over noise, two train sequences and one val sequence."""
    rng = np.random.default_rng(0)
    rows = ["name\tsplit"]
    for name, split in (("A", "train"), ("B", "train"), ("C", "val")):
        (root / name / "img").mkdir(parents=True)
        bg = rng.integers(0, 120, (120, 160, 3), dtype=np.uint8)
        patch = rng.integers(130, 255, (20, 26, 3), dtype=np.uint8)
        lines = []
        for i in range(10):
            f = bg.copy()
            x, y = 40 + 3 * i, 50 + (i % 3)
            f[y:y + 20, x:x + 26] = patch
            cv2.imwrite(str(root / name / "img" / f"{i + 1:04d}.png"), f)
            lines.append(f"{x + 1},{y + 1},26,20")
        (root / name / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
        rows.append(f"{name}\t{split}")
    (root / "INDEX.tsv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    make_root(root / "data")
    (root / "tiny.yaml").write_text(CONFIG)
    return root


def run_train(tiny, out, *extra):
    return train_main(["--config", str(tiny / "tiny.yaml"), "--data", str(tiny / "data"), "--val-data",
                       str(tiny / "data"), "--out", str(out), "--threads", "1", *extra])


def test_a_few_steps_lower_the_loss(tiny):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = load_config(tiny / "tiny.yaml")
    model = build_model(cfg.model)
    objective = build_objective(cfg, model)
    ds = PairDataset(open_dataset(tiny / "data", split="train"), cfg, pairs=4)
    z, x, box, neg = (torch.stack(t) for t in zip(*(ds[i] for i in range(4))))
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    losses = []
    for _ in range(6):
        loss, _ = objective(model(z, x), box, neg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] * 0.9


def test_resume_matches_an_uninterrupted_run_and_checkpoints_load(tiny, tmp_path):
    assert run_train(tiny, tmp_path / "full", "--max-steps", "6") == 0
    assert run_train(tiny, tmp_path / "part", "--max-steps", "3") == 0
    blob = load_checkpoint(tmp_path / "part" / "last.pth")
    assert blob["train_state"]["step"] == 3 and blob["train_state"]["epoch"] == 0
    with open(tmp_path / "part" / "log.csv", "a") as f:
        f.write("4,1,1e-3,0.5,1.0,1.0\n")  # a step logged after the last checkpoint, by a run that was killed
    assert run_train(tiny, tmp_path / "part", "--max-steps", "6", "--resume") == 0
    full = load_checkpoint(tmp_path / "full" / "last.pth")["model"]
    part = load_checkpoint(tmp_path / "part" / "last.pth")["model"]
    for k in full:
        assert torch.equal(full[k], part[k]), k
    steps = [int(line.split(",")[0]) for line in (tmp_path / "part" / "log.csv").read_text().splitlines()[1:]]
    assert steps == [1, 2, 3, 4, 5, 6]
    # one epoch (4 steps) ended inside the run: validation wrote val.csv and best.pth
    assert len((tmp_path / "full" / "val.csv").read_text().splitlines()) == 2
    best = load_checkpoint(tmp_path / "full" / "best.pth")
    assert "optimizer" not in best and best["meta"]["val"]["auc"] >= 0
    tracker = siamtrack.load_tracker(str(tmp_path / "full" / "best.pth"), device="cpu")
    seq = open_dataset(tiny / "data", split="val")[0]
    tracker.init(seq.frame(0), seq.boxes[0])
    assert tracker.update(seq.frame(1)).box.shape == (4,)
    # an existing run is not overwritten without --resume
    assert run_train(tiny, tmp_path / "full", "--max-steps", "2") == 2


def test_init_starts_from_a_checkpoint(tiny, tmp_path):
    # another seed, so the checkpoint's weights are far from the config's own initialisation
    assert run_train(tiny, tmp_path / "first", "--max-steps", "3", "--seed", "7") == 0
    first = load_checkpoint(tmp_path / "first" / "last.pth")["model"]
    # one step from --init: the run's weights are the checkpoint's, not the config's initialisation
    assert run_train(tiny, tmp_path / "from", "--max-steps", "1", "--init", str(tmp_path / "first" / "last.pth")) == 0
    assert run_train(tiny, tmp_path / "fresh", "--max-steps", "1") == 0
    again = load_checkpoint(tmp_path / "from" / "last.pth")
    fresh = load_checkpoint(tmp_path / "fresh" / "last.pth")["model"]
    weights = [k for k in first if first[k].is_floating_point() and "running" not in k]
    near = max(float((again["model"][k] - first[k]).abs().max()) for k in weights)
    far = max(float((fresh[k] - first[k]).abs().max()) for k in weights)
    assert near < far / 5
    assert again["meta"]["init"] == str(tmp_path / "first" / "last.pth")
    # weights of another architecture are refused in one line
    assert run_train(tiny, tmp_path / "bad", "--init", "siamrpn-lite") == 2
    assert run_train(tiny, tmp_path / "missing", "--init", str(tmp_path / "nothing.pth")) == 2


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not on PATH")
def test_two_process_torchrun_keeps_ranks_identical(tiny, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "siamtrack.train", "--config", str(tiny / "tiny.yaml"), "--data", str(tiny / "data"),
           "--no-val", "--out", str(tmp_path / "ddp"), "--threads", "1", "--max-steps", "2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    # the ranks' own output, not only torchrun's summary, which does not say why a rank died
    assert res.returncode == 0, res.stderr[-8000:]
    state = load_checkpoint(tmp_path / "ddp" / "last.pth")["train_state"]
    assert state["step"] == 2 and state["rank_weight_max_diff"] == 0.0


WARM_OPENCV_THEN_TRAIN = """
import sys
import cv2, numpy as np
from siamtrack.train.__main__ import main
# What validation between epochs does in a real run: OpenCV's thread pool runs in the training process before the
# next epoch's pair workers start. Forked workers then hung on that pool.
cv2.setNumThreads(2)
frame = np.zeros((1080, 1920, 3), np.uint8)
for _ in range(5):
    cv2.warpAffine(frame, np.float32([[1, 0, 3], [0, 1, 2]]), (1920, 1080))
sys.exit(main(sys.argv[1:]))
"""


def test_pair_workers_start_after_opencv_has_run_threads(tiny, tmp_path):
    cmd = [sys.executable, "-c", WARM_OPENCV_THEN_TRAIN, "--config", str(tiny / "tiny.yaml"), "--data",
           str(tiny / "data"), "--val-data", str(tiny / "data"), "--out", str(tmp_path / "w"), "--threads", "1",
           "--workers", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-4000:]
    assert load_checkpoint(tmp_path / "w" / "last.pth")["train_state"]["epoch"] == 2
