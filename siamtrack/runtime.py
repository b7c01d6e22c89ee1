"""Inference backends: what a tracker calls as `self.model` (siamtrack.loader builds them).

A backend has the SiameseNet contract the trackers use, `template(z) -> kernels`, `track(x, kernels) -> output` and
`stride`, plus `embed(x)` (the search branch alone, for the speed command's per-stage timing). Kernels and outputs
are torch tensors or tuples of them, as the model's head returns them; outputs are float32.

- `TorchBackend`: eval mode, BatchNorm folded into the convolutions, channels-last, inference mode, and bf16 autocast
  when the CPU has native bf16 (checked at run time; otherwise fp32 with a warning, because emulated bf16 is slower).
- `OnnxBackend`: the graphs written by `siamtrack.export` (the batch-1 track graph for a single search crop), run by
  onnxruntime (a requirement since it became the default CPU backend, still imported lazily);
  with precision int8, those graphs statically quantized (siamtrack.quantize).
"""
from __future__ import annotations

import copy
import importlib.util
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, SiamtrackError
from .export import read_export_info
from .models.fuse import fold_siamese

# "auto" (the default everywhere) is resolved by `resolve_backend` before anything is loaded
BACKENDS = ("auto", "torch", "onnxruntime")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
# which precisions each backend runs
BACKEND_PRECISIONS = {"torch": ("fp32", "bf16"), "onnxruntime": ("fp32", "int8")}


def native_bf16_supported(device) -> bool:
    """True where bf16 matrix math runs in hardware: AVX512-BF16/AMX on x86 (oneDNN's own check), or a CUDA device
    that supports it."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_choice(value, allowed, what):
    if value not in allowed:
        raise ConfigError(f"unknown {what} {value!r}: use one of {', '.join(allowed)}")
    return value


def _map(fn, value):
    if isinstance(value, (tuple, list)):
        return type(value)(_map(fn, v) for v in value)
    return fn(value)


def _flatten(value):
    return list(value) if isinstance(value, (tuple, list)) else [value]


class TorchBackend:
    """A SiameseNet prepared for inference. `emulate_bf16` forces bf16 on hardware without native support (tests use
    it to check bf16 numerics anywhere; it is slow)."""

    name = "torch"

    def __init__(self, model, device, precision="fp32", channels_last=True, fold_bn=True,
                 exemplar_size=127, search_size=255, emulate_bf16=False):
        check_choice(precision, PRECISIONS, "precision")
        self.device = torch.device(device)
        # a copy: moving, folding and re-laying out must not change the caller's model
        model = copy.deepcopy(model).to(self.device).eval()
        if fold_bn:
            model = fold_siamese(model, exemplar_size, search_size, self.device)
        self.channels_last = channels_last
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        if precision == "bf16" and not (native_bf16_supported(self.device) or emulate_bf16):
            warnings.warn(f"bf16 requested but this {self.device.type} has no native bf16 support "
                          f"(cpu capability {torch.backends.cpu.get_cpu_capability()}); running fp32", stacklevel=2)
            precision = "fp32"
        self.precision = precision

    @property
    def stride(self):
        return self.model.stride

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _input(self, t):
        t = t.to(self.device)
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last else t

    @torch.inference_mode()
    def template(self, z):
        with self._autocast():
            return self.model.template(self._input(z))

    @torch.inference_mode()
    def embed(self, x):
        with self._autocast():
            return self.model.embed(self._input(x))

    @torch.inference_mode()
    def track(self, x, kernels):
        with self._autocast():
            out = self.model.track(self._input(x), kernels)
        return _map(lambda t: t.float(), out)


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise SiamtrackError("the onnxruntime backend needs onnxruntime, which did not import: "
                             "pip install onnx onnxruntime") from None
    return onnxruntime


class OnnxBackend:
    """Runs an export folder (template.onnx, track.onnx, track1.onnx where present, backbone.onnx, export.json) with
    onnxruntime on the CPU."""

    name = "onnxruntime"
    # the graphs take contiguous NCHW crops: the tracker cuts them so, and `_np` then passes them without a copy
    channels_last = False

    def __init__(self, directory, threads=None):
        ort = import_onnxruntime()
        self.directory = Path(directory)
        self.info = read_export_info(self.directory)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads would spin between frames and steal the cores from cropping and post-processing (and
        # from anything else sharing the machine).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")

        def session(name):
            return ort.InferenceSession(str(self.directory / name), opts, providers=["CPUExecutionProvider"])

        files = self.info["files"]
        self._template = session(files["template"])
        self._track = session(files["track"])
        self._backbone = session(files["backbone"])
        # the batch-1 track graph, where the export has it (version 2 on): correlations as single Conv nodes
        single = files.get("track_single")
        self._track_single = session(single) if single and (self.directory / single).is_file() else None
        self.device = torch.device("cpu")
        self.precision = self.info.get("precision", "fp32")
        # The export fixes the crop sides (static shapes keep onnxruntime's kernels fast): {input name: side or None}
        self._sides = {i.name: (i.shape[-1] if isinstance(i.shape[-1], int) else None)
                       for sess in (self._template, self._track) for i in sess.get_inputs() if i.name in ("z", "x")}

    @property
    def stride(self):
        return self.info["stride"]

    @staticmethod
    def _np(t):
        return np.ascontiguousarray(t.detach().cpu().float().numpy())

    def _check_side(self, name, crop, setting):
        side = self._sides.get(name)
        if side is not None and crop.shape[-1] != side:
            raise ConfigError(f"the ONNX export in {self.directory} takes {side} px crops, the tracker cuts "
                              f"{crop.shape[-1]} px ({setting}); export with that size or use --backend torch")

    def template(self, z):
        self._check_side("z", z, "exemplar_size")
        outs = self._template.run(None, {"z": self._np(z)})
        kernels = [torch.from_numpy(o) for o in outs]
        return kernels[0] if not self.info["kernels_tuple"] else tuple(kernels)

    def embed(self, x):
        return torch.from_numpy(self._backbone.run(None, {"x": self._np(x)})[0])

    def track(self, x, kernels):
        self._check_side("x", x, "search_size")
        flat = _flatten(kernels)
        n = x.shape[0]
        k = flat[0].shape[0]
        # The track graph takes one kernel per search crop: repeat each target's kernels over its scales.
        if k != n:
            flat = [t.repeat_interleave(n // k, dim=0) for t in flat]
        feeds = {"x": self._np(x)}
        feeds.update({f"kernel{i}": self._np(t) for i, t in enumerate(flat)})
        graph = self._track_single if n == 1 and self._track_single is not None else self._track
        outs = [torch.from_numpy(o) for o in graph.run(None, feeds)]
        return outs[0] if not self.info["outputs_tuple"] else tuple(outs)


def onnxruntime_installed() -> bool:
    """Both halves of the onnxruntime path are importable: onnx (export) and onnxruntime (run, quantize)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def resolve_backend(backend, precision, device):
    """The (backend, precision) that runs what the user asked for on `device` (a torch.device).

    "auto" backend: onnxruntime on a CPU where it is installed, else torch; there "auto" precision is int8, the
    fastest on a CPU (the default model: 1.22x NanoTrack's speed, against 0.97x in fp32) and as accurate as fp32
    within the noise for the shipped models (their model cards). Anywhere else "auto" precision is fp32, so that
    naming a backend keeps meaning what it meant before "auto" existed.
    """
    check_choice(backend, BACKENDS, "backend")
    check_choice(precision, PRECISIONS, "precision")
    if backend == "auto":
        on_cpu = torch.device(device).type == "cpu"
        if precision == "bf16" or not (on_cpu and onnxruntime_installed()):
            if precision == "int8":
                why = "needs onnxruntime: pip install onnx onnxruntime" if on_cpu else "runs on the CPU only"
                raise ConfigError(f"int8 {why}")
            backend = "torch"
        else:
            backend = "onnxruntime"
            if precision == "auto":
                precision = "int8"
    if precision == "auto":
        precision = "fp32"
    check_precision(backend, precision)
    return backend, precision


def check_precision(backend, precision):
    """The backend and precision are known, and that backend runs that precision."""
    check_choice(backend, BACKEND_PRECISIONS, "backend")
    check_choice(precision, PRECISIONS, "precision")
    if precision not in BACKEND_PRECISIONS[backend]:
        other = "onnxruntime" if backend == "torch" else "torch"
        extra = [p for p in BACKEND_PRECISIONS[backend] if p != "fp32"]
        raise ConfigError(f"the {backend} backend runs fp32 only, or {' or '.join(extra)}; "
                          f"use --backend {other} for {precision}")


__all__ = ["TorchBackend", "OnnxBackend", "native_bf16_supported", "check_choice", "check_precision",
           "resolve_backend", "onnxruntime_installed", "import_onnxruntime", "BACKENDS", "PRECISIONS",
           "BACKEND_PRECISIONS"]
