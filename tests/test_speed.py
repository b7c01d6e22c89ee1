"""The speed command: runs end to end, writes JSON with exactly the documented keys, counts FLOPs from the model,
and rejects bad input with exit code 2. No timing is asserted: only structure and counts."""
import json

import cv2
import pytest
import torch

from siamtrack.cli import main
from siamtrack.eval.speed import count_gflops, generated_frames, initial_boxes
from siamtrack.config import load_config
from siamtrack.models import build_model

KEYS = {"model", "backend", "precision", "threads", "targets", "fps", "ms", "gflops_per_frame", "achieved_gflops",
        "gemm_gflops"}
STAGES = {"crop", "backbone", "head", "post", "total"}


def _speed(tmp_path, *extra):
    out = tmp_path / "speed.json"
    # one round unless the test compares (rounds only matter beside a peer)
    rounds = [] if "--compare" in extra else ["--rounds", "1"]
    # the torch backend: a random-init model has no digest to cache an onnxruntime export under, so the default
    # backend would export and quantize it afresh in every call (the default is timed below, on shipped weights)
    backend = [] if "--backend" in extra else ["--backend", "torch"]
    rc = main(["speed", "--model", "siamfc-alexnet", "--random-init", "--frames", "5", "--warmup", "1",
               "--threads", "1", "--json", str(out), *rounds, *backend, *extra])
    assert rc == 0
    return json.loads(out.read_text())


def test_speed_writes_exact_keys(tmp_path, capsys):
    r = _speed(tmp_path, "--frame-size", "320x240")
    assert set(r) == KEYS
    assert set(r["ms"]) == STAGES
    assert (r["backend"], r["precision"], r["threads"], r["targets"]) == ("torch", "fp32", 1, 1)
    assert all(v >= 0 for v in r["ms"].values()) and r["ms"]["total"] > 0
    assert r["fps"] == pytest.approx(1000 / r["ms"]["total"])
    # SiamFC-AlexNet search branch: about 5.4 GFLOPs per 255 crop, three scales per frame
    assert 15.5 < r["gflops_per_frame"] < 17.5
    assert r["achieved_gflops"] == pytest.approx(r["gflops_per_frame"] * r["fps"])
    assert r["gemm_gflops"]["fp32"] > 0
    assert "x the limit" in capsys.readouterr().out


def test_speed_many_targets_and_onnxruntime(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("SIAMTRACK_CACHE", str(tmp_path / "cache"))
    r = _speed(tmp_path, "--backend", "onnxruntime", "--targets", "2", "--frame-size", "400x300")
    assert (r["backend"], r["targets"]) == ("onnxruntime", 2)
    assert 31 < r["gflops_per_frame"] < 35


def test_flops_scale_with_crops():
    cfg = load_config("experiments/siamfc_alexnet.yaml")
    model = build_model(cfg.model).eval()
    z = torch.zeros(1, 3, 127, 127)
    one = count_gflops(model, z, torch.zeros(1, 3, 255, 255))
    three = count_gflops(model, z, torch.zeros(3, 3, 255, 255))
    assert 5.0 < one < 5.8 and three == pytest.approx(3 * one)


def test_generated_frames_keep_the_target_size():
    small, gs, _ = generated_frames(3, 320, 240)
    big, gb, _ = generated_frames(3, 1920, 1080)
    assert small[0].shape == (240, 320, 3) and big[0].shape == (1080, 1920, 3)
    assert (gs[:, 2:] == gb[:, 2:]).all()
    boxes = initial_boxes(gs[0], 16, 320, 240)
    assert len(boxes) == 16 and all(0 <= b[0] <= 320 - b[2] and 0 <= b[1] <= 240 - b[3] for b in boxes)


@pytest.mark.parametrize("args, message", [
    (["--frame-size", "10x10"], "at least 64x64"),
    (["--frame-size", "big"], "1920x1080"),
    (["--frames", "0"], "at least 1"),
    (["--rounds", "0"], "at least 1"),
    (["--backend", "onnxruntime", "--precision", "bf16"], "fp32 only"),
])
def test_speed_bad_input_exits_2(args, message, capsys):
    rc = main(["speed", "--model", "siamfc-alexnet", "--random-init", *args])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_speed_refuses_to_overwrite_json(tmp_path, capsys):
    out = tmp_path / "speed.json"
    out.write_text("{}")
    assert main(["speed", "--model", "siamfc-alexnet", "--random-init", "--json", str(out)]) == 2
    assert out.read_text() == "{}"



def test_speed_defaults_to_the_default_model_and_backend(tmp_path):
    from siamtrack import zoo
    from siamtrack.errors import CheckpointError
    pytest.importorskip("onnxruntime")
    try:
        name = zoo.default_model()
    except CheckpointError:
        pytest.skip("no shipped weights")
    out = tmp_path / "speed.json"
    assert main(["speed", "--frames", "5", "--warmup", "1", "--rounds", "1", "--frame-size", "320x240",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert (r["model"], r["backend"], r["precision"]) == (name, "onnxruntime", "int8")


def test_speed_times_the_tracking_step_when_extra_targets_get_lost(tmp_path):
    # Found by hand: with 16 targets, some of the extra targets (placed beside the real one) got lost; the whole-frame
    # search then made the last crops a batch of tiles for the lost ones only, and the FLOP count on them did not fit
    # the 16 kernels (a traceback). The speed command now times tracking only. Today's weights keep those targets, so
    # the loss is forced: a target is lost on the first frame scoring under 0.97 (on these generated frames the 16
    # targets score 0.90-1.00) and never resumes, which leaves some targets lost and some tracked at the end.
    from siamtrack.zoo import weights_path
    if not weights_path("siamrpn-lite").is_file():
        pytest.skip("siamrpn-lite weights are not shipped")
    blob = torch.load(weights_path("siamrpn-lite"), weights_only=True)
    blob["config"]["tracker"].update(lost_below=0.97, uncertain_below=0.97, lost_patience=1, recover_above=1.0)
    path = tmp_path / "siamrpn_lite_loses.pth"
    torch.save(blob, path)
    out = tmp_path / "speed.json"
    assert main(["speed", "--model", str(path), "--backend", "torch", "--frames", "5", "--warmup", "1",
                 "--targets", "16", "--frame-size", "320x240", "--rounds", "1", "--threads", "2",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["targets"] == 16


def test_speed_compare_writes_both_trackers(tmp_path, capsys):
    r = _speed(tmp_path, "--frame-size", "320x240", "--compare", "opencv-mil")
    assert set(r) == KEYS | {"compare", "cpu", "libraries"}
    assert r["libraries"]["cv2"] == cv2.__version__
    assert set(r["compare"]) == {"opencv-mil"}
    peer = r["compare"]["opencv-mil"]
    assert set(peer) == {"ms", "fps", "ratio", "rounds"} and peer["ms"] > 0
    # three alternating rounds by default; the peer's figure is their median, ours the median round's
    assert len(peer["rounds"]) == 3
    assert peer["ms"] == pytest.approx(sorted(r["ms"] for r in peer["rounds"])[1])
    assert r["ms"]["total"] == pytest.approx(sorted(x["ours_ms"] for x in peer["rounds"])[1])
    assert peer["fps"] == pytest.approx(1000 / peer["ms"])
    assert peer["ratio"] == pytest.approx(r["fps"] / peer["fps"])
    assert r["cpu"]["model"] and isinstance(r["cpu"]["flags"], list)
    assert "vs opencv-mil" in capsys.readouterr().out


def test_speed_compare_with_nanotrack(tmp_path, shared):
    nano = shared / "peers" / "nanotrack-v2"
    if not (nano / "nanotrackv2_head_sim.onnx").is_file():
        pytest.skip("the NanoTrack peer files are not present")
    r = _speed(tmp_path, "--frame-size", "320x240", "--compare", "opencv-nano",
               "--nano-backbone", str(nano / "nanotrackv2_backbone_sim.onnx"),
               "--nano-head", str(nano / "nanotrackv2_head_sim.onnx"))
    assert r["compare"]["opencv-nano"]["fps"] > 0


@pytest.mark.parametrize("args, message", [
    (["--compare", "opencv-nano", "--nano-backbone", "/nonexistent.onnx", "--nano-head", "/nonexistent.onnx"],
     "nonexistent"),
    (["--compare", "no-such-tracker"], "unknown model"),
    (["--compare", "opencv-mil", "--targets", "2"], "one target"),
])
def test_speed_compare_bad_input_exits_2(args, message, capsys):
    rc = main(["speed", "--model", "siamfc-alexnet", "--random-init", "--frames", "2", "--frame-size", "320x240",
               *args])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
