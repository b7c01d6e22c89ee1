"""Distillation (`siamtrack distill`): the pruned initialisation, and short real runs on a generated dataset."""
import numpy as np
import pytest
import torch
import yaml

import siamtrack
from siamtrack.checkpoint import load_checkpoint
from siamtrack.cli import main
from siamtrack.data.datasets import open_dataset
from siamtrack.models.efficientnet import EfficientNetLite0
from siamtrack.train.distill import prune_init

from test_train import make_root

SLIM = {"stem": 16, "stages": [[3, 1, 1, 8, 1], [3, 2, 4, 16, 1], [5, 2, 4, 24, 2], [3, 2, 4, 48, 2],
                               [5, 1, 4, 112, 2]]}


def _randomised(m, seed=0):
    """Random BatchNorm scales and statistics, so that channel choice and folding are not trivially uniform."""
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.weight.data = torch.rand(n, generator=g) + 0.1
            mod.bias.data = torch.randn(n, generator=g) * 0.1
            mod.running_mean = torch.randn(n, generator=g) * 0.1
            mod.running_var = torch.rand(n, generator=g) + 0.5
    return m.eval()


def test_pruning_to_the_full_width_reproduces_the_teacher():
    torch.manual_seed(0)
    teacher = _randomised(EfficientNetLite0(out_stage=5))
    full = [[k, s, e, cout, n] for k, s, e, _, cout, n in
            [(3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
             (5, 1, 6, 80, 112, 3)]]
    student = EfficientNetLite0(out_stage=5, stem=32, stages=full).eval()
    prune_init(student, teacher)
    x = torch.rand(2, 3, 127, 127) * 255
    with torch.no_grad():
        assert torch.equal(student(x), teacher(x))


def test_a_slim_student_keeps_the_teachers_strongest_channels():
    torch.manual_seed(0)
    teacher = _randomised(EfficientNetLite0(out_stage=5))
    student = EfficientNetLite0(out_stage=5, **SLIM).eval()
    prune_init(student, teacher)
    keep = torch.argsort(teacher.stem[1].weight.abs(), descending=True)[:16].sort().values
    assert torch.equal(student.stem[0].weight, teacher.stem[0].weight[keep])
    # the last stage's stream keeps every channel (112 of 112), so the teacher's neck reads the student's output
    assert torch.equal(student.blocks[-1].project[1].running_mean, teacher.blocks[9].project[1].running_mean)
    with torch.no_grad():
        assert student(torch.zeros(1, 3, 255, 255)).shape == (1, 112, 17, 17)
    wider = EfficientNetLite0(out_stage=5, stem=16, stages=[[3, 1, 1, 8, 1], [3, 2, 4, 16, 3]]).eval()
    with pytest.raises(siamtrack.errors.ConfigError):
        prune_init(wider, teacher)   # three blocks in stage 2, where the teacher has two


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    make_root(root / "data")
    lite = yaml.safe_load((siamtrack.zoo.config_path("siamrpn-lite")).read_text())
    lite["name"] = "tiny-slim"
    lite["model"]["backbone"]["args"] = {"out_stage": 5, **SLIM}
    lite["train"].update(batch_size=2, workers=0, static_image_prob=0.0, checkpoint_minutes=100)
    (root / "slim.yaml").write_text(yaml.safe_dump(lite))
    other = dict(lite, model=dict(lite["model"], head={"name": "rpn_dw", "args": {"in_channels": 64, "channels": 32,
                                                                                    "num_anchors": 5}}))
    (root / "other_head.yaml").write_text(yaml.safe_dump(other))
    return root


def run(tiny, out, *extra, config="slim.yaml"):
    return main(["distill", "--config", str(tiny / config), "--teacher", "siamrpn-lite", "--data",
                 str(tiny / "data"), "--out", str(out), "--threads", "1", *extra])


def test_resume_matches_an_uninterrupted_run_and_the_student_tracks(tiny, tmp_path):
    assert run(tiny, tmp_path / "full", "--steps", "4") == 0
    assert run(tiny, tmp_path / "part", "--steps", "4", "--max-steps", "2") == 0
    assert load_checkpoint(tmp_path / "part" / "last.pth")["distill_state"]["step"] == 2
    assert run(tiny, tmp_path / "part", "--steps", "4", "--resume") == 0
    full = load_checkpoint(tmp_path / "full" / "last.pth")
    part = load_checkpoint(tmp_path / "part" / "last.pth")
    for k in full["model"]:
        assert torch.equal(full["model"][k], part["model"][k]), k
    assert full["distill_state"]["step"] == 4 and full["meta"]["distilled_from"] == "siamrpn-lite"
    lines = (tmp_path / "full" / "log.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in lines[1:]] == [1, 2, 3, 4]
    tracker = siamtrack.load_tracker(str(tmp_path / "full" / "last.pth"), device="cpu")
    seq = open_dataset(tiny / "data", split="val")[0]
    tracker.init(seq.frame(0), seq.boxes[0])
    box = tracker.update(seq.frame(1)).box
    assert box.shape == (4,) and np.isfinite(box).all()
    # an existing run is not overwritten without --resume
    assert run(tiny, tmp_path / "full", "--steps", "4") == 2
    # --init starts a new run from a trained student, not from the pruned teacher (a rate of ~0 keeps its weights)
    assert run(tiny, tmp_path / "init", "--steps", "1", "--lr", "1e-12", "--init",
               str(tmp_path / "full" / "last.pth")) == 0
    started = load_checkpoint(tmp_path / "init" / "last.pth")["model"]
    for k, v in full["model"].items():
        if k.endswith("weight"):
            assert torch.allclose(started[k], v, atol=1e-6), k


def test_bad_students_and_teachers_are_refused_in_one_line(tiny, tmp_path, capsys):
    assert run(tiny, tmp_path / "a", "--steps", "1", config="other_head.yaml") == 2
    assert "head must be the teacher's" in capsys.readouterr().err
    assert main(["distill", "--config", str(tiny / "slim.yaml"), "--teacher", "siamfc-alexnet", "--data",
                 str(tiny / "data"), "--out", str(tmp_path / "b"), "--steps", "1"]) == 2
    assert main(["distill", "--config", str(tiny / "slim.yaml"), "--teacher", "nothing.pth", "--data",
                 str(tiny / "data"), "--out", str(tmp_path / "c"), "--steps", "1"]) == 2
    capsys.readouterr()
    # a stride-16 student cannot mimic a stride-8 teacher cell by cell
    if siamtrack.zoo.weights_path("siamrpn-lite-s8").is_file():
        assert main(["distill", "--config", str(tiny / "slim.yaml"), "--teacher", "siamrpn-lite-s8", "--data",
                     str(tiny / "data"), "--out", str(tmp_path / "s8"), "--steps", "1"]) == 2
        assert "output_stride" in capsys.readouterr().err
    # --init needs a checkpoint of the student's own architecture, and starts a run rather than resuming one
    teacher_weights = str(siamtrack.zoo.weights_path("siamrpn-lite"))
    assert run(tiny, tmp_path / "d", "--steps", "1", "--init", teacher_weights) == 2
    assert "weights of another model" in capsys.readouterr().err
    assert run(tiny, tmp_path / "e", "--steps", "1", "--init", teacher_weights, "--resume") == 2
    assert "pass one of them" in capsys.readouterr().err
