"""The int8 backend (onnxruntime static quantization, QDQ, per-channel weights): its boxes follow fp32's."""
import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from siamtrack import load_tracker  # noqa: E402
from siamtrack.errors import ConfigError  # noqa: E402
from siamtrack.eval.speed import generated_frames  # noqa: E402
from siamtrack.zoo import weights_path  # noqa: E402


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_int8_boxes_stay_within_a_few_pixels_of_fp32(cache, monkeypatch):
    if not weights_path("siamrpn-lite").is_file():
        pytest.skip("siamrpn-lite weights are not shipped")
    monkeypatch.setenv("SIAMTRACK_CACHE", str(cache))
    frames, gt, _ = generated_frames(60, 480, 360)
    fp32 = load_tracker("siamrpn-lite", device="cpu", backend="onnxruntime")
    int8 = load_tracker("siamrpn-lite", device="cpu", backend="onnxruntime", precision="int8")
    assert int8.model.precision == "int8" and int8.model.info["calibration"]["crops"] > 0
    boxes = {}
    for name, tracker in (("fp32", fp32), ("int8", int8)):
        tracker.init(frames[0], gt[0])
        boxes[name] = np.array([tracker.update(f).box for f in frames[1:]])
    diff = np.abs(boxes["fp32"] - boxes["int8"])
    assert np.median(diff) <= 1.0 and np.percentile(diff, 95) <= 3.0, (np.median(diff), diff.max())
    # and both follow the target (a 48x64 box drifting over a textured background)
    centre_error = np.hypot(*(boxes["int8"][:, :2] + boxes["int8"][:, 2:] / 2 - gt[1:, :2] - gt[1:, 2:] / 2).T)
    assert np.median(centre_error) < 4.0


def test_int8_export_is_cached(cache, monkeypatch):
    if not weights_path("siamrpn-lite").is_file():
        pytest.skip("siamrpn-lite weights are not shipped")
    monkeypatch.setenv("SIAMTRACK_CACHE", str(cache))
    a = load_tracker("siamrpn-lite", device="cpu", backend="onnxruntime", precision="int8")
    b = load_tracker("siamrpn-lite", device="cpu", backend="onnxruntime", precision="int8")
    assert a.model.directory == b.model.directory and a.model.directory.name.endswith("-int8")


@pytest.mark.parametrize("backend, precision", [("torch", "int8"), ("onnxruntime", "bf16")])
def test_precision_a_backend_does_not_run_is_refused(backend, precision):
    with pytest.raises(ConfigError, match="use --backend"):
        load_tracker("siamfc-alexnet", device="cpu", backend=backend, precision=precision)
