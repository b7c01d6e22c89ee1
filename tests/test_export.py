"""ONNX export and the inference backends: the exported graphs give the torch outputs, the onnxruntime tracker gives
the torch tracker's boxes, bf16 stays close to fp32, and misuse raises SiamtrackError subclasses."""
import dataclasses
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from siamtrack import boxes as B  # noqa: E402
from siamtrack.api import load_tracker, make_tracker  # noqa: E402
from siamtrack.checkpoint import save_checkpoint  # noqa: E402
from siamtrack.cli import main  # noqa: E402
from siamtrack.eval.speed import generated_frames  # noqa: E402
from siamtrack.config import load_config  # noqa: E402
from siamtrack.errors import ConfigError, SiamtrackError  # noqa: E402
from siamtrack.export import export_onnx  # noqa: E402
from siamtrack.models import build_model  # noqa: E402
from siamtrack.runtime import OnnxBackend, TorchBackend, native_bf16_supported  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SIAMTRACK_SHARED") or Path(__file__).resolve().parents[2] / "shared")
CPU = torch.device("cpu")


def _model(config, seed=0):
    cfg = load_config(ROOT / "experiments" / f"{config}.yaml")
    torch.manual_seed(seed)
    return build_model(cfg.model).eval(), cfg


@pytest.fixture(scope="module")
def alexnet(tmp_path_factory):
    """A random-init SiamFC-AlexNet checkpoint and its export, written by the CLI."""
    tmp = tmp_path_factory.mktemp("alexnet")
    model, cfg = _model("siamfc_alexnet")
    ckpt = tmp / "fc.pth"
    save_checkpoint(ckpt, model.state_dict(), cfg.to_dict())
    out = tmp / "onnx"
    assert main(["export", "--model", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    return ckpt, out, model, cfg


def _tuple(v):
    return v if isinstance(v, tuple) else (v,)


def _close(a, b, rel=1e-3):
    for x, y in zip(_tuple(a), _tuple(b)):
        assert x.shape == y.shape
        assert torch.allclose(x, y, rtol=rel, atol=rel * float(y.abs().max()))


@pytest.mark.parametrize("kind", ["naive", "depthwise", "upchannel"])
def test_export_correlations_match_eager_at_any_batch(kind, tmp_path):
    import onnxruntime as ort
    from siamtrack.export import export_correlation
    from siamtrack.models import correlation as C
    zc = 24 if kind == "upchannel" else 8
    extra = (3,) if kind == "upchannel" else ()

    class Corr(torch.nn.Module):
        def forward(self, x, z):
            return getattr(C, f"xcorr_{kind}")(x, z, *extra)

    g = torch.Generator().manual_seed(0)
    with export_correlation(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notices
        torch.onnx.export(Corr(), (torch.rand(2, 8, 17, 17), torch.rand(2, zc, 5, 5)), str(tmp_path / "c.onnx"),
                          dynamo=False, input_names=["x", "z"], output_names=["o"], opset_version=17,
                          dynamic_axes={"x": {0: "n"}, "z": {0: "n"}, "o": {0: "n"}})
    assert getattr(C, f"xcorr_{kind}").__module__ == "siamtrack.models.correlation"  # restored afterwards
    session = ort.InferenceSession(str(tmp_path / "c.onnx"), providers=["CPUExecutionProvider"])
    for n in (1, 3, 5):
        x, z = torch.rand(n, 8, 17, 17, generator=g), torch.rand(n, zc, 5, 5, generator=g)
        want = Corr()(x, z)
        got = torch.from_numpy(session.run(None, {"x": x.numpy(), "z": z.numpy()})[0])
        _close(got, want, rel=1e-5)


@pytest.mark.parametrize("config", ["siamfc_alexnet", "siamrpn_lite", "siamban_lite", "siamrpn_slim", "siamrpn_lite2",
                                    "siamrpn_lite_pw", "siamban_lite_pw"])
def test_graphs_match_torch(config, tmp_path):
    if not (ROOT / "experiments" / f"{config}.yaml").is_file():
        pytest.skip(f"{config}.yaml not in this checkout")
    model, cfg = _model(config)
    export_onnx(model, cfg, tmp_path)
    ort_net = OnnxBackend(tmp_path)
    t = cfg.tracker
    g = torch.Generator().manual_seed(1)
    for targets, scales in ((1, 3), (2, 3), (1, 1)):
        z = torch.rand(targets, 3, t.exemplar_size, t.exemplar_size, generator=g) * 255
        x = torch.rand(targets * scales, 3, t.search_size, t.search_size, generator=g) * 255
        with torch.no_grad():
            kernels = model.template(z)
            want = model.track(x, kernels)
        got_kernels = ort_net.template(z)
        _close(got_kernels, kernels)
        _close(ort_net.track(x, got_kernels), want)
        with torch.no_grad():
            _close(ort_net.embed(x), model.embed(x))
    # one crop runs the batch-1 graph (correlations as Conv nodes); an export without it (version 1) still tracks
    assert ort_net._track_single is not None
    (tmp_path / "track1.onnx").unlink()
    old = OnnxBackend(tmp_path)
    assert old._track_single is None
    _close(old.track(x, got_kernels), want)


def _play(tracker, frames, boxes):
    tracker.init_many(frames[0], boxes)
    return np.array([[r.box for r in tracker.update_many(f)] for f in frames[1:]])


def test_onnxruntime_tracker_reproduces_torch_boxes(alexnet):
    ckpt, out, _, _ = alexnet
    frames, gt, _ = generated_frames(30, 320, 240)
    torch_boxes = _play(load_tracker(str(ckpt), device="cpu", backend="torch"), frames, [gt[0]])
    ort_boxes = _play(load_tracker(str(out), backend="onnxruntime"), frames, [gt[0]])
    assert np.abs(torch_boxes - ort_boxes).max() <= 0.5
    # the random-init network still follows the generated target, so the comparison covers real motion
    assert np.abs(torch_boxes[:, 0] - gt[1:]).max() < 16


def test_onnxruntime_many_targets_match_torch(alexnet):
    ckpt, out, _, _ = alexnet
    frames, gt, _ = generated_frames(8, 320, 240)
    starts = [gt[0], gt[0] + np.array([20, -10, 0, 0])]
    torch_boxes = _play(load_tracker(str(ckpt), device="cpu", backend="torch"), frames, starts)
    ort_boxes = _play(load_tracker(str(out), backend="onnxruntime"), frames, starts)
    assert torch_boxes.shape == (7, 2, 4)
    assert np.abs(torch_boxes - ort_boxes).max() <= 0.5


def _val_sequence():
    sot = SHARED / "data" / "sot"
    if not (sot / "INDEX.tsv").is_file():
        pytest.skip("shared data not present")
    from siamtrack.data.datasets import open_dataset
    return open_dataset(sot, split="val")[0]


def _play_synced(ref, other, frames, boxes):
    """Per-frame box difference with `other` restarted from `ref`'s state (its numpy arrays) before every frame, so
    that one near-tie resolved differently does not carry over to all later frames."""
    ref.init_many(frames[0], boxes)
    other.init_many(frames[0], boxes)
    worst = 0.0
    for f in frames[1:]:
        for name, value in vars(ref).items():
            if isinstance(value, np.ndarray):
                setattr(other, name, value.copy())
        a = np.array([r.box for r in ref.update_many(f)])
        b = np.array([r.box for r in other.update_many(f)])
        worst = max(worst, float(np.abs(a - b).max()))
    return worst


def test_onnxruntime_matches_torch_on_real_val_sequence(alexnet):
    """Trained weights (when shipped) must give the same boxes over the whole run; a random-init network has flat
    responses whose near-ties can resolve differently, so there each frame is compared from the same state."""
    ckpt, out, _, _ = alexnet
    seq = _val_sequence()
    first = int(np.argmax(seq.valid))
    frames = [seq.frame(i) for i in range(first, min(len(seq), first + 60))]
    start = [seq.boxes[first]]
    trained = ROOT / "pretrained" / "siamfc_alexnet.pth"
    if trained.is_file():
        torch_boxes = _play(load_tracker("siamfc-alexnet", device="cpu", backend="torch"), frames, start)
        ort_boxes = _play(load_tracker("siamfc-alexnet", backend="onnxruntime"), frames, start)
        assert np.abs(torch_boxes - ort_boxes).max() <= 0.5
    else:
        worst = _play_synced(load_tracker(str(ckpt), device="cpu", backend="torch"),
                             load_tracker(str(out), backend="onnxruntime"), frames, start)
        assert worst <= 0.5


def test_bf16_boxes_stay_close_to_fp32(alexnet):
    _, _, model, cfg = alexnet
    # Emulated bf16 is slow on CPUs without native support: one scale and a few frames keep this test short.
    cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, num_scales=1))
    frames, gt, _ = generated_frames(8, 320, 240)
    fp32 = _play(make_tracker(TorchBackend(model, CPU), cfg, CPU), frames, [gt[0]])
    bf16_net = TorchBackend(model, CPU, precision="bf16", emulate_bf16=True)
    assert bf16_net.precision == "bf16"
    bf16 = _play(make_tracker(bf16_net, cfg, CPU), frames, [gt[0]])
    assert np.all(B.iou(fp32[:, 0], bf16[:, 0]) > 0.9)


def test_bf16_without_native_support_falls_back_to_fp32(alexnet):
    if native_bf16_supported("cpu"):
        pytest.skip("this CPU runs bf16 natively")
    _, _, model, _ = alexnet
    with pytest.warns(UserWarning, match="no native bf16"):
        net = TorchBackend(model, CPU, precision="bf16")
    assert net.precision == "fp32"


def test_onnxruntime_export_cache_is_reused(alexnet, tmp_path, monkeypatch):
    ckpt, _, _, _ = alexnet
    monkeypatch.setenv("SIAMTRACK_CACHE", str(tmp_path))
    first = load_tracker(str(ckpt), backend="onnxruntime").model
    stamp = (first.directory / "export.json").stat().st_mtime_ns
    second = load_tracker(str(ckpt), backend="onnxruntime").model
    assert second.directory == first.directory and first.directory.is_relative_to(tmp_path)
    assert (second.directory / "export.json").stat().st_mtime_ns == stamp


def test_misuse_raises_clear_errors(alexnet, tmp_path, monkeypatch, capsys):
    ckpt, out, _, _ = alexnet
    with pytest.raises(ConfigError, match="fp32 only"):
        load_tracker(str(ckpt), backend="onnxruntime", precision="bf16")
    with pytest.raises(ConfigError, match="unknown backend"):
        load_tracker(str(ckpt), backend="tensorrt")
    with pytest.raises(SiamtrackError, match="not a siamtrack ONNX export"):
        OnnxBackend(tmp_path)
    # a tracker that cuts other crop sides than the export's static shapes: a clear error, not onnxruntime's
    _, cfg = _model("siamfc_alexnet")
    other = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, search_size=cfg.tracker.search_size - 32))
    tracker = make_tracker(OnnxBackend(out), other, CPU)
    frames, gt, _ = generated_frames(2, 320, 240)
    tracker.init(frames[0], gt[0])
    with pytest.raises(ConfigError, match="takes 255 px crops, the tracker cuts 223 px"):
        tracker.update(frames[1])
    # exporting over an existing export needs --overwrite
    assert main(["export", "--model", str(ckpt), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # onnxruntime missing (a broken install: it is a requirement): a one-line hint to install it
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(SiamtrackError, match="pip install onnx onnxruntime"):
        OnnxBackend(out)


@pytest.mark.parametrize("config", ["siamrpn_lite", "siamban_lite"])
def test_rpn_and_ban_trackers_reproduce_torch_boxes(config, tmp_path):
    if not (ROOT / "experiments" / f"{config}.yaml").is_file():
        pytest.skip(f"{config}.yaml not in this checkout")
    model, cfg = _model(config)
    export_onnx(model, cfg, tmp_path)
    frames, gt, _ = generated_frames(15, 320, 240)
    # random weights regress random sizes, so the run is chaotic: compare each frame from the same state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        worst = _play_synced(make_tracker(TorchBackend(model, CPU), cfg, CPU),
                             make_tracker(OnnxBackend(tmp_path), cfg, CPU), frames, [gt[0]])
    assert worst <= 0.5
