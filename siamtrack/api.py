"""Build trackers from zoo names or checkpoint files."""
from __future__ import annotations

import dataclasses

from .checkpoint import config_of, load_checkpoint, load_weights, sha256_of
from .device import pick_device
from .errors import CheckpointError, ConfigError
from .models import build_model
from . import zoo


def make_tracker(model, cfg, device, **kwargs):
    """A tracker of the type the config names, over an already-built model in eval mode on `device`."""
    kind = cfg.tracker.type
    if kind == "siamfc":
        from .trackers.siamfc import SiamFCTracker
        return SiamFCTracker(model, cfg.tracker, device, **kwargs)
    if kind == "siamrpn":
        from .trackers.siamrpn import SiamRPNTracker
        return SiamRPNTracker(model, cfg.tracker, device, **kwargs)
    raise ConfigError(f"unknown tracker type {kind!r}")


def without_pretrained(model_cfg):
    """The checkpoint holds every weight: no part should fetch its initial weights (e.g. ImageNet) again, which
    would also make tracking depend on a training-only package."""
    parts = {}
    for name in ("backbone", "neck", "head"):
        part = getattr(model_cfg, name)
        if part is not None and part.args.get("pretrained"):
            part = dataclasses.replace(part, args={**part.args, "pretrained": False})
        parts[name] = part
    return dataclasses.replace(model_cfg, **parts)


def load_model(name_or_path, device="auto", backend=None, precision="fp32"):
    """-> (model in eval mode on the device, ExperimentConfig, checkpoint meta). With `backend` ("torch" or
    "onnxruntime", see siamtrack.runtime) the model comes wrapped in that inference backend."""
    path, name = zoo.resolve(name_or_path)
    if name is not None and not path.is_file():
        raise CheckpointError(f"weights for {name} are not installed (expected {path}); "
                              f"train them with `siamtrack train --config experiments/{zoo.MODELS[name]}.yaml`")
    if name is not None:
        want = zoo.expected_sha256(name)
        if want is not None and sha256_of(path) != want:
            raise CheckpointError(f"{path} does not match the sha256 in its model card (corrupt or replaced file)")
    dev = pick_device(device)
    blob = load_checkpoint(path)
    cfg = config_of(blob, path)
    try:
        model = build_model(without_pretrained(cfg.model))
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None
    load_weights(model, blob["model"], path)
    model.eval().to(dev)
    if backend is not None:
        from .runtime import make_backend
        model = make_backend(model, cfg, dev, backend, precision, cache_key=sha256_of(path)[:16])
    return model, cfg, blob.get("meta", {})


def load_tracker(name_or_path=None, device="auto", backend="torch", precision="fp32", **kwargs):
    """A ready tracker: `load_tracker("siamfc-alexnet")` or `load_tracker("run/best.pth", device="cpu")`.
    With no name, the best shipped model. `backend` "torch" (BatchNorm folded, channels-last; `precision` fp32 or
    bf16) or "onnxruntime" (exports into a cache the first time; also accepts a `siamtrack export` folder)."""
    from .runtime import load_backend
    net, cfg = load_backend(name_or_path or zoo.default_model(), device, backend, precision)
    return make_tracker(net, cfg, net.device, **kwargs)
