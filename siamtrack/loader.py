"""The one loader: what a user names (a zoo name, a checkpoint path, an experiment YAML for random weights or, for the
onnxruntime backend, a `siamtrack export` folder) -> a model in eval mode, optionally wrapped in an inference
backend, with its ExperimentConfig and checkpoint meta.

A zoo checkpoint is checked against the sha256 in its model card; that digest (read once) also keys the onnxruntime
export cache. Every part is built with `pretrained` off: the checkpoint holds all weights, and random-init timing runs
must not fetch ImageNet weights (or need the training-only package that ships them).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import torch

from . import zoo
from .checkpoint import config_of, load_checkpoint, load_weights, sha256_of
from .config import config_from_dict, load_config
from .device import pick_device
from .errors import CheckpointError, ConfigError
from .export import VERSION as EXPORT_VERSION, export_onnx, is_export_dir, read_export_info
from .models import build_model
from .runtime import OnnxBackend, TorchBackend, check_precision, import_onnxruntime, resolve_backend


def without_pretrained(model_cfg):
    """The model config with every part's `pretrained` flag cleared."""
    parts = {}
    for name in ("backbone", "neck", "head"):
        part = getattr(model_cfg, name)
        if part is not None and part.args.get("pretrained"):
            part = dataclasses.replace(part, args={**part.args, "pretrained": False})
        parts[name] = part
    return dataclasses.replace(model_cfg, **parts)


def cache_dir() -> Path:
    return Path(os.environ.get("SIAMTRACK_CACHE") or Path.home() / ".cache" / "siamtrack")


def make_backend(model, cfg, device, backend="torch", precision="fp32", threads=None, cache_key=None, **kwargs):
    """Wrap a loaded SiameseNet in the chosen backend. The onnxruntime backend exports the model into the cache
    (keyed by `cache_key`, e.g. the checkpoint's sha256) the first time and reuses the export afterwards; int8
    quantizes that export once more, into the cache beside it, named by its calibration data
    (quantize.calibration_source)."""
    check_precision(backend, precision)
    if backend == "torch":
        return TorchBackend(model, device, precision, exemplar_size=cfg.tracker.exemplar_size,
                            search_size=cfg.tracker.search_size, **kwargs)
    import_onnxruntime()
    if cache_key is None:
        # Nothing identifies these weights: export afresh into a folder of its own.
        out = Path(tempfile.mkdtemp(prefix="siamtrack-onnx-"))
        export_onnx(model, cfg, out)
    else:
        out = cache_dir() / "onnx" / f"{cache_key}-v{EXPORT_VERSION}"
        if not is_export_dir(out):
            export_onnx(model, cfg, out)
    if precision == "int8":
        from .quantize import calibration_tag
        out = int8_export(out, out.with_name(f"{out.name}-int8-{calibration_tag()}") if cache_key is not None else None)
    return OnnxBackend(out, threads)


def int8_export(fp32_dir, out=None):
    """The int8 copy of an fp32 export folder: `out` when it already holds one, else quantized into it (a new
    temporary folder when None), calibrated as siamtrack.quantize.default_calibration finds data."""
    from .quantize import default_calibration, quantize_export
    from .shared import shared_root
    if out is not None and is_export_dir(out):
        return out
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="siamtrack-int8-")) / "int8"
    sequences, description = default_calibration(shared_root())
    return quantize_export(fp32_dir, out, sequences, description)


def read_checkpoint(name_or_path, want_digest=False):
    """-> (path, sha256 or None, checkpoint dict); a zoo name must be installed and match its model card."""
    path, name = zoo.resolve(name_or_path)
    digest = None
    if name is not None:
        if not path.is_file():
            raise CheckpointError(f"weights for {name} are not installed (expected {path}); "
                                  f"train them with `siamtrack train --config experiments/{zoo.MODELS[name]}.yaml`")
        want = zoo.expected_sha256(name)
        if want is not None:
            digest = sha256_of(path)
            if digest != want:
                raise CheckpointError(f"{path} does not match the sha256 in its model card (corrupt or replaced file)")
    blob = load_checkpoint(path)
    if want_digest and digest is None:
        digest = sha256_of(path)
    return path, digest, blob


def load_model(name_or_path, device="auto", backend=None, precision="auto", random_init=False, seed=0):
    """-> (model, ExperimentConfig, checkpoint meta). Without `backend` the model is the SiameseNet in eval mode on the
    device; with "auto", "torch" or "onnxruntime" it comes wrapped in that backend (`runtime.resolve_backend` says
    what "auto" runs; onnxruntime also takes an export folder).
    `random_init`: `name_or_path` is a zoo name or an experiment YAML, and the weights are random (seeded)."""
    dev = pick_device(device)
    if backend in ("auto", "onnxruntime") and is_export_dir(name_or_path):
        # an export folder runs on onnxruntime only, at its own precision unless told otherwise
        own = read_export_info(name_or_path).get("precision", "fp32")
        _, precision = resolve_backend("onnxruntime", own if precision == "auto" else precision, dev)
        directory = int8_export(name_or_path) if precision == "int8" and own != "int8" else name_or_path
        return OnnxBackend(directory), config_from_dict(read_export_info(directory)["config"]), {}
    if backend is not None:
        backend, precision = resolve_backend(backend, precision, dev)
    if random_init:
        source = zoo.config_path(name_or_path) if name_or_path in zoo.MODELS else name_or_path
        cfg, digest, meta = load_config(source), None, {}
        torch.manual_seed(seed)
        model = build_model(without_pretrained(cfg.model))
    else:
        path, digest, blob = read_checkpoint(name_or_path, want_digest=backend == "onnxruntime")
        cfg, meta = config_of(blob, path), blob.get("meta", {})
        try:
            model = build_model(without_pretrained(cfg.model))
        except ConfigError as e:
            raise CheckpointError(f"{path}: {e}") from None
        load_weights(model, blob["model"], path)
    model.eval().to(dev)
    if backend is not None:
        model = make_backend(model, cfg, dev, backend, precision, cache_key=digest[:16] if digest else None)
    return model, cfg, meta
