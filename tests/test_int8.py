"""The int8 backend (onnxruntime static quantization, QDQ, per-channel weights): its boxes follow fp32's."""
import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from siamtrack import load_tracker  # noqa: E402
from siamtrack.errors import ConfigError  # noqa: E402
from siamtrack.eval.speed import generated_frames  # noqa: E402
from siamtrack.quantize import calibration_source, calibration_tag  # noqa: E402
from siamtrack.zoo import weights_path  # noqa: E402


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


# siamrpn-lite-pw runs int8 by default (the default model and backend; pixel-wise correlation, a MatMul in the
# graph); siamrpn-slim, siamrpn-lite and siamrpn-lite-s8 (its trunk run phase by phase at stride 8,
# siamtrack/models/efficientnet.py) are the other int8 models users pick
@pytest.mark.parametrize("name", ["siamrpn-slim", "siamrpn-lite", "siamrpn-lite-s8", "siamrpn-lite-pw"])
def test_int8_boxes_stay_within_a_few_pixels_of_fp32(name, cache, monkeypatch):
    if not weights_path(name).is_file():
        pytest.skip(f"{name} weights are not shipped")
    monkeypatch.setenv("SIAMTRACK_CACHE", str(cache))
    frames, gt, _ = generated_frames(60, 480, 360)
    fp32 = load_tracker(name, device="cpu", backend="onnxruntime")
    int8 = load_tracker(name, device="cpu", backend="onnxruntime", precision="int8")
    assert int8.model.precision == "int8" and int8.model.info["calibration"]["crops"] > 0
    # Step by step from the same state: each frame int8 starts where fp32 is, so the difference is the
    # quantization's, not that of two one-pass runs that part ways after a near tie between two anchors (which
    # happens between torch and onnxruntime fp32 too, and grows with weights whose regression reads the size).
    fp32.init(frames[0], gt[0])
    int8.init(frames[0], gt[0])
    step = []
    for f in frames[1:]:
        int8.centers, int8.sizes = fp32.centers.copy(), fp32.sizes.copy()
        step.append((fp32.update(f).box, int8.update(f).box))
    diff = np.abs(np.array([a - b for a, b in step]))
    assert np.median(diff) <= 1.0 and np.percentile(diff, 95) <= 3.0, (np.median(diff), diff.max())
    # and on its own, one pass, int8 follows the target (a 48x64 box drifting over a textured background)
    int8.init(frames[0], gt[0])
    boxes = np.array([int8.update(f).box for f in frames[1:]])
    centre_error = np.hypot(*(boxes[:, :2] + boxes[:, 2:] / 2 - gt[1:, :2] - gt[1:, 2:] / 2).T)
    assert np.median(centre_error) < 4.0


def test_int8_export_is_cached(cache, monkeypatch):
    if not weights_path("siamrpn-lite").is_file():
        pytest.skip("siamrpn-lite weights are not shipped")
    monkeypatch.setenv("SIAMTRACK_CACHE", str(cache))
    a = load_tracker("siamrpn-lite", device="cpu", backend="onnxruntime", precision="int8")
    b = load_tracker("siamrpn-lite", device="cpu", backend="onnxruntime", precision="int8")
    assert a.model.directory == b.model.directory and a.model.directory.name.endswith(f"-int8-{calibration_tag()}")


def test_calibration_data_names_the_int8_export(tmp_path):
    # Without tracking data the demo clip calibrates; with a sot split its index names it, so exports (and benchmark
    # records) calibrated on other data are never taken for one another.
    assert calibration_source(None) == (None, "demo") and calibration_source(tmp_path) == (None, "demo")
    index = tmp_path / "data" / "sot" / "INDEX.tsv"
    index.parent.mkdir(parents=True)
    index.write_text("name\tsplit\nA\ttrain\n")
    root, tag = calibration_source(tmp_path)
    assert root == index.parent and tag.startswith("sot-")
    index.write_text("name\tsplit\nB\ttrain\n")
    assert calibration_source(tmp_path)[1] not in (tag, "demo")


@pytest.mark.parametrize("flags, suffix", [(["avx2", "fma"], "-w7"), (["avx2", "avx512_vnni"], ""), ([], "")])
def test_the_int8_tag_names_the_weight_width(monkeypatch, flags, suffix):
    # Without VNNI the export is made another way (7-bit weights, float head outputs): a cache folder or benchmark
    # record of one recipe must not be taken for the other's. No flags known (not x86): the VNNI recipe.
    import siamtrack.device as device
    from siamtrack.quantize import weights_7bit
    monkeypatch.setattr(device, "cpu_info", lambda: {"model": "test", "flags": flags})
    monkeypatch.setattr("siamtrack.shared.shared_root", lambda: None)
    assert weights_7bit() == (suffix == "-w7") and calibration_tag() == "demo" + suffix


@pytest.mark.parametrize("backend, precision", [("torch", "int8"), ("onnxruntime", "bf16")])
def test_precision_a_backend_does_not_run_is_refused(backend, precision):
    with pytest.raises(ConfigError, match="use --backend"):
        load_tracker("siamfc-alexnet", device="cpu", backend=backend, precision=precision)
