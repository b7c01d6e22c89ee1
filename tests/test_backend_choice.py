"""The default backend, "auto": onnxruntime int8 on a CPU where onnxruntime is installed, torch fp32 anywhere else;
naming a backend keeps the meaning it had before "auto" existed (fp32 unless a precision is named)."""
import pytest
import torch

from siamtrack import load_tracker, runtime
from siamtrack.errors import ConfigError
from siamtrack.runtime import resolve_backend

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("backend, precision, device, want", [
    ("auto", "auto", CPU, ("onnxruntime", "int8")),
    ("auto", "fp32", CPU, ("onnxruntime", "fp32")),
    ("auto", "int8", CPU, ("onnxruntime", "int8")),
    ("auto", "bf16", CPU, ("torch", "bf16")),
    ("auto", "auto", CUDA, ("torch", "fp32")),
    ("torch", "auto", CPU, ("torch", "fp32")),
    ("torch", "bf16", CPU, ("torch", "bf16")),
    ("onnxruntime", "auto", CPU, ("onnxruntime", "fp32")),
    ("onnxruntime", "int8", CPU, ("onnxruntime", "int8")),
])
def test_auto_resolves_to_a_concrete_backend(monkeypatch, backend, precision, device, want):
    monkeypatch.setattr(runtime, "onnxruntime_installed", lambda: True)
    assert resolve_backend(backend, precision, device) == want


def test_without_onnxruntime_auto_is_torch(monkeypatch):
    monkeypatch.setattr(runtime, "onnxruntime_installed", lambda: False)
    assert resolve_backend("auto", "auto", CPU) == ("torch", "fp32")
    with pytest.raises(ConfigError, match="int8 needs onnxruntime"):
        resolve_backend("auto", "int8", CPU)


@pytest.mark.parametrize("backend, precision, device, message", [
    ("auto", "int8", CUDA, "int8 runs on the CPU only"),
    ("torch", "int8", CPU, "use --backend onnxruntime"),
    ("onnxruntime", "bf16", CPU, "use --backend torch"),
    ("tpu", "auto", CPU, "unknown backend 'tpu'"),
    ("auto", "fp16", CPU, "unknown precision 'fp16'"),
])
def test_impossible_choices_are_one_line_errors(monkeypatch, backend, precision, device, message):
    monkeypatch.setattr(runtime, "onnxruntime_installed", lambda: True)
    with pytest.raises(ConfigError, match=message):
        resolve_backend(backend, precision, device)


def test_load_tracker_defaults_to_int8_on_a_cpu(siamfc_checkpoint):
    pytest.importorskip("onnxruntime")
    tracker = load_tracker(str(siamfc_checkpoint), device="cpu")
    assert (tracker.model.name, tracker.model.precision) == ("onnxruntime", "int8")
    assert (load_tracker(str(siamfc_checkpoint), device="cpu", backend="torch").model.name) == "torch"
